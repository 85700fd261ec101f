/**
 * A handler's answer. `pdu.reply(…)`, `bind.accept()` / `bind.reject(…)` and
 * what `smpp.forward` resolved to are values the prelude made, recognised by
 * identity: asking a returned value whether it is one would run the policy's
 * proxy traps or getters.
 */
import { apply, create, cut, freeze, hasOwn, isInteger, keys, WeakSetCtor, weakAdd, weakHas } from './intrinsics';
import { sluiceError } from './plain';
import { STATUS } from './tenant';

export type DispatchKind = 'bind' | 'pdu' | 'session' | 'timer';

export interface Reply {
  readonly status: number;
  readonly fields: Record<string, unknown>;
}

/** One dispatch: what it is, its answer once given, and for a PDU its session and frame. */
export interface Ctx {
  kind: DispatchKind;
  reply: Reply | undefined;
  session: unknown;
  frame: Uint8Array | undefined;
}

/** What `smpp.forward` resolves to (src/forward/messages.ts). */
export interface ForwardResult {
  command_status: unknown;
  message_id?: unknown;
  message_state?: unknown;
  final_date?: unknown;
  error_code?: unknown;
}

/** A command_status by name (sandbox/sluice.d.ts) or number, as its value; UNKNOWN_STATUS otherwise. */
export function statusValue(name: unknown): number {
  if (typeof name === 'number' && isInteger(name) && name >= 0 && name <= 0xffffffff) return name;
  if (typeof name === 'string' && apply(hasOwn, STATUS, [name]) && typeof STATUS[name] === 'number') return STATUS[name];
  throw sluiceError('UNKNOWN_STATUS', `unknown command_status "${cut(name, 40)}"`);
}

const replies = new WeakSetCtor<object>();

export function makeReply(ctx: Ctx, status: number, fields: Record<string, unknown>): Reply {
  const r = freeze({ status, fields });
  apply(weakAdd, replies, [r]);
  ctx.reply = r;
  return r;
}
export const isReply = (v: unknown): v is Reply => apply(weakHas, replies, [v]);

// What smpp.forward resolved to, recognised by identity too: `pdu.reply(r)`
// or returning `r` answers the PDU with its status (and our message id).
const forwardResults = new WeakSetCtor<object>();
export const isForwardResult = (v: unknown): v is ForwardResult => v !== null && typeof v === 'object' && apply(weakHas, forwardResults, [v]);
/** `smpp.forward`'s result, frozen and known as one. */
export function forwardResult(r: unknown): unknown {
  const out = freeze(r);
  apply(weakAdd, forwardResults, [out]);
  return out;
}
export function forwardReply(ctx: Ctx, r: ForwardResult): Reply {
  const status = statusValue(r.command_status);
  let fields: Record<string, unknown> = {};
  if (status === 0 && r.message_state !== undefined) fields = { message_id: r.message_id, message_state: r.message_state, final_date: r.final_date, error_code: r.error_code };
  else if (status === 0 && typeof r.message_id === 'string') fields = { message_id: r.message_id };
  return makeReply(ctx, status, fields);
}

/** `pdu.reply(fields)`, bound to the PDU's dispatch. */
export const replyOf =
  (ctx: Ctx) =>
  (fields?: unknown): Reply => {
    if (isForwardResult(fields)) return forwardReply(ctx, fields);
    const f = (fields || {}) as Record<string, unknown>;
    const status = f.command_status === undefined ? 0 : statusValue(f.command_status);
    const rest: Record<string, unknown> = create(null);
    const ks = keys(f);
    for (let i = 0; i < ks.length; i++) if (ks[i] !== 'command_status') rest[ks[i]!] = f[ks[i]!];
    return makeReply(ctx, status, rest);
  };

/** `pdu.replyQuery(fields)`, bound to the PDU's dispatch: a query_sm_resp for the PDU's message_id. */
export const replyQueryOf =
  (ctx: Ctx, pdu: { message_id?: unknown }) =>
  (fields?: unknown): Reply => {
    const f = (fields || {}) as Record<string, unknown>;
    return makeReply(ctx, 0, { message_id: pdu.message_id, message_state: f.message_state, final_date: f.final_date === undefined ? '' : f.final_date, error_code: f.error_code === undefined ? 0 : f.error_code });
  };

/**
 * A handler's answer. `pdu.reply(…)`, `bind.accept()` / `bind.reject(…)` and
 * what `smpp.forward` resolved to are values the prelude made, recognised by
 * identity: asking a returned value whether it is one would run the policy's
 * proxy traps or getters.
 */
import type { ForwardCall } from '../sandbox-protocol/host-calls';
import { apply, create, cut, freeze, hasOwn, isInteger, keys, WeakMapCtor, weakMapGet, weakMapSet, WeakSetCtor, weakAdd, weakHas } from './intrinsics';
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
  /** The handler returned its `smpp.forward(pdu)` itself: the core answers with that forward's result (see markTail). */
  tailed?: boolean;
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

// ---- a handler that returns its forward ------------------------------------------------
//
// `return smpp.forward(pdu)` (the promise itself, not awaited) says the PDU's
// answer is that forward's result, whatever happens next. The call is marked
// before it leaves this entry, and the core answers the PDU as soon as the
// forward has its result, without waiting for this isolate to hear of it and
// reply (docs/design.md, "A handler that returns its forward"). Nothing the
// policy does later may answer it otherwise: `pdu.reply()` then throws.

const forwards = new WeakMapCtor<object, { ctx: Ctx; args: ForwardCall | undefined }>();

/** `answer` is what smpp.forward returned for a PDU of `ctx`; `args`, its call's arguments while they can still be marked. */
export function noteForward(answer: object, ctx: Ctx, args: ForwardCall | undefined): void {
  apply(weakMapSet, forwards, [answer, { ctx, args }]);
}

/** A PDU handler of `ctx` returned `value`: if it is that PDU's own forward, not yet sent and with no answer given, the core answers with it. */
export function markTail(ctx: Ctx, value: unknown): void {
  if (ctx.kind !== 'pdu' || ctx.reply !== undefined || value === null || typeof value !== 'object') return;
  const f = apply(weakMapGet, forwards, [value]) as { ctx: Ctx; args: ForwardCall | undefined } | undefined;
  if (f === undefined || f.ctx !== ctx || f.args === undefined) return;
  f.args.tail = true;
  ctx.tailed = true;
}

const answeredByForward = (ctx: Ctx): void => {
  if (ctx.tailed) throw new TypeError('this PDU is answered by the smpp.forward(pdu) its handler returned');
};

/** `pdu.reply(fields)`, bound to the PDU's dispatch. */
export const replyOf =
  (ctx: Ctx) =>
  (fields?: unknown): Reply => {
    answeredByForward(ctx);
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
    answeredByForward(ctx);
    const f = (fields || {}) as Record<string, unknown>;
    return makeReply(ctx, 0, { message_id: pdu.message_id, message_state: f.message_state, final_date: f.final_date === undefined ? '' : f.final_date, error_code: f.error_code === undefined ? 0 : f.error_code });
  };

/**
 * Running a policy's handler for one dispatch (a bind, a PDU, a session
 * event, a timer) and turning what it did into the outcome the host gets:
 * its answer, the default, or an error. Every entry is a timed call, so all
 * tenant code (handlers, their continuations after awaiting the host,
 * microtasks) runs under the per-call CPU timeout, and whatever a handler
 * returns or throws is read here, inside it.
 */
import { pduView, send, type Outcome } from './host';
import { setOrigin } from './host-call';
import { apply, cut, freeze, keys, mget, promiseAll, promiseResolve, StringCtor, then, u8Subarray } from './intrinsics';
import { bindHandlerOf, pduHandlers, sessionHandlers, timerHandlerOf, type Handler } from './handlers';
import { attach, PduView } from './pdu-view';
import { toPlain } from './plain';
import { forwardReply, isForwardResult, isReply, makeReply, markTail, statusValue, type Ctx, type DispatchKind } from './replies';
import { STATUS } from './tenant';

function finish(id: number, ctx: Ctx, value: unknown): void {
  let out: Outcome;
  try {
    if (ctx.kind === 'bind') {
      const r = ctx.reply || (isReply(value) ? value : undefined);
      out = r ? { kind: 'bind', accept: r.status === 0, status: r.status, reason: r.fields && r.fields.reason !== undefined ? cut(r.fields.reason, 200) : undefined } : { kind: 'bind', accept: false, status: STATUS.ESME_RBINDFAIL!, reason: 'bind handler returned no decision' };
    } else if (ctx.kind === 'pdu') {
      const r = ctx.reply || (isReply(value) ? value : isForwardResult(value) ? forwardReply(ctx, value) : undefined);
      // Nothing means the default answer; anything else that is not a
      // pdu.reply(…) is garbage, answered ESME_RSYSERR (docs/design.md, "Operations and their defaults") — never a
      // silent ESME_ROK for a returned proxy, cycle or stray object.
      if (r) {
        // The common answer, a status and nothing but a message_id, goes out flat.
        const f = r.fields;
        const ks = f ? keys(f) : [];
        if (ks.length === 1 && ks[0] === 'message_id' && typeof f.message_id === 'string' && f.message_id.length <= 256) {
          send('reply', id, r.status, f.message_id);
          return;
        }
        out = { kind: 'reply', status: r.status, fields: toPlain(f || {}) };
      }
      else if (value === undefined || value === null) out = { kind: 'default' };
      else out = { kind: 'error', reason: 'throw', message: 'handler returned something that is not pdu.reply(…); return nothing for the default answer' };
    } else {
      out = { kind: 'done' };
    }
  } catch (e) {
    out = failure(e);
  }
  send('result', id, out);
}

/**
 * Reads whatever was thrown here, inside the timed call (its getters may
 * loop), and returns only bounded strings.
 */
export function failure(e: unknown): Outcome {
  let message = 'handler failed';
  let code: string | undefined;
  let stack: string | undefined;
  try {
    if (e && (typeof e === 'object' || typeof e === 'function')) {
      const thrown = e as { message?: unknown; code?: unknown; stack?: unknown };
      message = cut(thrown.message, 500);
      const c = thrown.code;
      code = typeof c === 'string' ? cut(c, 40) : undefined;
      const st = thrown.stack;
      stack = typeof st === 'string' ? cut(st, 4000) : undefined;
    } else {
      message = cut(e, 500);
    }
  } catch (_) {
    message = 'handler threw a value that cannot be read';
    code = undefined;
    stack = undefined;
  }
  return { kind: 'error', reason: 'throw', message, code, stack };
}

function run(id: number, ctx: Ctx, fn: Handler, args: unknown[]): void {
  let value: unknown;
  try {
    value = apply(fn, undefined, args);
  } catch (e) {
    send('result', id, failure(e));
    return;
  }
  markTail(ctx, value);
  if (value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function') {
    // Resolve through our own Promise: a policy's thenable runs now, timed.
    then(
      promiseResolve(value),
      (v) => finish(id, ctx, v),
      (e) => send('result', id, failure(e)),
    );
  } else {
    finish(id, ctx, value);
  }
}

/** What the host sends with each kind of dispatch (the core's dispatch, or the harness). */
interface Payloads {
  pdu: { pdu: Record<string, unknown>; session: unknown };
  bind: { req: Record<string, unknown> };
  session: { event: string; session: unknown };
  timer: { name: unknown; payload: unknown };
}

/** Dispatch `id`: run the policy's handler for it, or answer what no handler means. */
export function dispatch(id: number, kind: DispatchKind, payload: unknown, frame?: Uint8Array): void {
  setOrigin(id);
  const ctx: Ctx = { kind, reply: undefined, session: undefined, frame };
  if (kind === 'pdu') {
    const p = payload as Payloads['pdu'];
    const fn = mget(pduHandlers, p.pdu.command as string);
    if (!fn) return void send('result', id, { kind: 'default' });
    const pdu = p.pdu;
    ctx.session = freeze(p.session);
    attach(pdu, ctx);
    return run(id, ctx, fn, [pdu, ctx.session]);
  }
  if (kind === 'bind') {
    const bindHandler = bindHandlerOf();
    if (!bindHandler) return void send('result', id, { kind: 'bind', accept: false, status: STATUS.ESME_RINVSYSID!, reason: 'no bind handler' });
    const b = (payload as Payloads['bind']).req;
    b.accept = () => makeReply(ctx, 0, {});
    b.reject = (status: unknown, reason?: unknown) => makeReply(ctx, statusValue(status), { reason: reason === undefined ? undefined : cut(reason, 200) });
    return run(id, ctx, bindHandler, [freeze(b)]);
  }
  if (kind === 'session') {
    const p = payload as Payloads['session'];
    const list = mget(sessionHandlers, p.event) || [];
    if (list.length === 0) return void send('result', id, { kind: 'done' });
    const session = freeze(p.session);
    // Every listener runs; the first failure is reported.
    return run(
      id,
      ctx,
      () => {
        const started: unknown[] = [];
        for (let i = 0; i < list.length; i++) started[i] = list[i]!(session);
        return promiseAll(started);
      },
      [],
    );
  }
  if (kind === 'timer') {
    const p = payload as Payloads['timer'];
    const name = StringCtor(p.name);
    const fn = timerHandlerOf(name);
    if (!fn) return void send('result', id, { kind: 'done' });
    return run(id, ctx, fn, [p.payload, name]);
  }
  send('result', id, { kind: 'error', reason: 'throw', message: `unknown dispatch kind ${kind}` });
}

/**
 * PDUs as raw frames, back to back in `bytes`; `items` is [id, start, end,
 * session index] per PDU. Each becomes its view here, on this tenant's CPU.
 */
export function dispatchFrames(bytes: Uint8Array, items: number[], sessions: unknown[]): void {
  for (let i = 0; i < items.length; i += 4) {
    const id = items[i]!;
    try {
      const frame: Uint8Array = apply(u8Subarray, bytes, [items[i + 1], items[i + 2]]);
      const pdu = pduView(frame, PduView) as Record<string, unknown> | undefined;
      if (pdu === undefined) send('result', id, { kind: 'error', reason: 'throw', message: 'PDU could not be read' });
      else dispatch(id, 'pdu', { pdu, session: sessions[items[i + 3]!] }, frame);
    } catch (e) {
      try {
        send('result', id, failure(e));
      } catch (_) {
        /* the host settles it at the deadline */
      }
    }
  }
}

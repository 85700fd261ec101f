/**
 * Host calls: what a policy's `smpp.*`, `cache.*` and timer calls become on
 * the way to the core. The prelude makes them inside the isolate
 * (src/isolate/host-call.ts, each op's arguments typed by HostCallArgs);
 * the core (policy-host/host-call-server.ts) and the test harness
 * (testing/harness.ts) answer them, each with one handler per op, typed
 * here. What arrives from a sandbox is untrusted: `readHostCall` is the one
 * place its shape is checked. `policyError` is the one mapping of a failed
 * call to what the policy sees. (docs/design.md, "The process boundary".)
 */
import { ERROR_CODES, HOST_ONLY_CODES, SluiceError, type ErrorCode } from '../errors';

export interface HostCallArgs {
  /** `smpp.submitVia` and the other `…Via` helpers: a request on one of the tenant's outbound binds. */
  sendVia: { bind: string; command: string; fields: Record<string, unknown> };
  /** `smpp.deliverTo` and the other `…To` helpers: a request to a bound ESME session of the tenant. */
  sendTo: { sessionId: string; command: string; fields: Record<string, unknown> };
  /** `smpp.forward(pdu, opts)`: the PDU's own frame (or, from the harness, its fields) and the policy's options. */
  forward: ForwardCall;
  /** `cache.get/set/delete/has`. */
  cache: CacheCall;
  /** `smpp.timers.after/every/cancel`. */
  timer: TimerCall;
}

export interface ForwardCall {
  command: string;
  /** The session the PDU came on, as the prelude knows it. */
  session?: unknown;
  /** The PDU's frame as it came (forwarded byte for byte)… */
  frame?: Uint8Array;
  /** …or its fields, when there is no frame. */
  fields?: Record<string, unknown>;
  /** `opts.fields`: fields to change on the way. */
  overrides?: Record<string, unknown>;
  chain?: string[];
  rule?: string;
  to?: string;
  /**
   * The handler returned this forward's promise itself: the PDU's answer is
   * its result, so the core gives it as soon as it has it (the isolate's own
   * answer, which follows, is then not needed).
   */
  tail?: boolean;
}

export type CacheCall = { op: 'get' | 'delete' | 'has'; key: string } | { op: 'set'; key: string; json: string; ttlMs?: number };

export type TimerCall = { kind: 'after'; ms: number; name: string; payload?: unknown } | { kind: 'every'; ms: number; name: string } | { kind: 'cancel'; name: string };

export type HostOp = keyof HostCallArgs;
export type HostCall = { [K in HostOp]: { op: K; args: HostCallArgs[K] } }[HostOp];

/** Every op, in one list (the suite checks the prelude makes exactly these). */
export const HOST_OPS = ['sendVia', 'sendTo', 'forward', 'cache', 'timer'] as const;
// Both ways: every op is listed, and the list names no other.
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const listed: Exactly<(typeof HOST_OPS)[number], HostOp> = true;
void listed;

/** One handler per op; `tenant` is the caller's own (a policy never names a tenant). */
export type HostCallHandlers = { [K in HostOp]: (tenant: string, args: HostCallArgs[K]) => Promise<unknown> };

export function runHostCall(handlers: HostCallHandlers, tenant: string, call: HostCall): Promise<unknown> {
  return (handlers[call.op] as (tenant: string, args: HostCall['args']) => Promise<unknown>)(tenant, call.args);
}

const bad = (what: string): SluiceError => new SluiceError('INVALID_FIELD', what);

function record(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function finite(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${what} must be a number`);
  return v;
}

/**
 * A host call as it came from a sandbox: `op` one of HOST_OPS and `args` in
 * its shape (strings made strings, optional parts absent when not given), or
 * INVALID_FIELD naming what is wrong.
 */
export function readHostCall(op: unknown, args: unknown): HostCall {
  const a = record(args, 'host call arguments');
  switch (op) {
    case 'sendVia':
      return { op, args: { bind: String(a.bind), command: String(a.command), fields: record(a.fields, 'fields') } };
    case 'sendTo':
      return { op, args: { sessionId: String(a.sessionId), command: String(a.command), fields: record(a.fields, 'fields') } };
    case 'forward': {
      const f: ForwardCall = { command: String(a.command) };
      if (a.session !== undefined) f.session = a.session;
      if (a.frame instanceof Uint8Array) f.frame = a.frame;
      else if (a.frame !== undefined) throw bad('frame must be bytes');
      if (a.fields !== undefined) f.fields = record(a.fields, 'fields');
      if (a.overrides !== undefined && a.overrides !== null) f.overrides = record(a.overrides, 'opts.fields');
      if (a.chain !== undefined) {
        if (!Array.isArray(a.chain)) throw bad('opts.chain must be an array');
        f.chain = a.chain.map(String);
      }
      if (a.rule !== undefined) f.rule = String(a.rule);
      if (a.to !== undefined) f.to = String(a.to);
      if (a.tail === true) f.tail = true;
      return { op, args: f };
    }
    case 'cache': {
      const key = String(a.key);
      if (a.op === 'get' || a.op === 'delete' || a.op === 'has') return { op, args: { op: a.op, key } };
      if (a.op === 'set') {
        const c: CacheCall = { op: 'set', key, json: String(a.json) };
        if (a.ttlMs !== undefined && a.ttlMs !== null) c.ttlMs = finite(a.ttlMs, 'ttlMs');
        return { op, args: c };
      }
      throw bad('unknown cache operation');
    }
    case 'timer': {
      // Names and times are checked against the tenant's timer limits where timers are kept.
      const name = typeof a.name === 'string' ? a.name : '';
      const ms = typeof a.ms === 'number' ? a.ms : NaN;
      if (a.kind === 'after') {
        const t: TimerCall = { kind: 'after', ms, name };
        if (a.payload !== undefined) t.payload = a.payload;
        return { op, args: t };
      }
      if (a.kind === 'every') return { op, args: { kind: 'every', ms, name } };
      if (a.kind === 'cancel') return { op, args: { kind: 'cancel', name } };
      throw bad('unknown timer call');
    }
    default:
      throw bad(`unknown host call ${String(op).slice(0, 40)}`);
  }
}

/**
 * What the policy is told of a failed host call: a code it may see
 * (sandbox/sluice.d.ts declares each) with Sluice's own message; anything
 * else — an error of the host's own, a host-only code, a foreign `code` such
 * as a Node errno — is HOST_ERROR, with no detail (no path, no secret).
 */
export function policyError(err: unknown): { code: ErrorCode; message: string } {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const code = e?.code;
  if (typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) && !HOST_ONLY_CODES.has(code as ErrorCode)) {
    return { code: code as ErrorCode, message: typeof e?.message === 'string' ? e.message : ERROR_CODES[code as ErrorCode] };
  }
  return { code: 'HOST_ERROR', message: ERROR_CODES.HOST_ERROR };
}

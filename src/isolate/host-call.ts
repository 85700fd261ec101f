/**
 * Host calls: what a policy's `smpp.*`, `cache.*` and timer calls become.
 * Each is one op of src/sandbox-protocol/host-calls.ts with its arguments in
 * that op's shape, sent to the host as a `call` item and settled by a
 * `resolve` entry. The arguments are rebuilt as plain data first (plain.ts).
 */
import type { ErrorCode } from '../errors';
import type { HostCallArgs, HostOp } from '../sandbox-protocol/host-calls';
import { send } from './host';
import { mdel, mget, MapCtor, mset, msize, PromiseCtor, promiseReject } from './intrinsics';
import { sluiceError, toPlain } from './plain';
import { LIMITS } from './tenant';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  /** The dispatch the call was made in. */
  origin: number;
}

let nextCall = 0;
/** The dispatch the running code belongs to. */
let origin = 0;
const pending = new MapCtor<number, Pending>();

/** Code now running belongs to dispatch `id`: its host calls say so. */
export function setOrigin(id: number): void {
  origin = id;
}

/** Ask the host for `op`; its answer, or the error a policy may see. */
export function hostCall<K extends HostOp>(op: K, args: HostCallArgs[K]): Promise<unknown> {
  return call(op, args).answer;
}

/**
 * The same, and the arguments as they will reach the host while they still
 * can be changed: until the running entry ends (`queued`: undefined if the
 * call went out at once or failed before it was sent).
 */
export function call<K extends HostOp>(op: K, args: HostCallArgs[K]): { answer: Promise<unknown>; queued: HostCallArgs[K] | undefined } {
  if (msize(pending) >= LIMITS.maxPending) {
    return { answer: promiseReject(sluiceError('THROTTLED', `more than ${LIMITS.maxPending} host calls in flight`)), queued: undefined };
  }
  let data: HostCallArgs[K];
  try {
    data = toPlain(args) as HostCallArgs[K];
  } catch (e) {
    return { answer: promiseReject(e), queued: undefined };
  }
  const id = ++nextCall;
  let queued = false;
  const answer = new PromiseCtor((resolve, reject) => {
    mset(pending, id, { resolve, reject, origin });
    queued = send('call', id, { op, origin, args: data });
  });
  return { answer, queued: queued ? data : undefined };
}

/** The host's answer to call `id`: its value, or `{ code, message }` (`policyError` in src/sandbox-protocol/host-calls.ts). */
export function resolveCall(id: number, ok: boolean, value: unknown): void {
  const p = mget(pending, id);
  if (!p) return;
  mdel(pending, id);
  origin = p.origin;
  if (ok) p.resolve(value);
  else {
    const failed = value as { code: ErrorCode; message: string };
    p.reject(sluiceError(failed.code, failed.message));
  }
}

/**
 * Data across the boundary. Everything that leaves the isolate is rebuilt
 * here, inside the timed call: only null, booleans, finite numbers, strings,
 * Uint8Array, arrays and plain objects, bounded in size and depth. Getters,
 * proxies and toJSON run now, under the timeout, never later on the host
 * side. What comes in (config, views) is frozen all the way down.
 */
import type { ErrorCode } from '../errors';
import { apply, create, ErrorCtor, freeze, isArray, isU8, keys, parse, SetCtor, setAdd, setDelete, setHas, stringify, typedArrayLength, U8 } from './intrinsics';
import { LIMITS } from './tenant';

/** An error a policy sees, with a code declared in sandbox/sluice.d.ts. */
export function sluiceError(code: ErrorCode, message: string): Error & { code: ErrorCode } {
  const e = new ErrorCtor(message) as Error & { code: ErrorCode };
  e.code = code;
  e.name = 'SluiceError';
  return e;
}

interface Budget {
  /** Bytes still allowed. */
  left: number;
  /** Objects on the path from the root: a cycle is refused. */
  seen: Set<object> | null;
}

const tooLarge = (): Error => sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);

export function plain(value: unknown, budget: Budget, depth: number): unknown {
  if (depth > 16) throw sluiceError('INVALID_FIELD', 'value nested too deeply');
  if (value === null || value === undefined) return value;
  const t = typeof value;
  if (t === 'boolean') return value;
  if (t === 'number') {
    if (value !== value || value === Infinity || value === -Infinity) throw sluiceError('INVALID_FIELD', 'numbers must be finite');
    budget.left -= 8;
    return value;
  }
  if (t === 'string') {
    budget.left -= (value as string).length * 2;
    if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
    return value;
  }
  if (t !== 'object') throw sluiceError('INVALID_FIELD', `a ${t} cannot be passed to the host`);
  const o = value as Record<string, unknown>;
  if (isU8(o)) {
    // Copied by hand into a fresh array: slice() would let the policy choose
    // the result through Symbol.species (a view on a resizable or larger
    // buffer), and a replaced length getter could lie about the size.
    const n: number = apply(typedArrayLength, o, []);
    budget.left -= n;
    if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
    const copy = new U8(n);
    for (let i = 0; i < n; i++) copy[i] = o[i]!;
    return copy;
  }
  if (budget.seen === null) budget.seen = new SetCtor();
  else if (apply(setHas, budget.seen, [o])) throw sluiceError('INVALID_FIELD', 'cyclic value');
  apply(setAdd, budget.seen, [o]);
  let out: unknown;
  if (isArray(o)) {
    const n = o.length;
    if (n > 100000) throw sluiceError('INVALID_FIELD', 'array too long');
    const arr: unknown[] = [];
    for (let i = 0; i < n; i++) {
      arr[i] = plain(o[i], budget, depth + 1);
      if (budget.left < 0) throw tooLarge(); // early, not after a million cheap elements
    }
    out = arr;
  } else {
    const obj: Record<string, unknown> = create(null);
    const ks = keys(o);
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i]!;
      budget.left -= k.length * 2 + 16;
      if (budget.left < 0) throw tooLarge();
      const v = plain(o[k], budget, depth + 1);
      if (v !== undefined) obj[k] = v;
    }
    out = { ...obj };
  }
  apply(setDelete, budget.seen, [o]);
  if (budget.left < 0) throw sluiceError('INVALID_FIELD', `value larger than ${LIMITS.maxDataBytes} bytes`);
  return out;
}

/** `value` as plain data within the tenant's `maxDataBytes`, or INVALID_FIELD saying why not. */
export const toPlain = (value: unknown): unknown => plain(value, { left: LIMITS.maxDataBytes, seen: null }, 0);

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    const ks = keys(o);
    for (let i = 0; i < ks.length; i++) deepFreeze((o as Record<string, unknown>)[ks[i]!]);
    freeze(o);
  }
  return o;
}

/** A frozen copy of JSON-able data. */
export const frozenCopy = (v: unknown): unknown => deepFreeze(parse(stringify(v)));

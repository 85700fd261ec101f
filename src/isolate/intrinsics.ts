/**
 * The built-ins the prelude relies on, taken as it loads: before any tenant
 * code runs, so a policy that later replaces `Promise.resolve`,
 * `Map.prototype.get` or `String.prototype.slice` changes nothing the
 * prelude does. Every module of the prelude calls these, never the globals
 * (SECURITY.md, "Tenant policies: what holds today").
 */

export const { stringify, parse } = JSON;
export const { freeze, keys, getPrototypeOf, defineProperty, create } = Object;
export const { isArray } = Array;
export const { apply } = Reflect;
export const PromiseCtor = Promise;
const promiseThen = Promise.prototype.then;
// Statics too: a policy may replace Promise.resolve and friends, and the
// prelude must never call tenant code it did not mean to.
export const promiseResolve: <T>(value: T) => Promise<Awaited<T>> = Promise.resolve.bind(Promise);
export const promiseReject: (reason: unknown) => Promise<never> = Promise.reject.bind(Promise);
export const promiseAll: (values: readonly unknown[]) => Promise<unknown[]> = Promise.all.bind(Promise);
export const MapCtor = Map;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;
const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size')!.get!;
export const SetCtor = Set;
export const setAdd = Set.prototype.add;
export const setHas = Set.prototype.has;
export const setDelete = Set.prototype.delete;
export const strIndexOf = String.prototype.indexOf;
export const WeakSetCtor = WeakSet;
export const WeakMapCtor = WeakMap;
export const weakMapGet = WeakMap.prototype.get;
export const weakMapSet = WeakMap.prototype.set;
export const weakAdd = WeakSet.prototype.add;
export const weakHas = WeakSet.prototype.has;
export const U8 = Uint8Array;
export const u8Subarray = Uint8Array.prototype.subarray;
export const ErrorCtor = Error;
export const StringCtor = String;
export const strSlice = String.prototype.slice;
export const hasOwn = Object.prototype.hasOwnProperty;
export const { min } = Math;
export const isInteger = Number.isInteger;
export const now = Date.now;
const typedArrayProto = getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayTag = Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag)!.get!;
export const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length')!.get!;

export const mget = <K, V>(m: Map<K, V>, k: K): V | undefined => apply(mapGet, m, [k]);
export const mset = <K, V>(m: Map<K, V>, k: K, v: V): Map<K, V> => apply(mapSet, m, [k, v]);
export const mdel = <K, V>(m: Map<K, V>, k: K): boolean => apply(mapDelete, m, [k]);
export const msize = (m: Map<unknown, unknown>): number => apply(mapSize, m, []);
// The policy may have replaced String.prototype.slice: cut with the original.
export const cut = (v: unknown, n: number): string => apply(strSlice, StringCtor(v), [0, n]);
export const then = <T, R1 = T, R2 = never>(
  p: Promise<T>,
  a?: ((value: T) => R1 | PromiseLike<R1>) | null,
  b?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
): Promise<R1 | R2> => apply(promiseThen, p, [a, b]);
export const isU8 = (v: unknown): v is Uint8Array => v !== null && typeof v === 'object' && apply(typedArrayTag, v, []) === 'Uint8Array';

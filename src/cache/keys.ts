import { SluiceError } from '../errors';

/**
 * Key layout and argument validation for the tenant cache.
 *
 * Every stored key is `sluice:cache:<tenant>:<tag>…` where `<tenant>` is
 * `encodeURIComponent(tenantId)` (so it never contains ':') and `<tag>` is
 * `u` for the tenant's usage counter or `v:<key>` for a tenant key, the key
 * kept verbatim. Because the tenant segment ends at the first ':' and the tag
 * follows it, a stored key maps back to exactly one (tenant, key) pair: no key
 * string — with ':', '::', '%', the word `u`, or another tenant's whole stored
 * key — can name another tenant's entry or the usage counter.
 */

/** Prefix of every key the cache owns in the shared store. */
export const KEY_PREFIX = 'sluice:cache:';

/** Longest tenant key accepted, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 512;

/** The per-tenant part of stored keys: no ':' (encodeURIComponent escapes it), injective. */
export function tenantNamespace(tenantId: unknown): string {
  if (typeof tenantId !== 'string' || tenantId.length === 0) {
    throw new SluiceError('INVALID_FIELD', 'tenant id must be a non-empty string');
  }
  try {
    return encodeURIComponent(tenantId);
  } catch {
    // encodeURIComponent throws on lone surrogates.
    throw new SluiceError('INVALID_FIELD', 'tenant id is not well-formed Unicode');
  }
}

/** Stored key of a tenant key. */
export function dataKey(ns: string, key: string): string {
  return `${KEY_PREFIX}${ns}:v:${key}`;
}

/** Stored key of a tenant's usage counter; no `dataKey` can equal it. */
export function usageKey(ns: string): string {
  return `${KEY_PREFIX}${ns}:u`;
}

/** What a stored key under KEY_PREFIX names, or undefined for a key that is not ours. */
export type ParsedKey = { ns: string; kind: 'usage' } | { ns: string; kind: 'data'; key: string };

export function parseStoredKey(stored: string): ParsedKey | undefined {
  if (!stored.startsWith(KEY_PREFIX)) return undefined;
  const rest = stored.slice(KEY_PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon <= 0) return undefined;
  const ns = rest.slice(0, colon);
  const tail = rest.slice(colon + 1);
  if (tail === 'u') return { ns, kind: 'usage' };
  if (tail.startsWith('v:')) return { ns, kind: 'data', key: tail.slice(2) };
  return undefined;
}

// A lone surrogate would be replaced by U+FFFD on its way to UTF-8 storage,
// silently merging two different keys (or corrupting a value).
const LONE_SURROGATE = /\p{Cs}/u;

/** A tenant key: a non-empty, well-formed string of at most MAX_KEY_LENGTH code units. */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new SluiceError('INVALID_FIELD', 'cache key must be a string');
  if (key.length === 0) throw new SluiceError('INVALID_FIELD', 'cache key must not be empty');
  if (key.length > MAX_KEY_LENGTH) {
    throw new SluiceError('INVALID_FIELD', `cache key is ${key.length} characters, over the ${MAX_KEY_LENGTH} allowed`);
  }
  if (LONE_SURROGATE.test(key)) throw new SluiceError('INVALID_FIELD', 'cache key is not well-formed Unicode');
}

/** An optional TTL: a positive safe integer of milliseconds. */
export function validateTtl(ttlMs: unknown): asserts ttlMs is number | undefined {
  if (ttlMs === undefined) return;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new SluiceError('INVALID_FIELD', 'cache ttlMs must be a positive integer number of milliseconds');
  }
}

/** Type check only; the (costlier) parse is `validateJsonText`, run after the size check. */
export function validateJsonType(json: unknown): asserts json is string {
  if (typeof json !== 'string') throw new SluiceError('INVALID_FIELD', 'cache value must be JSON text (a string)');
}

/** Reject text that is not JSON. One parse, the cheapest full validator there is. */
export function validateJsonText(json: string): void {
  try {
    JSON.parse(json);
  } catch {
    throw new SluiceError('INVALID_FIELD', 'cache value is not valid JSON');
  }
  if (LONE_SURROGATE.test(json)) throw new SluiceError('INVALID_FIELD', 'cache value is not well-formed Unicode');
}

/** Bytes an entry counts against the quota: UTF-8 of the key plus UTF-8 of the JSON text. */
export function entryBytes(key: string, json: string): number {
  return Buffer.byteLength(key, 'utf8') + Buffer.byteLength(json, 'utf8');
}

import { SluiceError } from '../errors';
import { decodeEnvelope, type Backend, type Envelope } from './backend';
import {
  dataKey,
  entryBytes,
  usageKey,
  validateJsonText,
  validateJsonType,
  validateKey,
  validateTtl,
} from './keys';

/** A tenant's cache limits, in bytes. */
export interface TenantCacheLimits {
  /** Total of all the tenant's entries (config `max_cache_mb`). */
  maxBytes: number;
  /** One entry, key + JSON text (config `max_value_kb`). */
  maxValueBytes: number;
}

/**
 * What a TenantCache needs from its CacheStore. Internal: the store hands it
 * over in `forTenant`.
 */
export interface TenantCacheCore {
  readonly backend: Backend;
  /** Run `fn` after every earlier write of namespace `ns` in this process has settled. */
  exclusive<T>(ns: string, fn: () => Promise<T>): Promise<T>;
  /** Throws once the store is closed. */
  assertOpen(): void;
}

/** A live entry's JSON text, or undefined for a missing, expired or foreign one. */
function liveValue(e: Envelope | undefined): string | undefined {
  if (!e || typeof e.value !== 'string') return undefined;
  return isExpired(e) ? undefined : e.value;
}

/** Keyv's own rule: expired once now is past `expires`. */
export function isExpired(e: Envelope): boolean {
  return typeof e.expires === 'number' && Date.now() > e.expires;
}

/** Bytes a stored entry counts against the quota; 0 for something that is not a cache entry. */
export function storedBytes(key: string, e: Envelope | undefined): number {
  return e && typeof e.value === 'string' ? entryBytes(key, e.value) : 0;
}

/** The usage counter's value; 0 when absent or unreadable. */
export function decodeUsage(raw: string | undefined): number {
  const n = decodeEnvelope(raw)?.value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
}

/** Write the usage counter; 0 removes it so idle tenants leave nothing behind. */
export async function writeUsage(backend: Backend, ns: string, bytes: number): Promise<void> {
  if (bytes <= 0) await backend.keyv.delete(usageKey(ns));
  else await backend.keyv.set(usageKey(ns), bytes);
}

function checkLimits(limits: TenantCacheLimits): TenantCacheLimits {
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
  if (!limits || !ok(limits.maxBytes) || !ok(limits.maxValueBytes)) {
    throw new SluiceError('INVALID_FIELD', 'cache limits need positive maxBytes and maxValueBytes');
  }
  return Object.freeze({ maxBytes: limits.maxBytes, maxValueBytes: limits.maxValueBytes });
}

/**
 * One tenant's view of the cache: values cross as JSON text (the sandbox has
 * already serialised them), keys are confined to the tenant's namespace, and
 * every write is checked against the tenant's quota before anything changes.
 * Obtain one with `CacheStore.forTenant`.
 */
export class TenantCache {
  /** The tenant's id, as given to `forTenant`. */
  readonly tenantId: string;
  /** The limits this view enforces. */
  readonly limits: Readonly<TenantCacheLimits>;
  private readonly ns: string;
  private readonly core: TenantCacheCore;

  /** @internal Use `CacheStore.forTenant`. */
  constructor(core: TenantCacheCore, tenantId: string, ns: string, limits: TenantCacheLimits) {
    this.core = core;
    this.tenantId = tenantId;
    this.ns = ns;
    this.limits = checkLimits(limits);
  }

  /** The JSON text stored under `key`, or undefined if absent or expired. */
  async get(key: string): Promise<string | undefined> {
    validateKey(key);
    this.core.assertOpen();
    const sk = dataKey(this.ns, key);
    const [raw] = await this.core.backend.readMany([sk]);
    const e = decodeEnvelope(raw);
    if (!e || !isExpired(e)) return liveValue(e);
    // Expired but still stored: remove it and give its bytes back, under the
    // tenant's write lock, re-reading in case a write replaced it meanwhile.
    return this.core.exclusive(this.ns, async () => {
      const [again, usageRaw] = await this.core.backend.readMany([sk, usageKey(this.ns)]);
      const cur = decodeEnvelope(again);
      if (!cur || !isExpired(cur)) return liveValue(cur);
      await this.core.backend.keyv.delete(sk);
      await writeUsage(this.core.backend, this.ns, decodeUsage(usageRaw) - storedBytes(key, cur));
      return undefined;
    });
  }

  /** Whether `key` holds a live (unexpired) value. */
  async has(key: string): Promise<boolean> {
    // Not Keyv's has(): with the SQLite and Redis adapters it ignores expiry.
    return (await this.get(key)) !== undefined;
  }

  /**
   * Store JSON text under `key`, optionally expiring after `ttlMs`. A set
   * without ttlMs replaces the old expiry with none. Throws INVALID_FIELD for
   * a bad key, non-JSON text or a bad ttlMs, and QUOTA_EXCEEDED when the entry
   * is over `maxValueBytes` or the tenant would go over `maxBytes`; on any
   * throw the old value and the usage are unchanged.
   */
  async set(key: string, json: string, ttlMs?: number): Promise<void> {
    validateKey(key);
    validateJsonType(json);
    validateTtl(ttlMs);
    const bytes = entryBytes(key, json);
    const { maxBytes, maxValueBytes } = this.limits;
    if (bytes > maxValueBytes) {
      throw new SluiceError(
        'QUOTA_EXCEEDED',
        `cache entry is ${bytes} bytes (key + JSON), over the max_value_kb limit of ${maxValueBytes} bytes`,
      );
    }
    // Parse only after the size check, so an oversized value is never parsed.
    validateJsonText(json);
    this.core.assertOpen();
    const sk = dataKey(this.ns, key);
    await this.core.exclusive(this.ns, async () => {
      const backend = this.core.backend;
      const [oldRaw, usageRaw] = await backend.readMany([sk, usageKey(this.ns)]);
      // An expired old entry still occupies the store until replaced, so it counts.
      const oldBytes = storedBytes(key, decodeEnvelope(oldRaw));
      const usage = decodeUsage(usageRaw);
      const next = usage - oldBytes + bytes;
      // A write that does not grow usage is allowed even over a (lowered) limit.
      if (next > maxBytes && next > usage) {
        throw new SluiceError(
          'QUOTA_EXCEEDED',
          `cache write would use ${next} bytes, over the max_cache_mb limit of ${maxBytes} bytes (using ${usage})`,
        );
      }
      // Two writes, not one transaction: order them so a crash in between can
      // only over-count (never let a tenant past its quota). sweep() repairs it.
      if (next > usage) {
        await writeUsage(backend, this.ns, next);
        try {
          await backend.keyv.set(sk, json, ttlMs);
        } catch (err) {
          await writeUsage(backend, this.ns, usage).catch(() => undefined);
          throw err;
        }
      } else {
        await backend.keyv.set(sk, json, ttlMs);
        if (next !== usage) await writeUsage(backend, this.ns, next);
      }
    });
  }

  /** Remove `key`; true if it held a live value. */
  async delete(key: string): Promise<boolean> {
    validateKey(key);
    this.core.assertOpen();
    const sk = dataKey(this.ns, key);
    return this.core.exclusive(this.ns, async () => {
      const backend = this.core.backend;
      const [oldRaw, usageRaw] = await backend.readMany([sk, usageKey(this.ns)]);
      const old = decodeEnvelope(oldRaw);
      if (!old) return false;
      await backend.keyv.delete(sk);
      const oldBytes = storedBytes(key, old);
      if (oldBytes > 0) await writeUsage(backend, this.ns, decodeUsage(usageRaw) - oldBytes);
      return liveValue(old) !== undefined;
    });
  }

  /** Bytes the tenant's entries count against `maxBytes` (UTF-8 of keys + JSON text). */
  async usage(): Promise<number> {
    this.core.assertOpen();
    const [raw] = await this.core.backend.readMany([usageKey(this.ns)]);
    return decodeUsage(raw);
  }
}

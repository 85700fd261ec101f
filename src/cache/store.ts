import type { Logger } from 'pino';
import { decodeEnvelope, openBackend, type Backend, type LeaseStore } from './backend';
import type { ForwardStore } from './forward-store';
import type { HoldStore } from './hold';
import type { PolicyStore } from './policy-store';
import { KEY_PREFIX, parseStoredKey, tenantNamespace, usageKey } from './keys';
import {
  decodeUsage,
  isExpired,
  storedBytes,
  TenantCache,
  writeUsage,
  type TenantCacheCore,
  type TenantCacheLimits,
} from './tenant-cache';
import { realClock, Repeat, type Clock } from '../util/clock';

/** Options for `CacheStore.open`. */
export interface CacheStoreOptions {
  /** Base for a relative `sqlite://` path; default `process.cwd()`. */
  cwd?: string;
  /** Run `sweep()` this often (unref'd timer); 0 or absent: only when called. */
  sweepIntervalMs?: number;
  /** Store errors and sweep results go here. */
  logger?: Logger;
  /** The gateway's clock: wall time for hold, lease and journal times, and the sweep's timer (default the process clock). */
  clock?: Clock;
}

/** Expired entries re-checked and deleted per lock acquisition, so a big sweep never holds a tenant long. */
const SWEEP_BATCH = 256;

interface TenantScan {
  /** Bytes of entries that were live when scanned. */
  live: number;
  /** Stored key → tenant key, of entries that were expired when scanned. */
  expired: Map<string, string>;
  /** Stored keys already counted (only when the backend's scan can repeat keys). */
  seen?: Set<string>;
}

/**
 * The cache shared by all tenants of one process: a Keyv store (memory,
 * SQLite or Redis) plus per-tenant write serialisation and quota accounting.
 * Tenants use it only through `forTenant`.
 */
export class CacheStore {
  /** Which kind of store the URL opened. */
  readonly kind: Backend['kind'];
  private readonly backend: Backend;
  private readonly log: Logger | undefined;
  /** Tail of each namespace's write chain; removed when it drains. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Bumped when a tracked write starts and ends; sweep() uses it to know a tenant stayed quiet. */
  private readonly generations = new Map<string, number>();
  private readonly core: TenantCacheCore;
  private sweeper: Repeat | undefined;
  private sweeping: Promise<number> | undefined;
  private closed = false;

  private constructor(backend: Backend, opts: CacheStoreOptions) {
    this.backend = backend;
    this.kind = backend.kind;
    this.log = opts.logger;
    this.core = {
      backend,
      exclusive: (ns, fn) => this.exclusive(ns, fn, true),
      assertOpen: () => this.assertOpen(),
    };
    const every = opts.sweepIntervalMs ?? 0;
    // The clock's timers never keep the process alive.
    if (every > 0) this.sweeper = new Repeat(opts.clock ?? realClock, every, async () => {
      if (!this.closed) await this.sweep();
    }, (err) => this.log?.warn({ err }, 'cache sweep failed'));
  }

  /**
   * Open the store named by `url`: `memory://`; `sqlite://data/cache.sqlite`
   * (relative to `opts.cwd`, parent directory created) or
   * `sqlite:///absolute/path.sqlite`; `redis://host:port` or `rediss://…`.
   * Rejects if the store cannot be reached.
   */
  static async open(url: string, opts: CacheStoreOptions = {}): Promise<CacheStore> {
    const log = opts.logger?.child({ component: 'cache' });
    const backend = await openBackend(url, {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      clock: opts.clock ?? realClock,
      onError: (err) => log?.warn({ err }, 'cache store error'),
      onNote: (msg, fields) => log?.info(fields, msg),
    });
    return new CacheStore(backend, { ...opts, ...(log ? { logger: log } : {}) });
  }

  /** Leases in the same store: a `single: true` bind is held by one replica at a time through one (docs/design.md, "Replicas"). */
  get leases(): LeaseStore {
    return this.backend.leases;
  }

  /** Messages held for ESMEs bound on another replica or not at all, in the same store (docs/design.md, "Replicas"). */
  get holds(): HoldStore {
    return this.backend.holds;
  }

  /** The store-and-forward journal in the same store: the queue, receipt correlations, early receipts. */
  get forward(): ForwardStore {
    return this.backend.forward;
  }

  /** Uploaded policy versions in the same store, shared by the replicas (see PolicyVersions). */
  get policies(): PolicyStore {
    return this.backend.policies;
  }

  /**
   * The cache of one tenant, enforcing `limits` (bytes). Any number of views of
   * the same tenant may exist (e.g. across a limits reload); they share one
   * write queue and one usage counter.
   */
  forTenant(tenantId: string, limits: TenantCacheLimits): TenantCache {
    this.assertOpen();
    return new TenantCache(this.core, tenantId, tenantNamespace(tenantId), limits);
  }

  /**
   * Delete expired entries of every tenant (including ones no one will ever
   * read again) and correct usage: each tenant's counter loses the bytes
   * removed, and for a tenant this process did not write during the sweep it
   * is recomputed from what is stored — repairing drift from a crash between
   * a value write and its counter write, or from Redis expiring keys by
   * itself. Returns how many entries it deleted. Concurrent calls share one run.
   */
  sweep(): Promise<number> {
    this.assertOpen();
    this.sweeping ??= this.runSweep().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /**
   * Rejects unless the store can be written now: the cache's connection and
   * the journal's each take the write lock (SQLite: a read-only file, WAL or
   * directory fails it; Redis: a replica, a full or snapshot-failing server),
   * and the journal's last commit did not fail (a full disk fails commits,
   * not a lock). Writes nothing that stays.
   */
  async probe(): Promise<void> {
    this.assertOpen();
    await this.backend.probe();
    await this.backend.forward.probe();
  }

  /** Stop the sweep timer, let queued writes finish, and close the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweeper?.stop();
    await this.sweeping?.catch(() => undefined);
    await Promise.all([...this.chains.values()]);
    await this.backend.forward.close();
    await this.backend.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('cache store is closed');
  }

  private bump(ns: string): void {
    this.generations.set(ns, (this.generations.get(ns) ?? 0) + 1);
  }

  /** Serialise `fn` behind every earlier write of `ns` in this process. */
  private exclusive<T>(ns: string, fn: () => Promise<T>, track: boolean): Promise<T> {
    const prev = this.chains.get(ns) ?? Promise.resolve();
    const run = prev.then(async () => {
      if (track) this.bump(ns);
      try {
        return await fn();
      } finally {
        if (track) this.bump(ns);
      }
    });
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(ns, tail);
    void tail.then(() => {
      if (this.chains.get(ns) === tail) this.chains.delete(ns);
    });
    return run;
  }

  private async runSweep(): Promise<number> {
    const started = new Map(this.generations);
    const scans = new Map<string, TenantScan>();
    const scanOf = (ns: string): TenantScan => {
      let s = scans.get(ns);
      if (!s) {
        s = { live: 0, expired: new Map(), ...(this.backend.mayRepeat ? { seen: new Set<string>() } : {}) };
        scans.set(ns, s);
      }
      return s;
    };
    // One pass over every cache key, outside any lock.
    for await (const [sk, raw] of this.backend.scan(KEY_PREFIX)) {
      const parsed = parseStoredKey(sk);
      if (!parsed) continue;
      const s = scanOf(parsed.ns);
      if (parsed.kind === 'usage') continue;
      if (s.seen) {
        if (s.seen.has(sk)) continue;
        s.seen.add(sk);
      }
      const e = decodeEnvelope(raw);
      if (e && isExpired(e)) s.expired.set(sk, parsed.key);
      else s.live += storedBytes(parsed.key, e);
    }

    let deleted = 0;
    for (const [ns, s] of scans) {
      const expired = [...s.expired];
      for (let i = 0; i < expired.length; i += SWEEP_BATCH) {
        deleted += await this.deleteExpired(ns, expired.slice(i, i + SWEEP_BATCH));
      }
      await this.exclusive(ns, () => this.reconcile(ns, s.live, started.get(ns) ?? 0), false);
    }
    if (deleted > 0) this.log?.debug({ deleted, tenants: scans.size }, 'cache sweep');
    return deleted;
  }

  /** Under the tenant's lock: delete the candidates that are still expired and give their bytes back. */
  private deleteExpired(ns: string, batch: [string, string][]): Promise<number> {
    return this.exclusive(
      ns,
      async () => {
        const raws = await this.backend.readMany([...batch.map(([sk]) => sk), usageKey(ns)]);
        const gone: string[] = [];
        let bytes = 0;
        batch.forEach(([sk, key], i) => {
          const e = decodeEnvelope(raws[i]);
          if (e && isExpired(e)) {
            gone.push(sk);
            bytes += storedBytes(key, e);
          }
        });
        if (gone.length === 0) return 0;
        await this.backend.keyv.deleteMany(gone);
        if (bytes > 0) await writeUsage(this.backend, ns, decodeUsage(raws[batch.length]) - bytes);
        return gone.length;
      },
      false,
    );
  }

  /** Under the tenant's lock: if nothing here wrote the tenant since the scan began, its usage is what the scan saw live. */
  private async reconcile(ns: string, live: number, generationAtStart: number): Promise<void> {
    if ((this.generations.get(ns) ?? 0) !== generationAtStart) return; // written meanwhile; the scan may be stale
    const [raw] = await this.backend.readMany([usageKey(ns)]);
    const usage = decodeUsage(raw);
    if (usage === live) return;
    await writeUsage(this.backend, ns, live);
    this.log?.info({ tenantNs: ns, was: usage, now: live }, 'cache usage corrected');
  }
}

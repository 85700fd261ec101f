import * as fs from 'node:fs';
import * as path from 'node:path';
import { Keyv, type DeserializedData, type KeyvStoreAdapter } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis, { createClient } from '@keyv/redis';
import { redisForward } from './forward-redis';
import { memoryForward } from './forward-memory';
import { journalFileOf, sqliteForward } from './forward-sqlite';
import { moveJournalOut } from './journal-migration';
import { ForwardStore } from './forward-store';
import { HOLD_TABLES, memoryHolds, redisHolds, sqliteHolds, type HoldStore } from './hold';
import { memoryPolicies, POLICY_TABLES, redisPolicies, sqlitePolicies, type PolicyStore } from './policy-store';
import { doubling } from '../util/backoff';
import { realClock, type Clock } from '../util/clock';

/**
 * One Keyv instance over one of Keyv's own adapters (a Map, @keyv/sqlite,
 * @keyv/redis), plus the two things Keyv does not offer safely: raw reads
 * that do not silently delete expired entries (the cache must account for
 * what it removes), and a scan that does not skip keys while others write.
 * Internal to src/cache.
 */
export interface Backend {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  /** Writes and deletes go through Keyv (envelope, TTL, error propagation). */
  readonly keyv: Keyv<unknown>;
  /** Raw serialised envelopes, undefined where absent. Expired entries are returned, not deleted. */
  readMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * Every (stored key, raw envelope) whose key starts with `prefix`. Each key
   * present for the whole scan is yielded at least once; `mayRepeat` says
   * whether a key can come twice (Redis SCAN can).
   */
  scan(prefix: string): AsyncIterable<[string, string]>;
  readonly mayRepeat: boolean;
  /** Leases in the same store (outbound binds held by one replica at a time). */
  readonly leases: LeaseStore;
  /** Messages held for ESMEs bound elsewhere or not at all, and the session directory. */
  readonly holds: HoldStore;
  /** The store-and-forward journal (queue, receipt correlation), group-committed. */
  readonly forward: ForwardStore;
  /** Policy versions uploaded through the admin API, and which one each tenant is pinned to. */
  readonly policies: PolicyStore;
  /** Rejects if the cache's own connection cannot write (the journal has a probe of its own). */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A named lease in the shared store: held by one owner at a time until it
 * expires, renewed by its holder, taken over by anyone once it has expired.
 * Each call is one atomic step in the store (a SQLite upsert, a Redis script).
 */
export interface LeaseStore {
  /**
   * Take `key` for `owner` for `ttlMs`, or renew it if `owner` holds it
   * already. True if `owner` holds it now; false if someone else does.
   * Rejects only when the store cannot answer.
   */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Give `key` up if `owner` holds it (a no-op otherwise). */
  release(key: string, owner: string): Promise<void>;
}

const wallOf = (o: BackendOptions): (() => number) => {
  const clock = o.clock ?? realClock;
  return () => clock.wall();
};

/** Options for opening a backend. */
export interface BackendOptions {
  cwd?: string;
  /** The gateway's clock: wall time for the expiries of holds and leases and the journal's timers (default the process clock; tests pass their own). */
  clock?: Clock;
  /** Called with errors the adapter emits (connection loss, reconnect attempts). */
  onError?: (err: unknown) => void;
  /** Told what opening did that an operator should know of (a journal moved to its own file). */
  onNote?: (msg: string, fields: Record<string, unknown>) => void;
}

/** The value Keyv stores for each key: the JSON text (or the usage number) and an absolute expiry. */
export type Envelope = DeserializedData<unknown>;

// Plain JSON, no reviver: byte-compatible with Keyv's default serializer for
// what we store (JSON text never starts with ':', usage is a number), and
// about twice as fast to parse (0.76 vs 1.55 µs for a DLR-sized entry here).
const serialize = (data: unknown): string => JSON.stringify(data);
const deserialize = <Value>(data: string): DeserializedData<Value> | undefined => {
  try {
    return JSON.parse(data) as DeserializedData<Value>;
  } catch {
    return undefined;
  }
};

/** Parse a raw envelope; undefined if absent or not ours. */
export function decodeEnvelope(raw: string | undefined): Envelope | undefined {
  if (raw === undefined || raw === null) return undefined;
  const e = deserialize<unknown>(raw);
  return e !== null && typeof e === 'object' ? e : undefined;
}

function newKeyv(store: KeyvStoreAdapter | Map<string, string>): Keyv<unknown> {
  return new Keyv<unknown>({
    store,
    // Our keys carry their own prefix. Keyv's prefixing would also collapse
    // 'ns:foo' and 'foo' into one key (it skips prefixing keys that already
    // start with 'ns:'), and on Redis double-prefix with the adapter's own.
    namespace: undefined,
    useKeyPrefix: false,
    // By default Keyv (and @keyv/redis) swallow store errors: get → undefined,
    // set → "true". The cache must see failures or its accounting drifts.
    throwOnErrors: true,
    serialize,
    deserialize,
  });
}

/** Open a backend for a `memory://`, `sqlite://…`, `redis://…` or `rediss://…` URL. */
export async function openBackend(url: string, opts: BackendOptions = {}): Promise<Backend> {
  if (typeof url !== 'string') throw new TypeError('cache url must be a string');
  if (url === 'memory://' || url === 'memory:') return memoryBackend(opts);
  if (url.startsWith('sqlite://')) return sqliteBackend(url.slice('sqlite://'.length), opts);
  if (url.startsWith('redis://') || url.startsWith('rediss://')) return redisBackend(url, opts);
  throw new TypeError(`unsupported cache url scheme: ${url.replace(/\/\/[^@/]*@/, '//…@')} (memory://, sqlite://, redis://, rediss://)`);
}

/** Leases of one process (a memory store is never shared): expiry on the wall clock, like the SQLite table's. */
export function memoryLeases(now: () => number = Date.now): LeaseStore {
  const held = new Map<string, { owner: string; until: number }>();
  return {
    async acquire(key, owner, ttlMs) {
      const t = now();
      const h = held.get(key);
      if (h && h.owner !== owner && h.until > t) return false;
      held.set(key, { owner, until: t + ttlMs });
      return true;
    },
    async release(key, owner) {
      if (held.get(key)?.owner === owner) held.delete(key);
    },
  };
}

function memoryBackend(opts: BackendOptions): Backend {
  const map = new Map<string, string>();
  const keyv = newKeyv(map);
  keyv.on('error', (e) => opts.onError?.(e));
  return {
    kind: 'memory',
    keyv,
    mayRepeat: false,
    leases: memoryLeases(wallOf(opts)),
    holds: memoryHolds(wallOf(opts)),
    forward: new ForwardStore(memoryForward(), opts.clock),
    policies: memoryPolicies(),
    async readMany(keys) {
      return keys.map((k) => map.get(k));
    },
    async probe() {},
    async *scan(prefix) {
      // Map iteration is live and never skips entries that stay present.
      for (const [k, v] of map) if (k.startsWith(prefix)) yield [k, v];
    },
    async close() {
      map.clear();
    },
  };
}

/** The pragmas applied to every SQLite cache connection; see sqliteBackend. */
export const SQLITE_PRAGMAS = ['PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL'] as const;

/** Leases in a SQLite cache file: one row per lease, beside Keyv's table. */
const LEASE_TABLE = 'CREATE TABLE IF NOT EXISTS sluice_lease (key TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)';
const LEASE_ACQUIRE = `INSERT INTO sluice_lease (key, owner, until) VALUES (?1, ?2, ?3)
  ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until
  WHERE sluice_lease.owner = excluded.owner OR sluice_lease.until <= ?4
  RETURNING owner`;

/**
 * A write from one connection while another process's connection commits can
 * fail SQLITE_BUSY at once, without the busy timeout's wait (WAL: its read
 * snapshot went stale before it could write), and so can two connections
 * setting up one new file together. Nothing was written; a new try takes a
 * fresh snapshot. Measured: 1 in 8 runs of 8 lease owners racing on two
 * connections hit it, and 1 in 6 of two stores opening one new file.
 */
async function retryBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 4 * (i + 1)));
    }
  }
}

/** SQLite's own messages (SQLITE_CANTOPEN: unable to open database file) do not say which file. */
function sqliteOpenError(file: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const out = new Error(`sqlite store ${file}: ${e?.message ?? String(err)}`, { cause: err });
  if (typeof e?.code === 'string') (out as NodeJS.ErrnoException).code = e.code;
  return out;
}

async function sqliteBackend(location: string, opts: BackendOptions): Promise<Backend> {
  let file: string;
  if (location === ':memory:') {
    file = location;
  } else {
    if (location.length === 0) throw new TypeError('sqlite:// cache url needs a path');
    file = path.resolve(opts.cwd ?? process.cwd(), location);
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: 'sluice_cache', busyTimeout: 5000 });
  const keyv = newKeyv(adapter);
  keyv.on('error', (e) => opts.onError?.(e));
  const table = String(adapter.opts.table);
  try {
    // WAL + synchronous=NORMAL: a commit no longer waits for an fsync, only a
    // checkpoint does. Measured here: sequential set 357/s → 9,200/s. A
    // process crash loses nothing; a power cut can lose the last commits but
    // never corrupts the file. (journal_mode persists in the file;
    // synchronous is per connection, and the adapter keeps one connection.)
    // Two replicas opening one new file at once can meet SQLITE_BUSY here too.
    for (const q of [...SQLITE_PRAGMAS, LEASE_TABLE, ...HOLD_TABLES, ...POLICY_TABLES]) await retryBusy(() => adapter.query(q));
  } catch (err) {
    await adapter.disconnect().catch(() => undefined);
    throw sqliteOpenError(file, err);
  }
  let forward: ForwardStore;
  try {
    const moved = file === ':memory:' ? undefined : await moveJournalOut((sql, ...params) => adapter.query(sql, ...params) as Promise<unknown[]>, journalFileOf(file));
    if (moved && moved.messages + moved.early > 0) opts.onNote?.('journal moved out of the cache file into its own', { ...moved, journal: journalFileOf(file) });
    forward = new ForwardStore(await sqliteForward(journalFileOf(file), { onError: (e) => opts.onError?.(e) }), opts.clock);
  } catch (err) {
    await adapter.disconnect().catch(() => undefined);
    throw sqliteOpenError(journalFileOf(file), err);
  }
  return {
    kind: 'sqlite',
    keyv,
    forward,
    mayRepeat: false,
    holds: sqliteHolds(adapter, retryBusy, wallOf(opts)),
    policies: sqlitePolicies(adapter, retryBusy),
    leases: {
      async acquire(key, owner, ttlMs) {
        // One statement: inserted, or updated where we hold it or it has expired; RETURNING says which.
        // Expiry is on the wall clock: the replicas sharing a SQLite file share a host.
        return retryBusy(async () => {
          const t = wallOf(opts)();
          const rows = (await adapter.query(LEASE_ACQUIRE, key, owner, t + ttlMs, t)) as unknown[];
          return rows.length === 1;
        });
      },
      async release(key, owner) {
        await retryBusy(() => adapter.query('DELETE FROM sluice_lease WHERE key = ? AND owner = ?', key, owner));
      },
    },
    async probe() {
      // A write statement that changes nothing still needs the write lock: a read-only file or WAL fails it.
      // Once: the connection's busy timeout (5 s) is the wait; a lock held longer is an unwritable store.
      await adapter.query("DELETE FROM sluice_lease WHERE key = 'sluice:probe'");
    },
    async readMany(keys) {
      if (keys.length === 1) return [(await adapter.get<string>(keys[0]!)) as string | undefined];
      return (await adapter.getMany<string>([...keys])) as (string | undefined)[];
    },
    async *scan(prefix) {
      // The adapter's own iterator pages with LIKE … LIMIT/OFFSET: LIKE treats
      // '_' as a wildcard and ignores ASCII case, and OFFSET skips rows when
      // others delete meanwhile. Keyset paging on the primary key through the
      // adapter's connection has neither problem and stays O(n).
      const upper = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
      let after = prefix;
      for (;;) {
        const rows = (await adapter.query(
          `SELECT key, value FROM ${table} WHERE key > ? AND key < ? ORDER BY key LIMIT 500`,
          after,
          upper,
        )) as { key: string; value: string }[];
        for (const r of rows) yield [r.key, r.value];
        if (rows.length < 500) return;
        after = rows[rows.length - 1]!.key;
      }
    },
    async close() {
      await keyv.disconnect();
    },
  };
}

const REDIS_ACQUIRE = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;
const REDIS_RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

async function redisBackend(url: string, opts: BackendOptions): Promise<Backend> {
  // Our own client so the first connect fails fast with its real cause
  // (ECONNREFUSED, auth, TLS) instead of retrying forever behind the
  // adapter's generic "not connected" error; once connected it reconnects
  // with capped backoff like the adapter's default.
  let connected = false;
  const client = createClient({
    url,
    // While disconnected, fail commands at once instead of queueing them:
    // a policy handler gets an error it can answer, not a hang to its deadline.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries: number, cause: Error) => (connected ? doubling(100, retries + 1, 2000) : cause),
    },
  });
  client.on('ready', () => {
    connected = true;
  });
  const adapter = new KeyvRedis<string>(client, {
    throwOnErrors: true,
    throwOnConnectError: true,
    // Only the scan uses the separator: iterator('sluice:cache') → MATCH 'sluice:cache:*'.
    keyPrefixSeparator: ':',
  });
  const keyv = newKeyv(adapter); // attaches the error listener before anything can fail
  keyv.on('error', (e) => opts.onError?.(e));
  try {
    await client.connect();
  } catch (err) {
    await adapter.disconnect(true).catch(() => undefined);
    throw err;
  }
  return {
    kind: 'redis',
    keyv,
    mayRepeat: true,
    holds: redisHolds(client, wallOf(opts)),
    policies: redisPolicies(client),
    forward: new ForwardStore(redisForward(client), opts.clock),
    // The journal's probe writes through this same client.
    async probe() {},
    leases: {
      // Expiry is Redis's own (PX), so the replicas' clocks do not matter.
      async acquire(key, owner, ttlMs) {
        return (await client.eval(REDIS_ACQUIRE, { keys: [key], arguments: [owner, String(Math.ceil(ttlMs))] })) === 1;
      },
      async release(key, owner) {
        await client.eval(REDIS_RELEASE, { keys: [key], arguments: [owner] });
      },
    },
    async readMany(keys) {
      if (keys.length === 1) return [(await adapter.get(keys[0]!)) as string | undefined];
      return (await adapter.getMany([...keys])) as (string | undefined)[];
    },
    async *scan(prefix) {
      // SCAN guarantees every key present throughout is returned, possibly twice.
      const ns = prefix.slice(0, -1); // drop the trailing ':' the separator adds back
      for await (const [k, v] of adapter.iterator<string>(ns)) {
        if (typeof v === 'string') yield [prefix + k, v];
      }
    },
    async close() {
      await keyv.disconnect();
    },
  };
}

import Database from 'better-sqlite3';
import { startCheckpointer, WAL_LIMIT_BYTES, type Checkpointer } from './journal-checkpointer';
import { MSG_OUT, MSG_QUEUED, type ClaimState, type EarlyRow, type ForwardBackend, type ForwardOp, type MsgRow, type QueueDepth } from './forward-store';

/*
 * The journal's SQLite backend (forward-store.ts has the contract it keeps;
 * forward-memory.ts and forward-redis.ts are the others), in a file of its
 * own beside the cache file (docs/design.md, "The journal on SQLite").
 *
 * It runs on the event loop's thread, synchronously (better-sqlite3): a
 * group commit of a whole window of messages costs less CPU than one trip
 * to libuv's thread pool and back, and a submit's path waits for no thread.
 * The cost is that a commit holds the loop while it writes, so what could
 * wait long never runs here: a write lock another connection holds is never
 * waited for on the loop (SQLite's busy timeout is 0; the write is tried
 * again a few ms later, the loop free meanwhile), and WAL
 * checkpoints (which fsync) run on a thread of their own (journal-checkpointer.ts).
 *
 * It must stay the only SQLite library that opens this file in the process:
 * two copies of SQLite on one file release each other's POSIX locks (the
 * cache file is node-sqlite3's, through Keyv's adapter; this file is
 * better-sqlite3's alone).
 */

const SQL_TABLES = [
  `CREATE TABLE IF NOT EXISTS sluice_msg (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, up TEXT, state INTEGER NOT NULL,
     due INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL, created INTEGER NOT NULL, route TEXT, data TEXT NOT NULL) WITHOUT ROWID`,
  'CREATE INDEX IF NOT EXISTS sluice_msg_up ON sluice_msg (up) WHERE up IS NOT NULL',
  'CREATE INDEX IF NOT EXISTS sluice_msg_due ON sluice_msg (due) WHERE state = 0',
  'CREATE INDEX IF NOT EXISTS sluice_msg_out ON sluice_msg (due) WHERE state = 3',
  'CREATE INDEX IF NOT EXISTS sluice_msg_expires ON sluice_msg (expires) WHERE state <> 0',
  `CREATE TABLE IF NOT EXISTS sluice_early (up TEXT NOT NULL, rid TEXT NOT NULL, expires INTEGER NOT NULL, data TEXT NOT NULL,
     PRIMARY KEY (up, rid)) WITHOUT ROWID`,
  'CREATE INDEX IF NOT EXISTS sluice_early_expires ON sluice_early (expires)',
];
export const JOURNAL_TABLES: readonly string[] = SQL_TABLES;
const COLS = 'key, tenant, up, state, due, expires, created, route, data';
// The state is written into the text, not bound: SQLite uses a partial index only for a literal.
const sqlClaim = (state: ClaimState): string => `UPDATE sluice_msg SET claimed = ? WHERE key IN (
  SELECT key FROM sluice_msg WHERE state = ${Number(state)} AND due <= ? AND claimed <= ? AND tenant IN (SELECT value FROM json_each(?)) ORDER BY due LIMIT ?)
  RETURNING ${COLS}`;

/**
 * How long one attempt may block the event loop waiting for another
 * connection's lock: not at all. With even 5 ms, the journal's writers that
 * retry at once during an outage (the group commit, the queue and outbox
 * claims, the health probe) kept the loop blocked most of the time, and the
 * admin API's keep-alive sockets were reset under its requests.
 */
const BUSY_SLICE_MS = 0;
/** How long a write keeps trying (the loop free between tries) before it fails. */
const BUSY_GIVE_UP_MS = 5000;
/** How long a commit leaves the lock to a checkpoint that starts the WAL over, at most. */
const RESTART_WAIT_MS = 250;

/** The journal's file for a cache file: `data/cache.sqlite` → `data/cache.journal.sqlite`. */
export function journalFileOf(cacheFile: string): string {
  if (cacheFile === ':memory:') return cacheFile;
  return `${cacheFile.replace(/\.(sqlite3?|db)$/i, '')}.journal.sqlite`;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    // Busy retries: a real pause, whatever clock the store was given (the lock is another process's).
    setTimeout(resolve, ms);
  });

/**
 * Run `fn` (one transaction or statement), retrying while another connection
 * holds the write lock. A try does not wait (BUSY_SLICE_MS); between tries
 * the event loop runs.
 */
async function retryBusy<T>(fn: () => T): Promise<T> {
  const start = performance.now();
  for (let i = 0; ; i++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || performance.now() - start > BUSY_GIVE_UP_MS) throw withCode(err);
      await sleep(Math.min(1 + i, 20) * (0.5 + Math.random()));
    }
  }
}

/** better-sqlite3's messages leave out SQLite's code ("attempt to write a readonly database"): put it in front, as the cache's errors have it. */
export function withCode(err: unknown): unknown {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code !== 'string' || typeof e.message !== 'string' || e.message.startsWith(e.code)) return err;
  const out = new Error(`${e.code}: ${e.message}`, { cause: err });
  (out as NodeJS.ErrnoException).code = e.code;
  return out;
}

/** Coalesce ops to their last write per key, keeping the kinds apart: each key is written once per commit. */
function coalesce(ops: readonly ForwardOp[]): { puts: MsgRow[]; dels: string[]; unearlies: [string, string][]; correlates: string[] } {
  const msgs = new Map<string, MsgRow | null>();
  const unearly = new Map<string, [string, string]>();
  const correlates: string[] = [];
  for (const op of ops) {
    if (op.t === 'put') {
      msgs.set(op.row.key, op.row);
      if (op.correlates && op.row.up) correlates.push(op.row.up);
    } else if (op.t === 'del') msgs.set(op.key, null);
    else unearly.set(`${op.up}\u0000${op.rid}`, [op.up, op.rid]);
  }
  const puts: MsgRow[] = [];
  const dels: string[] = [];
  for (const [k, r] of msgs) (r ? puts.push(r) : dels.push(k));
  return { puts, dels, unearlies: [...unearly.values()], correlates };
}

export interface SqliteForwardOptions {
  /** A checkpoint that failed (it is tried again; commits report their own errors). */
  onError?: (err: Error) => void;
}

/**
 * The journal in `file` (WAL, synchronous=NORMAL: a killed process loses
 * nothing that was committed; a power cut may lose the last commits).
 */
export async function sqliteForward(file: string, opts: SqliteForwardOptions = {}): Promise<ForwardBackend> {
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: BUSY_SLICE_MS });
  } catch (err) {
    throw withCode(err);
  }
  let checkpointer: Checkpointer | undefined;
  try {
    await retryBusy(() => db.pragma('journal_mode = WAL'));
    db.pragma('synchronous = NORMAL');
    await retryBusy(() => db.transaction(() => SQL_TABLES.forEach((q) => db.exec(q))).immediate());
    // Checkpoints (the writes that fsync) are not this thread's: see the file's header.
    if (file !== ':memory:') {
      db.pragma('wal_autocheckpoint = 0');
      // The writer is who starts the WAL over, and truncates it then: to this size.
      db.pragma(`journal_size_limit = ${WAL_LIMIT_BYTES}`);
      checkpointer = startCheckpointer(file, (message) => opts.onError?.(new Error(`journal checkpoint: ${message}`)));
    }
  } catch (err) {
    db.close();
    throw withCode(err);
  }
  const q = {
    put: db.prepare(`INSERT OR REPLACE INTO sluice_msg (key, tenant, up, state, due, claimed, expires, created, route, data) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`),
    del: db.prepare('DELETE FROM sluice_msg WHERE key = ?'),
    unearly: db.prepare('DELETE FROM sluice_early WHERE up = ? AND rid = ?'),
    hasEarly: db.prepare('SELECT 1 FROM sluice_early WHERE up = ? LIMIT 1').pluck(),
    hasMsg: db.prepare('SELECT 1 FROM sluice_msg WHERE up = ? LIMIT 1').pluck(),
    park: db.prepare('INSERT OR REPLACE INTO sluice_early (up, rid, expires, data) VALUES (?, ?, ?, ?)'),
    get: db.prepare(`SELECT ${COLS} FROM sluice_msg WHERE key = ?`),
    byUp: db.prepare(`SELECT ${COLS} FROM sluice_msg WHERE up = ?`),
    claim: db.prepare(sqlClaim(MSG_QUEUED)),
    claimOut: db.prepare(sqlClaim(MSG_OUT)),
    wake: db.prepare('UPDATE sluice_msg SET due = ? WHERE state = 0 AND tenant = ? AND due > ?'),
    earlyOf: db.prepare('SELECT up, rid, expires, data FROM sluice_early WHERE up = ?'),
    matchable: db.prepare('SELECT e.up, e.rid, e.expires, e.data FROM sluice_early e WHERE EXISTS (SELECT 1 FROM sluice_msg m WHERE m.up = e.up) LIMIT ?'),
    expired: db.prepare('SELECT up, rid, expires, data FROM sluice_early WHERE expires < ? ORDER BY expires LIMIT ?'),
    sweepMsg: db.prepare('DELETE FROM sluice_msg WHERE state <> 0 AND expires < ?'),
    sweepEarly: db.prepare('DELETE FROM sluice_early WHERE expires < ?'),
    depth: db.prepare("SELECT tenant, coalesce(route, '') AS route, count(*) AS count, min(created) AS oldest FROM sluice_msg WHERE state = 0 GROUP BY tenant, route"),
  };

  /** One transaction: the rows, then which new correlation keys have receipts parked (read under the write lock, so a park is before or after it, never between). */
  const commitTx = db.transaction((c: ReturnType<typeof coalesce>): string[] => {
    for (const r of c.puts) q.put.run(r.key, r.tenant, r.up, r.state, r.due, r.expires, r.created, r.route, r.data);
    for (const k of c.dels) q.del.run(k);
    for (const [up, rid] of c.unearlies) q.unearly.run(up, rid);
    return c.correlates.filter((up) => q.hasEarly.get(up) !== undefined);
  });
  const parkTx = db.transaction((rows: readonly EarlyRow[]): boolean => {
    if (rows.some((e) => q.hasMsg.get(e.up) !== undefined)) return false;
    for (const e of rows) q.park.run(e.up, e.rid, e.expires, e.data);
    return true;
  });
  const sweepTx = db.transaction((now: number, earlyBefore: number): number => q.sweepMsg.run(now).changes + q.sweepEarly.run(earlyBefore).changes);
  const claimTx = (st: Database.Statement, args: unknown[]): MsgRow[] => st.all(...args) as MsgRow[];

  // Lookups of a batch in one read transaction: each statement on its own would begin and end
  // one, taking and giving back a read lock of the WAL's shared memory (fcntl calls) every time.
  const readTx = db.transaction(<T>(keys: readonly string[], one: (k: string) => T[]): T[] => keys.flatMap(one));
  const read = <T>(keys: readonly string[], one: (k: string) => T[]): T[] => (keys.length > 1 ? (readTx.deferred(keys, one) as T[]) : keys.flatMap(one));

  let closed = false;
  const wrote = (): void => checkpointer?.wrote();
  /** While the checkpoint thread waits for the lock to start the WAL over, commits wait for it (a few ms, the loop free). */
  const leaveLockToCheckpoint = async (): Promise<void> => {
    const start = performance.now();
    while (checkpointer?.wantsLock() && performance.now() - start < RESTART_WAIT_MS) await sleep(1);
  };
  return {
    kind: 'sqlite',
    async commit(ops) {
      // Only when asked: the common commit takes no extra turn of the microtask queue.
      if (checkpointer?.wantsLock()) await leaveLockToCheckpoint();
      const c = coalesce(ops);
      const early = await retryBusy(() => commitTx.immediate(c));
      wrote();
      return { early: Promise.resolve(early) };
    },
    async park(rows) {
      const filed = await retryBusy(() => parkTx.immediate(rows));
      wrote();
      return filed;
    },
    async probe() {
      await retryBusy(() => db.transaction(() => undefined).immediate());
    },
    async get(keys) {
      return retryBusy(() =>
        read<MsgRow>(keys, (k) => {
          const r = q.get.get(k) as MsgRow | undefined;
          return r ? [r] : [];
        }),
      );
    },
    async byUp(ups) {
      return retryBusy(() => read(ups, (u) => q.byUp.all(u) as MsgRow[]));
    },
    async claimDue(tenants, now, until, limit, state = MSG_QUEUED) {
      const rows = await retryBusy(() => claimTx(state === MSG_OUT ? q.claimOut : q.claim, [until, now, now, JSON.stringify(tenants), limit]));
      if (rows.length) wrote();
      return rows;
    },
    async wake(tenant, now) {
      return retryBusy(() => q.wake.run(now, tenant, now).changes);
    },
    async early(ups) {
      return retryBusy(() => read(ups, (u) => q.earlyOf.all(u) as EarlyRow[]));
    },
    async earlyMatchable(limit) {
      return retryBusy(() => q.matchable.all(limit) as EarlyRow[]);
    },
    async earlyExpired(now, limit) {
      return retryBusy(() => q.expired.all(now, limit) as EarlyRow[]);
    },
    async sweep(now, earlyBefore) {
      return retryBusy(() => sweepTx.immediate(now, earlyBefore));
    },
    async depth() {
      return retryBusy(() => q.depth.all() as QueueDepth[]);
    },
    async close() {
      if (closed) return;
      closed = true;
      await checkpointer?.close();
      db.close();
    },
  };
}

import * as sqlite3 from 'sqlite3';
import { MSG_OUT, MSG_QUEUED, earlyId, type ClaimState, type EarlyRow, type ForwardBackend, type ForwardOp, type MsgRow, type QueueDepth } from './forward-store';

/*
 * The journal's SQLite backend (forward-store.ts has the contract it keeps;
 * forward-memory.ts and forward-redis.ts are the others). Every write is one
 * statement per kind of op, the rows travelling as one JSON array.
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
const COLS = 'key, tenant, up, state, due, expires, created, route, data';
// One statement per kind of op per commit: the rows travel as one JSON array.
const SQL_PUT = `INSERT OR REPLACE INTO sluice_msg (key, tenant, up, state, due, claimed, expires, created, route, data)
  SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 0, value->>5, value->>6, value->>7, value->>8 FROM json_each(?)`;
const SQL_DEL = 'DELETE FROM sluice_msg WHERE key IN (SELECT value FROM json_each(?))';
const SQL_UNEARLY = 'DELETE FROM sluice_early WHERE (up, rid) IN (SELECT value->>0, value->>1 FROM json_each(?))';
// One statement, so one transaction: the check and the insert see the same state.
const SQL_PARK = `INSERT OR REPLACE INTO sluice_early (up, rid, expires, data) SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?1)
  WHERE NOT EXISTS (SELECT 1 FROM sluice_msg WHERE up IN (SELECT value->>0 FROM json_each(?1)))`;
// The state is written into the text, not bound: SQLite uses a partial index only for a literal.
const sqlClaim = (state: ClaimState): string => `UPDATE sluice_msg SET claimed = ? WHERE key IN (
  SELECT key FROM sluice_msg WHERE state = ${Number(state)} AND due <= ? AND claimed <= ? AND tenant IN (SELECT value FROM json_each(?)) ORDER BY due LIMIT ?)
  RETURNING ${COLS}`;

type Sqlite = sqlite3.Database;

function run(db: Sqlite, sql: string, params: unknown[] = []): Promise<number> {
  return new Promise((resolve, reject) =>
    db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve(this.changes);
    }),
  );
}

function all<T>(db: Sqlite, sql: string, params: unknown[] = []): Promise<T[]> {
  return new Promise((resolve, reject) => db.all(sql, params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows))));
}

/** JSON as an SQL string literal: JSON text has no raw control characters, and quotes are doubled. */
function literal(v: unknown): string {
  return `'${JSON.stringify(v).replace(/'/g, "''")}'`;
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
    else unearly.set(earlyId(op.up, op.rid), [op.up, op.rid]);
  }
  const puts: MsgRow[] = [];
  const dels: string[] = [];
  for (const [k, r] of msgs) (r ? puts.push(r) : dels.push(k));
  return { puts, dels, unearlies: [...unearly.values()], correlates };
}

/**
 * The journal in the SQLite cache file, on a connection of its own (WAL,
 * synchronous=NORMAL as the cache's: a killed process loses nothing that was
 * committed). Writes on this connection run one at a time, so a claim can
 * never land inside a group commit's transaction.
 */
export async function sqliteForward(file: string): Promise<ForwardBackend> {
  const db = await new Promise<Sqlite>((resolve, reject) => {
    const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
  });
  db.configure('busyTimeout', 5000);
  for (const q of ['PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL', ...SQL_TABLES]) await run(db, q);
  // Lookups on a connection of their own: in WAL mode they never wait for a group commit.
  const reader = await new Promise<Sqlite>((resolve, reject) => {
    const d = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(d)));
  });
  reader.configure('busyTimeout', 5000);
  // Prepared once: node-sqlite3 prepares a statement anew for every db.run / db.all.
  const prepare = (sql: string, on: Sqlite = reader): Promise<sqlite3.Statement> =>
    new Promise((resolve, reject) => {
      const st = on.prepare(sql, (err: Error | null) => (err ? reject(err) : resolve(st)));
    });
  const q = {
    get: await prepare(`SELECT ${COLS} FROM sluice_msg WHERE key IN (SELECT value FROM json_each(?))`),
    byUp: await prepare(`SELECT ${COLS} FROM sluice_msg WHERE up IN (SELECT value FROM json_each(?))`),
    claim: await prepare(sqlClaim(MSG_QUEUED), db),
    claimOut: await prepare(sqlClaim(MSG_OUT), db),
    earlyOf: await prepare('SELECT up, rid, expires, data FROM sluice_early WHERE up IN (SELECT value FROM json_each(?))'),
    earlyUps: await prepare('SELECT DISTINCT up FROM sluice_early WHERE up IN (SELECT value FROM json_each(?))'),
    matchable: await prepare('SELECT e.up, e.rid, e.expires, e.data FROM sluice_early e WHERE EXISTS (SELECT 1 FROM sluice_msg m WHERE m.up = e.up) LIMIT ?'),
    expired: await prepare('SELECT up, rid, expires, data FROM sluice_early WHERE expires < ? ORDER BY expires LIMIT ?'),
  };
  // No reset after a read (it would be one more trip to the thread pool): `all` steps the
  // statement to SQLITE_DONE, which ends its read transaction, and binding the next run's
  // parameters resets it (every statement here has parameters). The suite checks that reads
  // leave the WAL free to be checkpointed.
  const rows = <T>(st: sqlite3.Statement, params: unknown[]): Promise<T[]> =>
    new Promise((resolve, reject) => st.all(params, (err: Error | null, r: T[]) => (err ? reject(err) : resolve(r))));
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = tail.then(fn, fn);
    tail = p.catch(() => undefined);
    return p;
  };
  return {
    kind: 'sqlite',
    commit(ops) {
      const c = coalesce(ops);
      // The whole transaction is one sqlite3_exec, one job on libuv's thread pool: its write
      // lock is never held across thread hops. (As separate statements, connections of other
      // replicas waiting on the lock could take every pool thread, and the COMMIT that would
      // free them waited for one: seen as 20 s stalls with two replicas on one file.)
      const parts = ['BEGIN IMMEDIATE'];
      if (c.puts.length) parts.push(SQL_PUT.replace('?', () => literal(c.puts.map((r) => [r.key, r.tenant, r.up, r.state, r.due, r.expires, r.created, r.route, r.data]))));
      if (c.dels.length) parts.push(SQL_DEL.replace('?', () => literal(c.dels)));
      if (c.unearlies.length) parts.push(SQL_UNEARLY.replace('?', () => literal(c.unearlies)));
      parts.push('COMMIT');
      const sql = parts.join(';\n');
      // Only new correlation keys: a key written before had its own commit's look.
      const ups = c.correlates;
      return serial(async () => {
        try {
          await new Promise<void>((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve())));
        } catch (err) {
          await run(db, 'ROLLBACK').catch(() => undefined);
          throw err;
        }
        // Read after the commit, so a receipt parked before it (by any connection) is seen here;
        // one parked after it saw these rows and was not parked. On the reader, after the
        // commit's waiters are told: two trips to the thread pool fewer on a submit's path.
        if (ups.length === 0) return { early: Promise.resolve([]) };
        return { early: rows<{ up: string }>(q.earlyUps, [JSON.stringify(ups)]).then((r) => r.map((x) => x.up)) };
      });
    },
    park: (parked) => serial(async () => (await run(db, SQL_PARK, [JSON.stringify(parked.map((e) => [e.up, e.rid, e.expires, e.data]))])) > 0),
    probe: () =>
      serial(async () => {
        try {
          await new Promise<void>((resolve, reject) => db.exec('BEGIN IMMEDIATE; COMMIT', (err) => (err ? reject(err) : resolve())));
        } catch (err) {
          await run(db, 'ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    get: (keys) => rows<MsgRow>(q.get, [JSON.stringify(keys)]),
    byUp: (ups) => rows<MsgRow>(q.byUp, [JSON.stringify(ups)]),
    claimDue: (tenants, now, until, limit, state = MSG_QUEUED) => serial(() => rows<MsgRow>(state === MSG_OUT ? q.claimOut : q.claim, [until, now, now, JSON.stringify(tenants), limit])),
    wake: (tenant, now) => serial(() => run(db, 'UPDATE sluice_msg SET due = ? WHERE state = 0 AND tenant = ? AND due > ?', [now, tenant, now])),
    early: (ups) => rows<EarlyRow>(q.earlyOf, [JSON.stringify(ups)]),
    earlyMatchable: (limit) => rows<EarlyRow>(q.matchable, [limit]),
    earlyExpired: (now, limit) => rows<EarlyRow>(q.expired, [now, limit]),
    sweep: (now, earlyBefore) =>
      serial(async () => (await run(db, 'DELETE FROM sluice_msg WHERE state <> 0 AND expires < ?', [now])) + (await run(db, 'DELETE FROM sluice_early WHERE expires < ?', [earlyBefore]))),
    depth: () => all<QueueDepth>(db, "SELECT tenant, coalesce(route, '') AS route, count(*) AS count, min(created) AS oldest FROM sluice_msg WHERE state = 0 GROUP BY tenant, route"),
    async close() {
      await tail;
      for (const st of Object.values(q)) await new Promise<void>((resolve) => st.finalize(() => resolve()));
      for (const d of [reader, db]) await new Promise<void>((resolve, reject) => d.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

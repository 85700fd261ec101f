import Database from 'better-sqlite3';
import { JOURNAL_TABLES } from './forward-sqlite';

/*
 * Before the journal had a file of its own, its tables (sluice_msg,
 * sluice_early) lived in the cache file. On the first start of a version
 * with the journal beside it, they move (docs/operations.md, "Upgrading"):
 * every message still waiting for its receipt, every queued message and
 * every early receipt keeps its place.
 *
 * It is one step for every process that shares the file: the cache file's
 * write lock is held from the first read to the DROP, so a second process
 * starting at the same time waits and then finds nothing left to move. A
 * crash between the copy and the DROP copies again on the next start, and
 * rows already in the journal are kept (INSERT OR IGNORE): nothing ran on
 * them in between, the process had not started.
 */

/** What the cache file's connection offers (Keyv's SQLite adapter: one connection, run in order). */
export type Query = (sql: string, ...params: unknown[]) => Promise<unknown[]>;

export interface Moved {
  messages: number;
  early: number;
}

const COLS = 'key, tenant, up, state, due, claimed, expires, created, route, data';

/** Move the journal's tables out of the cache file into `journalFile`; `{ messages: 0, early: 0 }` when there were none. */
export async function moveJournalOut(query: Query, journalFile: string): Promise<Moved> {
  const had = async (): Promise<string[]> =>
    ((await query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('sluice_msg', 'sluice_early')")) as { name: string }[]).map((r) => r.name);
  if ((await had()).length === 0) return { messages: 0, early: 0 };
  await query('BEGIN IMMEDIATE');
  try {
    // Looked at again under the lock: another process may have moved them meanwhile.
    const tables = await had();
    const msgs = tables.includes('sluice_msg') ? ((await query(`SELECT ${COLS} FROM sluice_msg`)) as Record<string, unknown>[]) : [];
    const early = tables.includes('sluice_early') ? ((await query('SELECT up, rid, expires, data FROM sluice_early')) as Record<string, unknown>[]) : [];
    const db = new Database(journalFile, { timeout: 5000 });
    try {
      db.transaction(() => {
        for (const q of JOURNAL_TABLES) db.exec(q);
        const putMsg = db.prepare(`INSERT OR IGNORE INTO sluice_msg (${COLS}) VALUES (@key, @tenant, @up, @state, @due, @claimed, @expires, @created, @route, @data)`);
        for (const r of msgs) putMsg.run(r);
        const putEarly = db.prepare('INSERT OR IGNORE INTO sluice_early (up, rid, expires, data) VALUES (@up, @rid, @expires, @data)');
        for (const r of early) putEarly.run(r);
      }).immediate();
    } finally {
      db.close();
    }
    // Durable in the journal: only now do they leave the cache file.
    for (const t of tables) await query(`DROP TABLE ${t}`);
    await query('COMMIT');
    return { messages: msgs.length, early: early.length };
  } catch (err) {
    await query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

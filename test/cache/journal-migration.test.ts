/**
 * Upgrading from a version that kept the journal in the cache file: its
 * messages and early receipts move to the journal's own file on the first
 * start, once, whatever else starts on the same file at the same moment.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import * as sqlite3 from 'sqlite3';
import { CacheStore } from '../../src/cache';
import { MSG_QUEUED, MSG_SENT } from '../../src/cache/forward-store';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A cache file as the earlier version left it: the journal's tables in it, with `n` sent messages, one queued and one early receipt. */
async function oldLayout(file: string, n: number): Promise<void> {
  const db = new sqlite3.Database(file);
  const exec = (sql: string): Promise<void> => new Promise((resolve, reject) => db.exec(sql, (e) => (e ? reject(e) : resolve())));
  await exec(`CREATE TABLE sluice_msg (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, up TEXT, state INTEGER NOT NULL,
     due INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL, created INTEGER NOT NULL, route TEXT, data TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX sluice_msg_up ON sluice_msg (up) WHERE up IS NOT NULL;
    CREATE TABLE sluice_early (up TEXT NOT NULL, rid TEXT NOT NULL, expires INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (up, rid)) WITHOUT ROWID;`);
  const now = Date.now();
  const rows = Array.from({ length: n }, (_, i) => `('t/m${i}', 't', 't/@acct/${i}', ${MSG_SENT}, 0, 0, ${now + 3_600_000}, ${now}, NULL, '{"id":"m${i}"}')`);
  rows.push(`('t/q', 't', NULL, ${MSG_QUEUED}, ${now}, 0, ${now + 3_600_000}, ${now}, 'up', '{"id":"q"}')`);
  await exec(`BEGIN; INSERT INTO sluice_msg VALUES ${rows.join(',')}; INSERT INTO sluice_early VALUES ('t/@acct/zz', 'zz/DELIVRD', ${now + 60_000}, '{"r":1}'); COMMIT;`);
  await new Promise<void>((resolve) => db.close(() => resolve()));
}

const tablesOf = async (file: string): Promise<string[]> => {
  const db = new sqlite3.Database(file);
  const rows = await new Promise<{ name: string }[]>((resolve, reject) => db.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'sluice_%'", (e, r: { name: string }[]) => (e ? reject(e) : resolve(r))));
  await new Promise<void>((resolve) => db.close(() => resolve()));
  return rows.map((r) => r.name).sort();
};

describe('the journal moves out of the cache file', () => {
  it('every message and early receipt of the old layout is found in the new journal, and the cache file keeps none', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-move-'));
    dirs.push(dir);
    const file = path.join(dir, 'cache.sqlite');
    await oldLayout(file, 500);
    const notes: unknown[] = [];
    const store = await CacheStore.open(`sqlite://${file}`, { logger: { child: () => ({ info: (f: unknown, m: string) => notes.push([m, f]), warn: () => undefined }) } as never });
    try {
      const j = store.forward;
      assert.equal((await j.get(['t/m0', 't/m499', 't/q'])).filter(Boolean).length, 3);
      assert.equal((await j.byUp(['t/@acct/250'])).length, 1);
      assert.deepEqual((await j.early(['t/@acct/zz'])).map((e) => e.rid), ['zz/DELIVRD']);
      assert.deepEqual(await j.depth(), [{ tenant: 't', route: 'up', count: 1, oldest: (await j.get(['t/q']))[0]!.created }]);
      assert.ok(existsSync(path.join(dir, 'cache.journal.sqlite')));
      assert.deepEqual(notes, [['journal moved out of the cache file into its own', { messages: 501, early: 1, journal: path.join(dir, 'cache.journal.sqlite') }]]);
    } finally {
      await store.close();
    }
    assert.equal((await tablesOf(file)).some((t) => t === 'sluice_msg' || t === 'sluice_early'), false, 'the old tables are gone');
    // A second start has nothing to move and loses nothing.
    const again = await CacheStore.open(`sqlite://${file}`);
    try {
      assert.equal((await again.forward.get(['t/m0', 't/m499', 't/q'])).filter(Boolean).length, 3);
    } finally {
      await again.close();
    }
  });

  it('two processes starting on one old file at once move it once; a row the journal already has (a crash after the copy) is kept as the journal has it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-move-'));
    dirs.push(dir);
    const file = path.join(dir, 'cache.sqlite');
    await oldLayout(file, 2000);
    // As if a start had copied the rows and died before the DROP: what the journal has is kept.
    const j = new Database(path.join(dir, 'cache.journal.sqlite'));
    j.exec(`CREATE TABLE sluice_msg (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, up TEXT, state INTEGER NOT NULL,
     due INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL, created INTEGER NOT NULL, route TEXT, data TEXT NOT NULL) WITHOUT ROWID`);
    j.prepare("INSERT INTO sluice_msg VALUES ('t/m7', 't', 't/@acct/7', 2, 0, 0, 1, 1, NULL, '{\"final\":true}')").run();
    j.close();
    const [a, b] = await Promise.all([CacheStore.open(`sqlite://${file}`), CacheStore.open(`sqlite://${file}`)]);
    try {
      for (const s of [a, b]) {
        const rows = await s.forward.get(Array.from({ length: 2000 }, (_, i) => `t/m${i}`));
        assert.equal(rows.filter(Boolean).length, 2000);
        assert.equal(rows[7]!.data, '{"final":true}');
      }
    } finally {
      await a.close();
      await b.close();
    }
    assert.equal((await tablesOf(file)).some((t) => t === 'sluice_msg' || t === 'sluice_early'), false);
  });
});

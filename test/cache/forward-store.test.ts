import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { createClient } from '@keyv/redis';
import { memoryForward } from '../../src/cache/forward-memory';
import { sqliteForward } from '../../src/cache/forward-sqlite';
import { restartMarkerOf, startCheckpointer } from '../../src/cache/journal-checkpointer';
import { ForwardStore, MSG_SENT, type MsgRow } from '../../src/cache/forward-store';
import { redisForward } from '../../src/cache/forward-redis';
import { writeBackToBack } from '../helpers/journal-hammer';
import { redisForThisFile, redisSkip } from '../helpers/redis';
import { forwardSuite } from './forward-suite';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-forward-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'journal.sqlite');

forwardSuite({ name: 'memory', open: async () => new ForwardStore(memoryForward()) });
forwardSuite({
  name: 'SQLite',
  open: async () => new ForwardStore(await sqliteForward(file)),
  reopen: async () => new ForwardStore(await sqliteForward(file)),
});

// A real redis-server; each open() is a client of its own (as each replica's
// backend has), all closed after the tests (closing a journal leaves its
// client open), before the server stops: after hooks run in order.
const clients: { close(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});
const redis = redisForThisFile();
async function redisStore(): Promise<ForwardStore> {
  const client = createClient({ url: redis.url, disableOfflineQueue: true });
  clients.push(client);
  await client.connect();
  return new ForwardStore(redisForward(client));
}
forwardSuite({ name: 'Redis', open: redisStore, reopen: redisStore, skip: redisSkip });

describe('journal health after a failed commit', () => {
  it('a probe makes a commit of its own, so health comes back without traffic (and stays down while commits fail)', async () => {
    const inner = memoryForward();
    let failing = true;
    const store = new ForwardStore({ ...inner, commit: (ops) => (failing ? Promise.reject(new Error('SQLITE_FULL: database or disk is full')) : inner.commit(ops)) });
    try {
      await assert.rejects(store.write([{ t: 'del', key: 't/x' }]), /SQLITE_FULL/);
      await assert.rejects(store.probe(), /SQLITE_FULL/, 'a lock probe alone would pass on a full disk');
      failing = false;
      await store.probe();
      await store.probe();
      assert.equal(store.lastError, undefined);
      assert.equal(store.stats.commits, 1, 'one probe commit, and none once commits work');
    } finally {
      await store.close();
    }
  });
});

describe('SQLite journal reads', () => {
  it('leave no read transaction open: the WAL can be checkpointed to empty after reads of every kind', async () => {
    const f = path.join(dir, 'checkpoint.sqlite');
    const store = new ForwardStore(await sqliteForward(f));
    const checker = new Database(f);
    try {
      const rows = Array.from({ length: 50 }, (_, i): MsgRow => ({
        key: `t/${i}`, tenant: 't', up: `t/@a/${i}`, state: MSG_SENT, due: 0, expires: Date.now() + 60_000, created: Date.now(), route: null, data: '{}',
      }));
      await store.write(rows.map((row) => ({ t: 'put', row, correlates: true })));
      // Reads that find rows, reads that find none, and the early-receipt reads.
      assert.equal((await store.get(['t/1', 't/2', 'nope'])).filter(Boolean).length, 2);
      assert.equal((await store.byUp(['t/@a/3', 'nope'])).length, 1);
      assert.deepEqual(await store.early(['t/@a/4']), []);
      await store.write([{ t: 'del', key: 't/0' }]);
      // The journal's own library: a second copy of SQLite on the file would release its locks.
      const [r] = checker.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number }[];
      assert.deepEqual({ busy: r.busy, log: r.log }, { busy: 0, log: 0 }, 'a reader still held a snapshot, so the WAL could not be emptied');
    } finally {
      checker.close();
      await store.close();
    }
  });
});

describe('SQLite journal WAL', () => {
  it('stays bounded under writes that never pause: the checkpoint thread has the writer start it over (it grew to 265 MB in 9 s at full rate)', { timeout: 60_000 }, async () => {
    const f = path.join(dir, 'wal-bound.sqlite');
    const store = new ForwardStore(await sqliteForward(f));
    try {
      const sizes: number[] = [];
      // For 4 s, about 70 MB of rows a second. Without the restart the WAL only grew (290 MB).
      const written = await writeBackToBack(store, 't', 4000, () => sizes.push(statSync(`${f}-wal`).size));
      const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
      assert.ok(written > 100e6, `enough written to matter (${mb(written)} of rows)`);
      assert.ok(Math.max(...sizes) < 128e6, `the WAL reached ${mb(Math.max(...sizes))} after ${mb(written)} of rows`);
      const restarted = sizes.some((n, i) => i > 0 && n < sizes[i - 1]!);
      assert.ok(restarted, `the WAL was started over and cut back at least once (sizes ${sizes.map(mb).join(', ')})`);
    } finally {
      await store.close();
    }
  });

  it("a writer leaves the lock to another process's restart while its marker is fresh, and ignores one a dead process left", async () => {
    const f = path.join(dir, 'marker.sqlite');
    const db = new Database(f);
    db.pragma('journal_mode = WAL');
    db.close();
    const cp = startCheckpointer(f, () => undefined);
    const marker = restartMarkerOf(f);
    const ask = async (): Promise<boolean> => {
      await new Promise((r) => setTimeout(r, 10)); // past the writer's look-again interval
      return cp.wantsLock();
    };
    try {
      assert.equal(await ask(), false, 'no marker');
      writeFileSync(marker, '12345');
      assert.equal(await ask(), true, 'a fresh marker');
      const old = new Date(Date.now() - 10_000);
      utimesSync(marker, old, old);
      assert.equal(await ask(), false, 'a marker 10 s old (its process died mid-restart)');
      rmSync(marker);
      assert.equal(await ask(), false, 'gone again');
    } finally {
      await cp.close();
    }
  });

  // Without the marker the other process's writer left the restart no room: 188, 409 and 896 MB in 3 of 4 runs (72 in the fourth); with it 69-82 MB.
  it('stays bounded with two processes writing back to back on one file: the restart marker holds the other process\'s writer back too', { timeout: 60_000 }, async () => {
    const f = path.join(dir, 'wal-two.sqlite');
    const store = new ForwardStore(await sqliteForward(f));
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
    // The other process: the same writes under keys of its own, for as long; prints what it wrote.
    const other = spawn(
      process.execPath,
      [
        '-e',
        `const { sqliteForward } = require(${JSON.stringify(path.join(__dirname, '../../src/cache/forward-sqlite.js'))});
         const { ForwardStore } = require(${JSON.stringify(path.join(__dirname, '../../src/cache/forward-store.js'))});
         const { writeBackToBack } = require(${JSON.stringify(path.join(__dirname, '../helpers/journal-hammer.js'))});
         (async () => {
           const store = new ForwardStore(await sqliteForward(${JSON.stringify(f)}));
           const written = await writeBackToBack(store, 'o', 5000);
           await store.close();
           console.log(written);
         })();`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    other.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => other.once('exit', resolve));
    try {
      const sizes: number[] = [];
      const written = await writeBackToBack(store, 't', 5000, () => sizes.push(statSync(`${f}-wal`).size), 25);
      assert.equal(await exited, 0);
      const theirs = Number(out.trim());
      assert.ok(written > 20e6 && theirs > 20e6, `both processes wrote (${mb(written)} here, ${mb(theirs)} there)`);
      assert.ok(Math.max(...sizes) < 128e6, `the WAL reached ${mb(Math.max(...sizes))} after ${mb(written + theirs)} of rows (sizes ${sizes.map(mb).join(", ")})`);
      const restarted = sizes.some((n, i) => i > 0 && n < sizes[i - 1]!);
      assert.ok(restarted, `the WAL was started over and cut back at least once (sizes ${sizes.map(mb).join(', ')})`);
    } finally {
      other.kill();
      await store.close();
    }
  });
});

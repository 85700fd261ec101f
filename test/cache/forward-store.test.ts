import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { createClient } from '@keyv/redis';
import { memoryForward } from '../../src/cache/forward-memory';
import { sqliteForward } from '../../src/cache/forward-sqlite';
import { ForwardStore, MSG_SENT, type MsgRow } from '../../src/cache/forward-store';
import { redisForward } from '../../src/cache/forward-redis';
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
      const data = 'x'.repeat(1500);
      const start = Date.now();
      let written = 0;
      const sizes: number[] = [];
      // Commits back to back for 4 s (each write is one commit), far faster than a gateway writes:
      // about 70 MB of rows a second here. Without the restart the WAL only grew (290 MB).
      for (let round = 0; Date.now() - start < 4000 && round < 20_000; round++) {
        const rows = Array.from({ length: 40 }, (_, i): MsgRow => ({
          key: `t/${(round * 40 + i) % 20_000}`, tenant: 't', up: `t/@a/${round}-${i}`, state: MSG_SENT, due: 0, expires: Date.now() + 60_000, created: Date.now(), route: null, data,
        }));
        await store.write(rows.map((row) => ({ t: 'put', row })));
        written += rows.length * data.length;
        if (round % 50 === 0) sizes.push(statSync(`${f}-wal`).size);
      }
      const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
      assert.ok(written > 100e6, `enough written to matter (${mb(written)} of rows)`);
      assert.ok(Math.max(...sizes) < 128e6, `the WAL reached ${mb(Math.max(...sizes))} after ${mb(written)} of rows`);
      const restarted = sizes.some((n, i) => i > 0 && n < sizes[i - 1]!);
      assert.ok(restarted, `the WAL was started over and cut back at least once (sizes ${sizes.map(mb).join(', ')})`);
    } finally {
      await store.close();
    }
  });
});

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import KeyvSqlite from '@keyv/sqlite';
import { CacheStore } from '../../src/cache';
import { recordingLogger } from '../../src/log/logger';
import { cacheSuite, eventually, rejectsWith, sleep, tid } from './cache-suite';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cache-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const BIG = { maxBytes: 1 << 20, maxValueBytes: 64 << 10 };
const bytes = (key: string, json: string): number => Buffer.byteLength(key) + Buffer.byteLength(json);

cacheSuite({ name: 'memory://', open: () => CacheStore.open('memory://') });
cacheSuite({ name: 'sqlite (temp file)', open: () => CacheStore.open(`sqlite://${path.join(tmp, 'suite', 'cache.sqlite')}`) });

/** A plain Keyv SQLite adapter on the same file: how a crash or another writer would leave it. */
async function rawSqlite(file: string): Promise<KeyvSqlite> {
  return new KeyvSqlite({ uri: `sqlite://${file}`, table: 'sluice_cache' });
}

describe('cache on sqlite: files, durability, repair', () => {
  it('a relative path resolves against cwd, creates its directory, and runs in WAL mode', async () => {
    const store = await CacheStore.open('sqlite://nested/deeper/cache.sqlite', { cwd: tmp });
    try {
      await store.forTenant(tid(), BIG).set('k', '1');
    } finally {
      await store.close();
    }
    const file = path.join(tmp, 'nested', 'deeper', 'cache.sqlite');
    assert.ok(fs.existsSync(file));
    const raw = await rawSqlite(file);
    try {
      assert.deepEqual(await raw.query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }]); // persisted in the file
    } finally {
      await raw.disconnect();
    }
  });

  it('an absolute sqlite:///path works too', async () => {
    const file = path.join(tmp, 'abs', 'c.sqlite');
    const store = await CacheStore.open(`sqlite://${file}`, { cwd: '/nonexistent' });
    await store.close();
    assert.ok(fs.existsSync(file));
  });

  it('data, expiries and usage survive close and reopen of the same file', async () => {
    const url = `sqlite://${path.join(tmp, 'durable.sqlite')}`;
    const id = tid();
    const other = tid('other');
    let store = await CacheStore.open(url);
    const c1 = store.forTenant(id, BIG);
    await c1.set('esme_pw:acme-app', '"s3cret"');
    await c1.set('dlr:agg:1', '{"session":"s1","ourId":"m1"}', 60_000);
    await c1.set('dlr:agg:2', '{"session":"s1","ourId":"m2"}', 60);
    await store.forTenant(other, BIG).set('x', '[1,2,3]');
    const usage = await c1.usage();
    await store.close();

    await sleep(100); // dlr:agg:2 expires while the process is "down"
    store = await CacheStore.open(url);
    try {
      const c2 = store.forTenant(id, BIG);
      assert.equal(await c2.get('esme_pw:acme-app'), '"s3cret"');
      assert.equal(await c2.get('dlr:agg:1'), '{"session":"s1","ourId":"m1"}');
      assert.equal(await c2.usage(), usage); // the expired entry is still stored, still counted
      assert.equal(await store.sweep(), 1);
      assert.equal(await c2.usage(), usage - bytes('dlr:agg:2', '{"session":"s1","ourId":"m2"}'));
      assert.equal(await store.forTenant(other, BIG).get('x'), '[1,2,3]');
    } finally {
      await store.close();
    }
  });

  it('sweep() repairs usage a crash or another writer left wrong, and logs it', async () => {
    const file = path.join(tmp, 'drift.sqlite');
    const id = tid();
    let store = await CacheStore.open(`sqlite://${file}`);
    const c = store.forTenant(id, BIG);
    await c.set('a', '"aaaa"');
    await c.set('b', '"bbbb"');
    await store.close();

    // As if the process died between writing the counter and writing/deleting a value.
    const raw = await rawSqlite(file);
    await raw.delete(`sluice:cache:${encodeURIComponent(id)}:v:b`);
    await raw.set(`sluice:cache:${encodeURIComponent(id)}:u`, JSON.stringify({ value: 999_999 }));
    await raw.disconnect();

    const { logger, lines } = recordingLogger();
    store = await CacheStore.open(`sqlite://${file}`, { logger });
    try {
      const c2 = store.forTenant(id, { maxBytes: 1000, maxValueBytes: 100 });
      assert.equal(await c2.usage(), 999_999);
      await rejectsWith(c2.set('c', '1'), 'QUOTA_EXCEEDED'); // over-counted: refused, never over quota
      await store.sweep();
      assert.equal(await c2.usage(), bytes('a', '"aaaa"'));
      await c2.set('c', '1');
      const fixed = lines().find((l) => l.msg === 'cache usage corrected');
      assert.ok(fixed);
      assert.equal(fixed.was, 999_999);
      assert.equal(fixed.component, 'cache');
    } finally {
      await store.close();
    }
  });

  it('the sweep timer removes never-read expired entries by itself', async () => {
    const store = await CacheStore.open(`sqlite://${path.join(tmp, 'timer.sqlite')}`, { sweepIntervalMs: 25 });
    try {
      const c = store.forTenant(tid(), BIG);
      for (let i = 0; i < 20; i++) await c.set(`dlr:${i}`, '{"never":"read"}', 30);
      await c.set('live', '1');
      await eventually(async () => (await c.usage()) === bytes('live', '1'));
    } finally {
      await store.close();
    }
  });

  it('a sweep running alongside writes never loses their bytes', async () => {
    const store = await CacheStore.open(`sqlite://${path.join(tmp, 'race.sqlite')}`);
    try {
      const c = store.forTenant(tid(), BIG);
      for (let i = 0; i < 50; i++) await c.set(`old:${i}`, '"x"', 20);
      await sleep(40);
      const writes = Array.from({ length: 100 }, (_, i) => c.set(`new:${i}`, '"y"'));
      const sweeps = [store.sweep(), sleep(1).then(() => store.sweep())];
      await Promise.all([...writes, ...sweeps]);
      let expected = 0;
      for (let i = 0; i < 100; i++) expected += bytes(`new:${i}`, '"y"');
      assert.equal(await c.usage(), expected);
      assert.equal(await store.sweep(), 0);
      assert.equal(await c.usage(), expected);
    } finally {
      await store.close();
    }
  });
});

describe('CacheStore.open', () => {
  it('rejects unknown schemes and an empty sqlite path', async () => {
    await assert.rejects(CacheStore.open('postgres://db/cache'), /unsupported cache url/);
    await assert.rejects(CacheStore.open('sqlite://'), /needs a path/);
  });

  it('memory:// stores are independent of each other', async () => {
    const [s1, s2] = await Promise.all([CacheStore.open('memory://'), CacheStore.open('memory://')]);
    await s1.forTenant('t', BIG).set('k', '1');
    assert.equal(await s2.forTenant('t', BIG).get('k'), undefined);
    await Promise.all([s1.close(), s2.close()]);
  });

  it('forTenant rejects bad tenant ids and limits', async () => {
    const store = await CacheStore.open('memory://');
    assert.throws(() => store.forTenant('', BIG), { code: 'INVALID_FIELD' });
    assert.throws(() => store.forTenant('t', { maxBytes: 0, maxValueBytes: 1 }), { code: 'INVALID_FIELD' });
    assert.throws(() => store.forTenant('t', { maxBytes: 1, maxValueBytes: Number.NaN }), { code: 'INVALID_FIELD' });
    await store.close();
  });
});

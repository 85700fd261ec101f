import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CacheStore } from '../../src/cache';
import { freePort } from '../helpers/harness';
import { redisForThisFile, redisSkip as skip } from '../helpers/redis';
import { cacheSuite, rejectsWith, tid } from './cache-suite';

// A real redis-server on a free loopback port, no persistence. The suite is
// skipped, saying why, where redis-server is not installed.
const redis = redisForThisFile();

const BIG = { maxBytes: 1 << 20, maxValueBytes: 64 << 10 };
const bytes = (key: string, json: string): number => Buffer.byteLength(key) + Buffer.byteLength(json);

cacheSuite({ name: 'redis (real redis-server)', open: () => CacheStore.open(redis.url), nativeTtl: true, skip });

describe('cache on redis: replicas', { skip }, () => {
  it('two CacheStores on one Redis (two replicas) see each other’s writes for a tenant', async () => {
    const [r1, r2] = await Promise.all([CacheStore.open(redis.url), CacheStore.open(redis.url)]);
    try {
      const id = tid('acme');
      const a1 = r1.forTenant(id, { maxBytes: 100, maxValueBytes: 100 });
      const a2 = r2.forTenant(id, { maxBytes: 100, maxValueBytes: 100 });
      // A DLR correlation as a policy keeps it in its cache: stored on one replica, read on another.
      await a1.set('dlr:agg:42', '{"session":"s1","ourId":"m1"}', 60_000);
      assert.equal(await a2.get('dlr:agg:42'), '{"session":"s1","ourId":"m1"}');
      assert.equal(await a2.has('dlr:agg:42'), true);
      assert.equal(await a2.usage(), bytes('dlr:agg:42', '{"session":"s1","ourId":"m1"}'));
      // The quota is the tenant's, not the replica's.
      await a2.set('pad', JSON.stringify('x'.repeat(50))); // 39 + 55 = 94
      await rejectsWith(a1.set('more', '"12345"'), 'QUOTA_EXCEEDED', /max_cache_mb/);
      assert.equal(await a1.delete('pad'), true);
      assert.equal(await a2.get('pad'), undefined);
      await a1.set('more', '"12345"');
      assert.equal(await a2.usage(), bytes('dlr:agg:42', '{"session":"s1","ourId":"m1"}') + bytes('more', '"12345"'));
      // Another tenant on either replica sees none of it.
      assert.equal(await r2.forTenant(tid('globex'), BIG).get('dlr:agg:42'), undefined);
    } finally {
      await Promise.all([r1.close(), r2.close()]);
    }
  });

  it('open() rejects when nothing listens at the URL', async () => {
    const port = await freePort();
    await assert.rejects(CacheStore.open(`redis://127.0.0.1:${port}`));
  });
});

/**
 * The policy version store over each store, two connections to one store
 * standing for two replicas: numbering, pins and unpins, the bound on the
 * history, changes seen from the other connection, and that a tenant's
 * cache cannot reach any of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore, memoryPolicies, POLICY_HISTORY, type PolicyStore } from '../../src/cache';
import type { ReplicaPair } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';

const redis = redisForThisFile();
const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-policy-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const tenant = (): string => `t${process.pid}-${++n}:odd/id`;
const up = (source: string, uploader: 'admin' | 'tenant' = 'admin', rollbackOf?: number) => ({ source, hash: `h-${source}`, at: Date.now(), uploader, ...(rollbackOf ? { rollbackOf } : {}) });

/** Two CacheStores on one URL, their policy stores, and the stores themselves (for the tenant cache checks). */
async function pair(url: string): Promise<ReplicaPair<PolicyStore> & { stores: CacheStore[] }> {
  const stores = await Promise.all([CacheStore.open(url), CacheStore.open(url)]);
  return { a: stores[0]!.policies, b: stores[1]!.policies, stores, close: async () => void (await Promise.all(stores.map((s) => s.close()))) };
}

const kinds: { name: string; open: () => Promise<ReplicaPair<PolicyStore> & { stores: CacheStore[] }>; skip?: string | false }[] = [
  {
    name: 'memory',
    open: async () => {
      const m = memoryPolicies();
      return { a: m, b: m, stores: [], close: async () => undefined };
    },
  },
  { name: 'one SQLite file, two connections', open: () => pair(`sqlite://${path.join(dir, `p${++n}.sqlite`)}`) },
  { name: 'real redis-server, two clients', open: () => pair(redis.url), skip: redisSkip },
];

for (const k of kinds) {
  describe(`policy store: ${k.name}`, { skip: k.skip ?? false }, () => {
    it('the first pin keeps the serving source as a version first; numbers go on; the pin keeps the file hash it was taken over', async () => {
      const { a, b, close } = await k.open();
      try {
        const t = tenant();
        assert.equal(await b.head(t), undefined);
        const first = await a.pin(t, up('one'), { fileHash: 'F1', serving: { source: 'file text', hash: 'h-file' } });
        assert.equal(first.pinned.version, 2);
        assert.equal(first.pinned.fileHash, 'F1');
        // Pinned already: the serving source is not kept again, and the pin's file hash stays.
        const second = await b.pin(t, up('two', 'tenant'), { fileHash: 'F2', serving: { source: 'one', hash: 'h-one' } });
        assert.equal(second.pinned.version, 3);
        assert.equal(second.pinned.fileHash, 'F1');
        assert.ok(second.seq > first.seq);
        const versions = await b.versions(t);
        assert.deepEqual(versions.map((v) => [v.version, v.uploader, v.hash, v.bytes]), [[1, 'file', 'h-file', 9], [2, 'admin', 'h-one', 3], [3, 'tenant', 'h-two', 3]]);
        assert.ok(versions.every((v) => typeof v.at === 'number' && Math.abs(v.at - Date.now()) < 60_000));
        assert.equal(await a.source(t, 1), 'file text');
        assert.equal(await a.source(t, 3), 'two');
        assert.equal(await a.source(t, 9), undefined);
        const rb = await a.pin(t, up('one', 'tenant', 2), { fileHash: 'F1' });
        assert.equal(rb.pinned.version, 4);
        assert.equal(rb.pinned.rollbackOf, 2);
        assert.deepEqual((await b.head(t))?.pinned?.version, 4);
      } finally {
        await close();
      }
    });

    it('an unpin gives the tenant back to its file, once; the next pin keeps the file version again, over the new file hash', async () => {
      const { a, b, close } = await k.open();
      try {
        const t = tenant();
        assert.equal(await a.unpin(t, 'admin', Date.now()), undefined, 'nothing to unpin');
        await a.pin(t, up('one'), { fileHash: 'F1' });
        const seq = await b.unpin(t, 'reload', Date.now());
        assert.equal(typeof seq, 'number');
        assert.deepEqual(await a.head(t), { seq });
        assert.equal(await a.unpin(t, 'admin', Date.now()), undefined, 'not pinned any more');
        const again = await a.pin(t, up('two'), { fileHash: 'F2', serving: { source: 'file v2', hash: 'h-f2' } });
        assert.equal(again.pinned.version, 3);
        assert.equal(again.pinned.fileHash, 'F2');
        assert.deepEqual((await b.versions(t)).map((v) => [v.version, v.uploader]), [[1, 'admin'], [2, 'file'], [3, 'admin']]);
      } finally {
        await close();
      }
    });

    it('a change on one replica is among the changes the other polls for; nothing newer, nothing listed', async () => {
      const { a, b, close } = await k.open();
      try {
        const since = (await b.changes(0)).seq;
        const [t1, t2] = [tenant(), tenant()];
        await a.pin(t1, up('x'), { fileHash: '' });
        await a.pin(t2, up('y'), { fileHash: '' });
        await a.pin(t1, up('z'), { fileHash: '' });
        const c = await b.changes(since);
        assert.deepEqual(c.tenants.sort(), [t1, t2].sort());
        assert.ok(c.seq >= since + 3);
        assert.deepEqual(await b.changes(c.seq), { seq: c.seq, tenants: [] });
      } finally {
        await close();
      }
    });

    it(`keeps the last ${POLICY_HISTORY} changes of a tenant: older versions and their sources are dropped, numbers never reused`, async () => {
      const { a, b, close } = await k.open();
      try {
        const t = tenant();
        for (let i = 1; i <= POLICY_HISTORY + 5; i++) await a.pin(t, up(`s${i}`), { fileHash: '' });
        const versions = await b.versions(t);
        assert.equal(versions.length, POLICY_HISTORY);
        assert.equal(versions[0]!.version, 6);
        assert.equal(await b.source(t, 5), undefined);
        assert.equal(await b.source(t, 6), 's6');
        assert.equal((await b.pin(t, up('next'), { fileHash: '' })).pinned.version, POLICY_HISTORY + 6);
      } finally {
        await close();
      }
    });

    it('replicas pinning one tenant at once get a number each, none twice', async () => {
      const { a, b, close } = await k.open();
      try {
        const t = tenant();
        const got = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).pin(t, up(`c${i}`), { fileHash: '', serving: { source: 'file', hash: 'hf' } })));
        const numbers = got.map((h) => h.pinned.version);
        assert.equal(new Set(numbers).size, 12);
        const kept = await a.versions(t);
        assert.deepEqual(kept.map((v) => v.version), Array.from({ length: 13 }, (_, i) => i + 1), 'the file version once, then one per pin');
        assert.equal(kept.filter((v) => v.uploader === 'file').length, 1);
      } finally {
        await close();
      }
    });

    if (k.name !== 'memory') {
      it("a tenant's cache cannot reach them, and the cache sweep leaves them alone", async () => {
        const { a, stores, close } = await k.open();
        try {
          const t = tenant();
          await a.pin(t, up('{"secret":1}'), { fileHash: '' });
          const cache = stores[0]!.forTenant(t, { maxBytes: 1 << 20, maxValueBytes: 1 << 16 });
          for (const key of ['sluice_policy', `sluice:policy:${encodeURIComponent(t)}:src`, `../policy:${encodeURIComponent(t)}:src`, '1']) assert.equal(await cache.get(key), undefined, key);
          await stores[0]!.sweep();
          assert.equal(await a.source(t, 1), '{"secret":1}');
        } finally {
          await close();
        }
      });
    }
  });
}

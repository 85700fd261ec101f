import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSluiceError } from '../../src/errors';
import { CacheStore, MAX_KEY_LENGTH, type TenantCache } from '../../src/cache';

/**
 * Behaviour every cache store must show, whatever its backend. Registered by
 * cache.test.ts (memory, SQLite) and redis.test.ts (a real redis-server).
 */
export interface SuiteTarget {
  name: string;
  /** A fresh CacheStore; tests use fresh tenant ids, so stores may share data. */
  open(): Promise<CacheStore>;
  /** The store expires keys by itself (Redis): a read of an expired key finds nothing to account for. */
  nativeTtl?: boolean;
  skip?: string | false;
}

let seq = 0;
/** A tenant id no other test uses, even on a shared Redis. */
export const tid = (name = 't'): string => `${name}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const BIG = { maxBytes: 1 << 20, maxValueBytes: 64 << 10 };
const bytes = (key: string, json: string): number => Buffer.byteLength(key) + Buffer.byteLength(json);

export async function rejectsWith(p: Promise<unknown>, code: 'INVALID_FIELD' | 'QUOTA_EXCEEDED', message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isSluiceError(err, code), `expected ${code}, got ${String(err)}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Poll until `fn` holds, up to `ms`; for waits on real time that must stay bounded. */
export async function eventually(fn: () => Promise<boolean>, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) assert.fail(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}

async function withStore(t: SuiteTarget, fn: (store: CacheStore) => Promise<void>): Promise<void> {
  const store = await t.open();
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

export function cacheSuite(t: SuiteTarget): void {
  describe(`cache on ${t.name}`, { skip: t.skip ?? false }, () => {
    it('get/set/delete/has round trip, with usage following', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), BIG);
        assert.equal(await c.get('k'), undefined);
        assert.equal(await c.has('k'), false);
        assert.equal(await c.usage(), 0);
        await c.set('k', '{"a":1}');
        assert.equal(await c.get('k'), '{"a":1}');
        assert.equal(await c.has('k'), true);
        assert.equal(await c.usage(), bytes('k', '{"a":1}'));
        await c.set('k', '"längere Zeichenkette ✓"'); // overwrite: old bytes given back, UTF-8 counted
        assert.equal(await c.get('k'), '"längere Zeichenkette ✓"');
        assert.equal(await c.usage(), bytes('k', '"längere Zeichenkette ✓"'));
        for (const json of ['null', '0', 'true', '[]', '{"nested":{"x":[1,2,{"y":null}]}}', '":starts with colon"', '":base64:aGk="']) {
          await c.set('j', json);
          assert.equal(await c.get('j'), json, json);
        }
        assert.equal(await c.delete('k'), true);
        assert.equal(await c.delete('k'), false);
        assert.equal(await c.get('k'), undefined);
        assert.equal(await c.has('k'), false);
        assert.equal(await c.delete('j'), true);
        assert.equal(await c.usage(), 0);
      }));

    it('rejects bad keys, values and TTLs with INVALID_FIELD and writes nothing', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), BIG);
        const any = c as unknown as { set(k: unknown, v: unknown, ttl?: unknown): Promise<void>; get(k: unknown): Promise<unknown> };
        for (const key of ['', 'x'.repeat(MAX_KEY_LENGTH + 1), 42, undefined, null, 'lone \ud800 surrogate']) {
          await rejectsWith(any.set(key, '1'), 'INVALID_FIELD');
          await rejectsWith(any.get(key), 'INVALID_FIELD');
        }
        await c.set('x'.repeat(MAX_KEY_LENGTH), '1'); // the longest key is fine
        for (const json of [{ a: 1 }, 1, undefined, '', '{a:1}', 'undefined', "{'a':1}", '[1,', 'NaN', '"\ud800"']) {
          await rejectsWith(any.set('v', json), 'INVALID_FIELD');
        }
        for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100', 2 ** 60]) {
          await rejectsWith(any.set('v', '1', ttl), 'INVALID_FIELD');
        }
        assert.equal(await c.has('v'), false);
        assert.equal(await c.usage(), bytes('x'.repeat(MAX_KEY_LENGTH), '1'));
      }));

    it('TTL: a value expires, has() agrees, and its bytes come back', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), BIG);
        await c.set('keep', '"forever"');
        const base = await c.usage();
        await c.set('dlr:1', '{"s":1}', 100);
        await c.set('dlr:2', '{"s":2}', 100);
        await c.set('dlr:2', '{"s":2}'); // a set without ttlMs clears the expiry
        assert.equal(await c.get('dlr:1'), '{"s":1}');
        assert.equal(await c.usage(), base + bytes('dlr:1', '{"s":1}') + bytes('dlr:2', '{"s":2}'));
        // has() first: Keyv's own has() reports expired SQLite/Redis entries as present.
        await eventually(async () => !(await c.has('dlr:1')));
        assert.equal(await c.get('dlr:1'), undefined);
        if (!t.nativeTtl) {
          // The read that found it expired removed it and gave its bytes back.
          assert.equal(await c.usage(), base + bytes('dlr:2', '{"s":2}'));
        }
        await store.sweep();
        assert.equal(await c.usage(), base + bytes('dlr:2', '{"s":2}'));
        assert.equal(await c.get('dlr:2'), '{"s":2}');
        assert.equal(await c.get('keep'), '"forever"');
      }));

    it('sweep() removes expired entries nobody reads and corrects usage, across tenants', () =>
      withStore(t, async (store) => {
        const a = store.forTenant(tid('a'), BIG);
        const b = store.forTenant(tid('b'), BIG);
        for (let i = 0; i < 30; i++) await a.set(`dlr:${i}`, `{"i":${i}}`, 40);
        for (let i = 0; i < 5; i++) await b.set(`dlr:${i}`, `{"i":${i}}`, 40);
        await a.set('live', '"stays"', 60_000);
        await b.set('live', '"stays"');
        await sleep(80);
        const removed = await store.sweep();
        if (!t.nativeTtl) assert.equal(removed, 35);
        assert.equal(await a.usage(), bytes('live', '"stays"'));
        assert.equal(await b.usage(), bytes('live', '"stays"'));
        assert.equal(await a.get('live'), '"stays"');
        assert.equal(await b.get('live'), '"stays"');
        assert.equal(await a.get('dlr:3'), undefined);
        assert.equal(await store.sweep(), 0);
        assert.equal(await a.usage(), bytes('live', '"stays"'));
      }));

    it('quota: an oversized value is QUOTA_EXCEEDED naming max_value_kb; nothing changes', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), { maxBytes: 10_000, maxValueBytes: 100 });
        await c.set('k', '"old"');
        const before = await c.usage();
        const json = JSON.stringify('x'.repeat(98)); // 100 bytes + 1 of key = 101
        await rejectsWith(c.set('k', json), 'QUOTA_EXCEEDED', /max_value_kb/);
        await rejectsWith(c.set('k', JSON.stringify('é'.repeat(50))), 'QUOTA_EXCEEDED', /max_value_kb/); // 53 chars but 103 bytes
        assert.equal(await c.get('k'), '"old"');
        assert.equal(await c.usage(), before);
        await c.set('k', JSON.stringify('x'.repeat(97))); // exactly 100 bytes: allowed
        assert.equal(await c.usage(), 100);
      }));

    it('quota: a write over max_cache_mb fails, leaves old data, and other tenants untouched', () =>
      withStore(t, async (store) => {
        const limits = { maxBytes: 50, maxValueBytes: 50 };
        const c = store.forTenant(tid('full'), limits);
        const other = store.forTenant(tid('other'), limits);
        await other.set('o', '"other tenant"');
        const otherUsage = await other.usage();
        await c.set('a', '"0123456789"'); // 13
        await c.set('b', '"0123456789"'); // 13
        await c.set('c', '"0123456789"'); // 13 → 39
        assert.equal(await c.usage(), 39);
        await rejectsWith(c.set('d', '"0123456789"'), 'QUOTA_EXCEEDED', /max_cache_mb/); // 52 > 50
        await rejectsWith(c.set('a', '"0123456789abcdefghijklm"'), 'QUOTA_EXCEEDED', /max_cache_mb/); // overwrite growing to 52
        assert.equal(await c.get('a'), '"0123456789"');
        assert.equal(await c.has('d'), false);
        assert.equal(await c.usage(), 39);
        await c.set('a', '"0123456789abcdefghijk"'); // grows to exactly 50: allowed
        assert.equal(await c.usage(), 50);
        await c.set('a', '1'); // shrinking is always allowed
        assert.equal(await c.usage(), 28);
        // Limits lowered under the tenant (a reload): writes that do not grow usage still pass.
        const lowered = store.forTenant(c.tenantId, { maxBytes: 10, maxValueBytes: 50 });
        await lowered.set('b', '2');
        await rejectsWith(lowered.set('z', '1'), 'QUOTA_EXCEEDED');
        assert.equal(await lowered.usage(), 2 + 2 + 13);
        assert.equal(await c.delete('c'), true); // delete frees space
        await c.set('d', '"0123456789"');
        assert.equal(await other.get('o'), '"other tenant"');
        assert.equal(await other.usage(), otherUsage);
      }));

    it('isolation: no key string of one tenant reaches another tenant or the usage counter', () =>
      withStore(t, async (store) => {
        const idB = tid('b:'); // a ':' in a tenant id must not matter either
        const idA = tid('a');
        const a = store.forTenant(idA, BIG);
        const b = store.forTenant(idB, BIG);
        // Tenant ids built to collide with naive "tenant:key" joins.
        const evilIds = [`${idB}:v`, `${idB}:v:x`, `${idB}%3Av`, idB.toUpperCase(), `${idB}:u`];
        const evil = evilIds.map((id) => store.forTenant(id, BIG));
        await b.set('x', '"b secret"');
        await b.set('k', '"b k"');
        const bUsage = await b.usage();
        const hostile = [...new Set([
          `${idB}:x`,
          'b:x',
          'x',
          'k',
          ':x',
          '::x',
          'v:x',
          `:v:x`,
          'u',
          ':u',
          `sluice:cache:${idB}:v:x`,
          `sluice:cache:${encodeURIComponent(idB)}:v:x`,
          `sluice:cache:${encodeURIComponent(idB)}:u`,
          `sluice:cache:${encodeURIComponent(idA)}:u`,
          '%',
          '_%',
          '*',
          '\u0000x',
          'ключ:🔑:鍵',
          'keyv:x',
        ])];
        for (const c of [a, ...evil]) {
          for (const key of hostile) {
            assert.equal(await c.get(key), undefined, `${c.tenantId} read ${key}`);
            assert.equal(await c.has(key), false);
            assert.equal(await c.delete(key), false);
          }
          for (const key of hostile) await c.set(key, JSON.stringify(`${c.tenantId}/${key}`));
          for (const key of hostile) assert.equal(await c.get(key), JSON.stringify(`${c.tenantId}/${key}`));
        }
        // Each hostile key is its own entry: usage is exactly their sum, no key hit the counter.
        const own = hostile.reduce((n, key) => n + bytes(key, JSON.stringify(`${idA}/${key}`)), 0);
        assert.equal(await a.usage(), own);
        // And the other tenant saw nothing of it.
        assert.equal(await b.get('x'), '"b secret"');
        assert.equal(await b.get('k'), '"b k"');
        assert.equal(await b.usage(), bUsage);
        for (const key of hostile.filter((k) => k !== 'x' && k !== 'k')) assert.equal(await b.get(key), undefined);
        // Keyv would store 'keyv:x' and 'x' under one key if its prefixing were on.
        assert.equal(await a.get('x'), JSON.stringify(`${idA}/x`));
        assert.equal(await a.get('keyv:x'), JSON.stringify(`${idA}/keyv:x`));
        // Case matters in keys and tenant ids alike.
        await a.set('K', '"upper"');
        assert.equal(await a.get('k'), JSON.stringify(`${idA}/k`));
        await store.sweep(); // recomputing usage from the store must agree
        assert.equal(await a.usage(), own + bytes('K', '"upper"'));
        assert.equal(await b.usage(), bUsage);
      }));

    it('concurrency: 200 parallel sets (new keys and overwrites) leave exact usage', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), BIG);
        const final = new Map<string, string>();
        const ops: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          const key = `k${i % 70}`; // 70 keys, most written 3 times with different sizes
          const json = JSON.stringify({ i, pad: 'x'.repeat((i * 7) % 50) });
          final.set(key, json); // writes of one tenant apply in call order
          ops.push(c.set(key, json));
        }
        await Promise.all(ops);
        let expected = 0;
        for (const [k, v] of final) expected += bytes(k, v);
        assert.equal(await c.usage(), expected);
        for (const [k, v] of final) assert.equal(await c.get(k), v);
        // Parallel deletes and sets interleaved.
        await Promise.all([...final.keys()].map((k, i) => (i % 2 ? c.delete(k) : c.set(k, '1'))));
        expected = [...final.keys()].filter((_, i) => i % 2 === 0).reduce((n, k) => n + bytes(k, '1'), 0);
        assert.equal(await c.usage(), expected);
        await store.sweep();
        assert.equal(await c.usage(), expected);
      }));

    it('concurrency: parallel writes racing for the last bytes of quota never overshoot', () =>
      withStore(t, async (store) => {
        const c = store.forTenant(tid(), { maxBytes: 1000, maxValueBytes: 1000 });
        const json = JSON.stringify('x'.repeat(95)); // 97 bytes + key
        const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => c.set(`k${String(i).padStart(2, '0')}`, json)));
        const ok = results.filter((r) => r.status === 'fulfilled').length;
        assert.equal(ok, 10); // 10 × 100 bytes = 1000
        for (const r of results) if (r.status === 'rejected') assert.ok(isSluiceError(r.reason, 'QUOTA_EXCEEDED'));
        assert.equal(await c.usage(), 1000);
      }));

    it('two views of one tenant (a limits reload) share one queue and one counter', () =>
      withStore(t, async (store) => {
        const id = tid();
        const v1 = store.forTenant(id, BIG);
        const v2 = store.forTenant(id, BIG);
        await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? v1 : v2).set(`k${i}`, '"v"')));
        assert.equal(await v1.usage(), 10 * bytes('k0', '"v"') + 40 * bytes('k10', '"v"'));
        assert.equal(await v2.get('k7'), '"v"');
      }));

    it('a closed store refuses further use; close() lets queued writes finish', async () => {
      const store = await t.open();
      const c = store.forTenant(tid(), BIG);
      const pending = Promise.all(Array.from({ length: 20 }, (_, i) => c.set(`k${i}`, '1')));
      await store.close();
      await pending;
      await assert.rejects(c.get('k1'), /closed/);
      await assert.rejects(c.set('k1', '1'), /closed/);
      assert.throws(() => store.forTenant('x', BIG), /closed/);
      await store.close(); // idempotent
    });
  });
}

/** Sum of key+value bytes, for callers checking a TenantCache by hand. */
export async function storedSum(c: TenantCache, entries: Record<string, string>): Promise<number> {
  let n = 0;
  for (const [k, v] of Object.entries(entries)) if ((await c.get(k)) === v) n += bytes(k, v);
  return n;
}

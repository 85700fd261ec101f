import { CacheStore } from './store';

/** Operations per second measured by `benchCache`. */
export interface CacheBenchResult {
  /** Sequential sets (each awaited before the next). */
  setPerSec: number;
  /** Sequential gets. */
  getPerSec: number;
  /** Sets with 64 in flight. */
  parallelSetPerSec: number;
  /** Gets with 64 in flight. */
  parallelGetPerSec: number;
}

const PARALLEL = 64;
// A DLR-correlation-sized value, as a policy that correlates its own receipts in its cache stores.
const VALUE = JSON.stringify({ session: 'sess-0123456789', systemId: 'acme-app', ourId: '7f3e9a1c2b4d' });

async function timed(n: number, fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function parallel(n: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < n) await op(next++);
    }),
  );
}

/**
 * Micro-benchmark of one tenant's cache on the store at `url`: `n` sequential
 * sets then gets, then `n` sets and gets with 64 in flight. Writes under a
 * throwaway tenant and deletes what it wrote.
 */
export async function benchCache(url: string, n: number): Promise<CacheBenchResult> {
  const store = await CacheStore.open(url);
  try {
    const cache = store.forTenant(`bench-${process.pid}-${Date.now()}`, { maxBytes: 2 ** 40, maxValueBytes: 2 ** 20 });
    const setPerSec = await timed(n, async () => {
      for (let i = 0; i < n; i++) await cache.set(`dlr:s:${i}`, VALUE, 3_600_000);
    });
    const getPerSec = await timed(n, async () => {
      for (let i = 0; i < n; i++) await cache.get(`dlr:s:${i}`);
    });
    const parallelSetPerSec = await timed(n, () => parallel(n, (i) => cache.set(`dlr:p:${i}`, VALUE, 3_600_000)));
    const parallelGetPerSec = await timed(n, () => parallel(n, (i) => cache.get(`dlr:p:${i}`)));
    await parallel(n, async (i) => Promise.all([cache.delete(`dlr:s:${i}`), cache.delete(`dlr:p:${i}`)]));
    return { setPerSec, getPerSec, parallelSetPerSec, parallelGetPerSec };
  } finally {
    await store.close();
  }
}

// `node dist/src/cache/bench-cache.js <url> [n]`
if (require.main === module) {
  const [url = 'memory://', n = '2000'] = process.argv.slice(2);
  benchCache(url, Number(n)).then(
    (r) => console.log(JSON.stringify({ url, n: Number(n), ...r })),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, doubling, RECONNECT_CAP_MS } from '../../src/util/backoff';

describe('doubling', () => {
  it('the base after the first failure, twice that after the second, never over the cap; no failure yet is the base', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => doubling(100, n, 1000)), [100, 100, 200, 400, 800, 1000]);
    assert.equal(doubling(1000, 40), 1000 * 2 ** 30, 'uncapped, it stays finite');
    assert.equal(doubling(50, 1e9, 5000), 5000);
  });

  it('Backoff jitters each doubling into [50%, 100%] and holds the reconnect cap', () => {
    const low = new Backoff({ baseMs: 1000, maxMs: RECONNECT_CAP_MS, random: () => 0 });
    const high = new Backoff({ baseMs: 1000, maxMs: RECONNECT_CAP_MS, random: () => 1 });
    assert.deepEqual(Array.from({ length: 8 }, () => low.next()), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert.deepEqual(Array.from({ length: 8 }, () => high.next()), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { STRIKE_DEFAULTS, Strikes } from '../../src/util/strikes';

describe('Strikes', () => {
  it('a doubling delay per strike in the window; the third within ten minutes quarantines', () => {
    const s = new Strikes();
    assert.deepEqual(s.strike(0), { count: 1, quarantine: false, delayMs: 1000 });
    assert.deepEqual(s.strike(5_000), { count: 2, quarantine: false, delayMs: 2000 });
    assert.deepEqual(s.strike(10_000), { count: 3, quarantine: true, delayMs: 4000 });
  });

  it('strikes older than the window no longer count, and reset() clears them', () => {
    const s = new Strikes({ ...STRIKE_DEFAULTS, windowMs: 1000 });
    s.strike(0);
    s.strike(500);
    assert.equal(s.count(900), 2);
    assert.equal(s.count(1200), 1);
    assert.deepEqual(s.strike(1600), { count: 1, quarantine: false, delayMs: 1000 }, 'both earlier strikes have left the window');
    s.reset();
    assert.equal(s.count(1600), 0);
  });

  it('the delay stops at its cap', () => {
    const s = new Strikes({ baseMs: 1000, capMs: 3000, windowMs: 1e9, quarantineAfter: 100 });
    const delays = Array.from({ length: 5 }, (_, i) => s.strike(i).delayMs);
    assert.deepEqual(delays, [1000, 2000, 3000, 3000, 3000]);
  });
});

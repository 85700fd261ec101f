import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/util/clock';
import { DeadlineQueue, KeyedDeadlines } from '../../src/util/deadline';

describe('deadlines on one timer', () => {
  it('KeyedDeadlines: every key expires once, in order, exactly its length after it was added', () => {
    const clock = new ManualClock();
    const expired: [number, number][] = [];
    const d = new KeyedDeadlines(100, clock, () => true, (k) => expired.push([k, clock.now()]));
    d.add(1);
    clock.advance(30);
    d.add(2);
    d.add(3);
    clock.advance(69);
    assert.deepEqual(expired, []);
    clock.advance(1);
    assert.deepEqual(expired, [[1, 100]]);
    clock.advance(30);
    assert.deepEqual(expired, [[1, 100], [2, 130], [3, 130]]);
    // Nothing left: no timer keeps running, and the next key starts afresh.
    d.add(4);
    clock.advance(100);
    assert.deepEqual(expired.at(-1), [4, 230]);
  });

  it('KeyedDeadlines: thousands of keys, and clear() drops them all', () => {
    const clock = new ManualClock();
    let n = 0;
    const d = new KeyedDeadlines(10, clock, () => true, () => n++);
    for (let i = 0; i < 5000; i++) {
      d.add(i);
      if (i % 100 === 0) clock.advance(1);
    }
    // Now t = 50; key i was added at t = ceil(i / 100).
    clock.advance(5);
    assert.equal(n, 4501, 'the keys added at t ≤ 45');
    d.clear();
    clock.advance(1000);
    const after = n;
    clock.advance(1000);
    assert.equal(n, after);
  });

  it('KeyedDeadlines: keys no longer live never expire, and leave the arrays as new keys arrive', () => {
    const clock = new ManualClock();
    const live = new Set<number>();
    const expired: number[] = [];
    const d = new KeyedDeadlines(5000, clock, (k) => live.has(k), (k) => expired.push(k));
    // A window of 64 in flight, each settled by its owner before its deadline: 100,000 keys in 1 s.
    for (let i = 0; i < 100_000; i++) {
      live.add(i);
      d.add(i);
      if (i >= 63) live.delete(i - 63);
      if (i % 100 === 0) clock.advance(1);
      assert.ok(d.size <= 64 + 1024 * 2, `${d.size} keys held after ${i + 1}`);
    }
    clock.advance(5000);
    assert.deepEqual(expired, Array.from({ length: 63 }, (_, k) => 100_000 - 63 + k));
    assert.equal(d.size, 0);
  });

  it('DeadlineQueue: a settled entry never fires; settle reports whether it came first', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const q = new DeadlineQueue(50, clock);
    const a = q.add(() => fired.push('a'));
    q.add(() => fired.push('b'));
    assert.equal(a.settle(), true);
    clock.advance(50);
    assert.deepEqual(fired, ['b']);
    assert.equal(a.settle(), false);
  });

  it('DeadlineQueue: settled entries leave the FIFO as new ones arrive, so it holds what is in flight', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const q = new DeadlineQueue(5000, clock);
    // A window of 64 in flight, each answered before its deadline: 100,000 PDUs in 1 s.
    const window: { settle(): boolean }[] = [];
    for (let i = 0; i < 100_000; i++) {
      window.push(q.add(() => fired.push(i)));
      if (window.length === 64) assert.equal(window.shift()!.settle(), true);
      if (i % 100 === 0) clock.advance(1);
      assert.ok(q.size <= 64 + 1024 * 2, `FIFO at ${q.size} entries after ${i + 1} PDUs`);
    }
    // The 63 still in flight expire, in order, and nothing else does.
    clock.advance(5000);
    assert.deepEqual(fired, Array.from({ length: 63 }, (_, k) => 100_000 - 63 + k));
    assert.equal(q.size, 0);
  });

  it('DeadlineQueue: an entry settled out of order still never fires, and the ones around it do', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const q = new DeadlineQueue(10, clock);
    q.add(() => fired.push('a'));
    const b = q.add(() => fired.push('b'));
    q.add(() => fired.push('c'));
    assert.equal(b.settle(), true);
    assert.equal(b.settle(), false);
    clock.advance(10);
    assert.deepEqual(fired, ['a', 'c']);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keepSpareIsolate, PolicyIsolate, type IsolateLimits } from '../../src/isolates/policy-isolate';
import './ivm-teardown';

const limitsOf = (memoryMb: number): IsolateLimits => ({ memoryMb, timeoutMs: 50, startupMs: 500, maxDataBytes: 65536, maxLogPerSec: 10, maxLogBytes: 2048, maxPending: 8 });
const hooks = { result: () => {}, call: () => {}, log: () => {}, view: () => '[]' };
const start = (memoryMb: number): Promise<PolicyIsolate> =>
  PolicyIsolate.create('"use strict";\nsmpp.onBind((b) => b.accept());\n', 'p.js', limitsOf(memoryMb), { tenant: 't', config: {}, routing: {} }, hooks);
const heapLimit = (iso: PolicyIsolate): number => iso.isolate.getHeapStatisticsSync().heap_size_limit;
// The sandbox makes its isolate ahead of need 20 ms after a start is over.
const idle = (): Promise<void> => new Promise((r) => setTimeout(r, 60));

describe('isolates made ahead of need', () => {
  // As a sandbox process does; dropped again before this process ends.
  before(() => keepSpareIsolate(true));
  after(() => keepSpareIsolate(false));

  it('a tenant never gets an isolate made for another memory limit: the one made ahead is used only when the limit matches', async () => {
    const big = await start(64);
    await idle(); // one for 64 MB is waiting now
    const small = await start(16);
    assert.ok(heapLimit(small) < heapLimit(big) - 32 * 1048576, `16 MB tenant got a heap limit of ${heapLimit(small)} bytes`);
    await idle(); // one for 16 MB is waiting now
    const again = await start(16);
    assert.equal(heapLimit(again), heapLimit(small));
    assert.notEqual(again.isolate, small.isolate);
    // And a memory bomb in it stops at its own limit, not at the one made first.
    const r = await again.isolate.compileScript('const a = []; for (;;) a.push(new Array(1e5).fill(1));').then((s) => s.run(again.isolate.createContextSync(), { timeout: 5000 })).then(
      () => 'ran',
      (e: Error) => e.message,
    );
    assert.match(r, /memory limit/i);
    for (const i of [big, small, again]) i.dispose();
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PolicyIsolate, type IsolateLimits } from '../../src/sandbox-process/policy-isolate';
import { keepSpareIsolate, spareIsolate } from '../../src/sandbox-process/warm-isolate';
import '../helpers/ivm-teardown';

const limitsOf = (memoryMb: number): IsolateLimits => ({ memoryMb, timeoutMs: 50, startupMs: 500, maxDataBytes: 65536, maxLogPerSec: 10, maxLogBytes: 2048, maxPending: 8 });
const hooks = { result: () => {}, call: () => {}, log: () => {}, view: () => '[]' };
const start = (memoryMb: number): Promise<PolicyIsolate> =>
  PolicyIsolate.create('"use strict";\nsmpp.onBind((b) => b.accept());\n', 'p.js', limitsOf(memoryMb), { tenant: 't', config: {}, routing: {} }, hooks);
const heapLimit = (iso: PolicyIsolate): number => iso.isolate.getHeapStatisticsSync().heap_size_limit;
// The sandbox makes its isolate ahead of need a few ms after a start is over, and its prelude runs then.
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

  it('an isolate made before its tenant was known gets its tenant at boot: its own name, config and routing, the prelude hidden, nothing of the tenant before', async () => {
    const seen: string[] = [];
    const startAs = (tenant: string, config: unknown): Promise<PolicyIsolate> =>
      PolicyIsolate.create(
        '"use strict";\nglobalThis.mark = (globalThis.mark ?? "") + "x";\n' +
          'log.info(JSON.stringify({ tenant: smpp.tenant, config: smpp.config(), routing: smpp.routingRules(), mark, hidden: [typeof __sluice_enter, typeof __sluice_send, typeof __sluice_view, typeof __sluice_pdu, typeof __sluice_boot] }));\n',
        'p.js',
        limitsOf(32),
        { tenant, config, routing: { rules: [tenant] } },
        { ...hooks, log: (e: { msg: string }) => seen.push(e.msg) },
      );
    const a = await startAs('alpha', { key: 'a' });
    await idle();
    assert.deepEqual(spareIsolate(), { memoryMb: 32, ready: true }, 'an isolate with its prelude run is waiting');
    const b = await startAs('beta', { key: 'b' });
    assert.equal(spareIsolate(), undefined, 'beta took the waiting one (the next is made a moment later)');
    await idle();
    const got = seen.map((m) => JSON.parse(m) as Record<string, unknown>);
    const hidden = ['undefined', 'undefined', 'undefined', 'undefined', 'undefined'];
    assert.deepEqual(got, [
      { tenant: 'alpha', config: { key: 'a' }, routing: { rules: ['alpha'] }, mark: 'x', hidden },
      { tenant: 'beta', config: { key: 'b' }, routing: { rules: ['beta'] }, mark: 'x', hidden },
    ]);
    for (const i of [a, b]) i.dispose();
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { TenantRuntime, type RuntimeHost } from '../../src/isolates/tenant-runtime';
import { ManualClock } from '../../src/util/clock';

const limits = parseConfig(stringify({ tenants: [{ id: 't' }] }), { file: 't', env: {} }).tenants[0]!.limits;
const host: RuntimeHost = { call: async () => null, log: () => {}, view: () => [] };
const SOURCE = "let calls = 0; smpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'c' + (++calls) }));";
const pdu = (n: number) => ({ pdu: { command: 'submit_sm', sequence_number: n }, session: { kind: 'esme', sessionId: 's', systemId: 't', clientAddr: '' } });

describe('TenantRuntime: lazy isolates and eviction', () => {
  it('registers without an isolate, starts one on first use, evicts it when idle, and cold-starts again', async () => {
    const clock = new ManualClock();
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, host, { clock, idleEvictMs: 60_000 });
    assert.deepEqual(await rt.load(SOURCE, 'p.ts', false), { ok: true, version: 0, hash: '' });
    assert.equal(rt.hasIsolate, false, 'nothing runs until the tenant has traffic');
    assert.deepEqual(await rt.dispatch('pdu', pdu(1)), { kind: 'reply', status: 0, fields: { message_id: 'c1' } });
    assert.equal(rt.hasIsolate, true);
    assert.equal(rt.stats().state, 'ready');
    // Entries are asynchronous: the one that answered returns a moment after its answer.
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(30_000);
    assert.equal(rt.evictIfIdle(), false, 'not idle long enough');
    clock.advance(30_000);
    assert.equal(rt.evictIfIdle(), true);
    assert.equal(rt.hasIsolate, false);
    assert.equal(rt.stats().state, 'idle');
    // Policy state in the isolate is gone (only the cache survives); the next PDU starts a fresh isolate.
    assert.deepEqual(await rt.dispatch('pdu', pdu(2)), { kind: 'reply', status: 0, fields: { message_id: 'c1' } });
    rt.dispose();
  });

  it('a policy that does not compile fails its first use with line:column, and a good reload brings it back', async () => {
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, host, {});
    await rt.load("smpp.onPdu('submit_sm', (pdu) => {\n  return pdu.reply({ message_id: 'x' ;\n});", 'p.ts', false);
    const o = await rt.dispatch('pdu', pdu(1));
    assert.equal(o.kind, 'error');
    assert.match((o as { message: string }).message, /p\.ts:2:\d+/);
    assert.equal((await rt.load(SOURCE, 'p.ts', true)).ok, true);
    assert.equal((await rt.dispatch('pdu', pdu(2))).kind, 'reply');
    rt.dispose();
  });
});

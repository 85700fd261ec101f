import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { PolicyIsolate } from '../../src/sandbox-process/policy-isolate';
import { TenantRuntime, type RuntimeHost } from '../../src/sandbox-process/tenant-runtime';
import { ManualClock } from '../../src/util/clock';
import { encodePdu } from '../../src/wire/codec';
import '../helpers/ivm-teardown';

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

describe('TenantRuntime: PDUs as raw frames (the sandbox path)', () => {
  const session = { kind: 'esme', sessionId: 's', systemId: 't', clientAddr: '' };
  const frame = (text: string, seq = 1): Uint8Array => new Uint8Array(encodePdu('submit_sm', seq, 0, { destination_addr: '316', short_message: Buffer.from(text) }));

  it('the view is built in the isolate; reply works destructured, stays out of a spread, and answers only its own PDU', async () => {
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, host, {});
    const policy = `
      let stolen;
      smpp.onPdu('submit_sm', (pdu) => {
        const t = pdu.text;
        if (t === 'spread') return pdu.reply({ message_id: Object.keys({ ...pdu }).includes('reply') ? 'leaks' : 'fields-only:' + ({ ...pdu }).destination_addr });
        if (t === 'destructured') { const { reply, sequence_number } = pdu; return reply({ message_id: 'seq' + sequence_number }); }
        if (t === 'keep') { stolen = pdu.reply; return pdu.reply({ message_id: 'kept' }); }
        if (t === 'steal') { stolen({ message_id: 'stolen' }); return undefined; }
        if (t === 'reflect') {
          const proto = Object.getPrototypeOf(pdu);
          const seen = [Reflect.ownKeys(pdu).filter((k) => typeof k !== 'string').length, proto.constructor === Object, Object.isFrozen(proto), Reflect.ownKeys(proto).join()];
          return pdu.reply({ message_id: seen.join('|') });
        }
        if (t === 'detached') { try { return Object.getOwnPropertyDescriptor(Object.getPrototypeOf(pdu), 'reply').get.call({})({}); } catch (e) { return pdu.reply({ message_id: e.name }); } }
        return pdu.reply({ message_id: 'echo:' + t });
      });`;
    assert.equal((await rt.load(policy, 'p.ts', true)).ok, true);
    const go = (text: string, seq = 1) => rt.dispatch('pdu', { frame: frame(text, seq), session });
    assert.deepEqual(await go('hello'), { kind: 'reply', status: 0, fields: { message_id: 'echo:hello' } });
    assert.deepEqual(await go('spread'), { kind: 'reply', status: 0, fields: { message_id: 'fields-only:316' } });
    assert.deepEqual(await go('destructured', 42), { kind: 'reply', status: 0, fields: { message_id: 'seq42' } });
    assert.deepEqual(await go('keep'), { kind: 'reply', status: 0, fields: { message_id: 'kept' } });
    // A reply function kept from an earlier PDU answers that PDU (long gone), never this one: this one gets the default.
    assert.deepEqual(await go('steal'), { kind: 'default' });
    // Nothing reflective reaches a view's dispatch or the class that makes views.
    assert.deepEqual(await go('reflect'), { kind: 'reply', status: 0, fields: { message_id: '0|true|true|reply,replyQuery' } });
    assert.deepEqual(await go('detached'), { kind: 'reply', status: 0, fields: { message_id: 'TypeError' } });
    // Many in one entry, each its own answer.
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => go(`m${i}`, i)));
    assert.deepEqual(many.map((o) => (o as unknown as { fields: { message_id: string } }).fields.message_id), Array.from({ length: 40 }, (_, i) => `echo:m${i}`));
    rt.dispose();
  });

  it('the view module is loaded before the policy runs: built-ins the policy breaks afterwards do not reach its loading', async () => {
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, host, {});
    // Were the module loaded lazily, on the first PDU, this would make that load fail at its last step.
    const policy = `
      const realParse = JSON.parse;
      let once = true;
      JSON.parse = function (s) { if (once) { once = false; throw new Error('not now'); } return realParse(s); };
      smpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'got:' + pdu.text }));`;
    assert.equal((await rt.load(policy, 'p.ts', true)).ok, true);
    assert.deepEqual(await rt.dispatch('pdu', { frame: frame('first'), session }), { kind: 'reply', status: 0, fields: { message_id: 'got:first' } });
    assert.deepEqual(await rt.dispatch('pdu', { frame: frame('second'), session }), { kind: 'reply', status: 0, fields: { message_id: 'got:second' } });
    rt.dispose();
  });

  it('a policy that breaks the built-ins its own views use loses only its own PDUs', async () => {
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, host, {});
    const policy = `
      smpp.onPdu('submit_sm', (pdu) => {
        if (pdu.text === 'break') String.fromCharCode = () => { throw new Error('mine'); };
        return pdu.reply({ message_id: 'ok' });
      });`;
    assert.equal((await rt.load(policy, 'p.ts', true)).ok, true);
    assert.deepEqual(await rt.dispatch('pdu', { frame: frame('break'), session }), { kind: 'reply', status: 0, fields: { message_id: 'ok' } });
    const after = await rt.dispatch('pdu', { frame: frame('next'), session });
    assert.equal(after.kind, 'error', 'its next view cannot be built: answered ESME_RSYSERR by the core');
    rt.dispose();
  });
});

describe('TenantRuntime: host call results', () => {
  it('results that arrive together enter together, and each handler gets its own', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls: unknown[] = [];
    const slowHost: RuntimeHost = {
      call: async (_tenant, op, args) => {
        calls.push(args);
        await gate;
        // A cache read answers JSON text; the prelude parses it.
        return op === 'cache' ? JSON.stringify(`v:${(args as { key: string }).key}`) : null;
      },
      log: () => {},
      view: () => [],
    };
    const rt = new TenantRuntime('t', limits, { tenant: 't', config: {}, routing: {} }, slowHost, {});
    const policy = `
      smpp.onPdu('submit_sm', async (pdu) => {
        const v = await cache.get('k' + pdu.sequence_number);
        return pdu.reply({ message_id: String(v) });
      });`;
    assert.equal((await rt.load(policy, 'p.ts', true)).ok, true);
    // Warm the isolate, so its start is not part of what is counted.
    const first = rt.dispatch('pdu', { frame: new Uint8Array(encodePdu('submit_sm', 999, 0, { destination_addr: '1' })), session: pdu(0).session });
    while (calls.length < 1) await new Promise((r) => setTimeout(r, 5));
    const proto = PolicyIsolate.prototype as unknown as { resolve: (...a: unknown[]) => Promise<void>; resolveMany: (...a: unknown[]) => Promise<void> };
    const entries: number[] = [];
    const { resolve, resolveMany } = proto;
    proto.resolve = function (this: unknown, ...a: unknown[]) {
      entries.push(1);
      return resolve.apply(this, a);
    };
    proto.resolveMany = function (this: unknown, ...a: unknown[]) {
      entries.push((a[0] as unknown[]).length);
      return resolveMany.apply(this, a);
    };
    try {
      const answers = Array.from({ length: 40 }, (_, i) =>
        rt.dispatch('pdu', { frame: new Uint8Array(encodePdu('submit_sm', i + 1, 0, { destination_addr: '1' })), session: pdu(0).session }),
      );
      while (calls.length < 41) await new Promise((r) => setTimeout(r, 5));
      release();
      const got = await Promise.all(answers);
      assert.deepEqual(
        got.map((o) => (o as { fields?: { message_id?: string } }).fields?.message_id),
        Array.from({ length: 40 }, (_, i) => `v:k${i + 1}`),
      );
      assert.deepEqual(await first, { kind: 'reply', status: 0, fields: { message_id: 'v:k999' } });
      // 41 results at once: a few entries of up to 16, not one entry each.
      assert.equal(entries.reduce((a, b) => a + b, 0), 41);
      assert.ok(entries.length <= 4, `41 results took ${entries.length} entries`);
    } finally {
      proto.resolve = resolve;
      proto.resolveMany = resolveMany;
      rt.dispose();
    }
  });
});

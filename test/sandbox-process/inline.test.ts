/**
 * Inline entries: a tenant whose policy calls proved short on trial runs
 * them on the sandbox process's own thread, and loses that the moment one
 * runs long or fails. Here a TenantRuntime runs in-process (as in a sandbox
 * process, minus the sentry), with real isolates; the hostile cases against
 * a real sandbox process are in hostile-inline.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { TRIAL_ENTRIES } from '../../src/sandbox-process/policy-isolate';
import { INLINE_MAX_TIMEOUT_MS, SLOW_GRACE_MS } from '../../src/sandbox-process/inline-standing';
import { TenantRuntime, type RuntimeHost } from '../../src/sandbox-process/tenant-runtime';
import { ManualClock } from '../../src/util/clock';
import '../helpers/ivm-teardown';

const limits = parseConfig(stringify({ tenants: [{ id: 't', limits: { handler_timeout_ms: 50 } }] }), { file: 't', env: {} }).tenants[0]!.limits;
const boot = { tenant: 't', config: {}, routing: {} };
const pdu = (text: string, n = 1) => ({ pdu: { command: 'submit_sm', sequence_number: n, short_message: text }, session: { kind: 'esme', sessionId: 's', systemId: 't', clientAddr: '' } });

// Answers 'ok:<n>'; 'spin' loops forever; 'busy' runs 30 ms and answers; 'chain' starts an endless microtask chain.
const POLICY = `
let n = 0;
smpp.onPdu('submit_sm', (pdu) => {
  const t = pdu.short_message;
  if (t === 'spin') for (;;) {}
  if (t === 'busy') { const end = Date.now() + 30; while (Date.now() < end) {} }
  if (t === 'chain') { const again = () => Promise.resolve().then(again); again(); return new Promise(() => {}); }
  return pdu.reply({ message_id: t + ':' + (++n) });
});`;

function world(o: { inlineEntryMs?: number; handlerTimeoutMs?: number } = {}) {
  const clock = new ManualClock();
  const logs: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const host: RuntimeHost = { call: async () => null, log: (_t, level, msg, fields) => logs.push({ level, msg, fields: fields as Record<string, unknown> }), view: () => [] };
  const l = o.handlerTimeoutMs ? { ...limits, handler_timeout_ms: o.handlerTimeoutMs } : limits;
  const rt = new TenantRuntime('t', l, boot, host, { clock, inlineEntryMs: o.inlineEntryMs ?? 10 });
  return { rt, clock, logs };
}

/** Dispatch `count` short PDUs one at a time, each answered in order. */
async function warm(rt: TenantRuntime, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const o = await rt.dispatch('pdu', pdu('w'));
    assert.equal(o.kind, 'reply');
  }
}

describe('inline entries: trial, demotion, standing', () => {
  it(`entries start on the isolate's thread and go inline after ${TRIAL_ENTRIES} short ones; answers are unchanged`, async () => {
    const { rt } = world();
    assert.equal((await rt.load(POLICY, 'p.ts', true)).ok, true);
    await warm(rt, TRIAL_ENTRIES - 2);
    assert.equal(rt.stats().inline, false, 'still on trial');
    await warm(rt, 4);
    assert.equal(rt.stats().inline, true);
    // Inline, answers come in order and the policy's state carried over.
    assert.deepEqual(await rt.dispatch('pdu', pdu('x')), { kind: 'reply', status: 0, fields: { message_id: `x:${TRIAL_ENTRIES + 3}` } });
    const many = await Promise.all([1, 2, 3].map((i) => rt.dispatch('pdu', pdu(`m${i}`, i))));
    assert.deepEqual(
      many.map((o) => (o as unknown as { fields: { message_id: string } }).fields.message_id),
      [`m1:${TRIAL_ENTRIES + 4}`, `m2:${TRIAL_ENTRIES + 5}`, `m3:${TRIAL_ENTRIES + 6}`],
    );
    rt.dispose();
  });

  it('an inline entry that spins is cut at handler_timeout_ms and answered; the tenant goes back to its own thread, barred for a minute, then 2, across reloads', async () => {
    const { rt, clock, logs } = world();
    await rt.load(POLICY, 'p.ts', true);
    await warm(rt, TRIAL_ENTRIES + 2);
    assert.equal(rt.stats().inline, true);
    const o = await rt.dispatch('pdu', pdu('spin'));
    assert.equal(o.kind, 'error');
    assert.equal((o as { reason: string }).reason, 'timeout');
    const st = rt.stats();
    assert.equal(st.inline, false);
    assert.equal(st.inlineOffences, 1);
    const warned = logs.filter((l) => l.msg.includes('held the sandbox thread'));
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!.level, 'warn');
    assert.equal(warned[0]!.fields.reason, 'timeout');
    assert.equal(warned[0]!.fields.barred_ms, 60_000);
    // The isolate lives on: the next PDU is answered, on its own thread.
    await warm(rt, TRIAL_ENTRIES + 2);
    assert.equal(rt.stats().inline, false, 'barred: no new trial passes for a minute');
    // A new version does not clear the standing.
    assert.equal((await rt.load(POLICY.replace("t + ':'", "t + '/'"), 'p.ts', true)).ok, true);
    await warm(rt, TRIAL_ENTRIES + 2);
    assert.equal(rt.stats().inline, false, 'still barred after a reload');
    clock.advance(60_001);
    await warm(rt, TRIAL_ENTRIES + 2);
    assert.equal(rt.stats().inline, true, 'a new trial after the bar');
    assert.equal((await rt.dispatch('pdu', pdu('chain'))).kind, 'error', 'an endless microtask chain is cut inline too');
    assert.equal(rt.stats().inlineOffences, 2);
    assert.equal(logs.filter((l) => l.msg.includes('held the sandbox thread'))[1]!.fields.barred_ms, 120_000, 'the bar doubles');
    rt.dispose();
  });

  it('an inline entry that finishes but ran over inline_entry_ms of CPU is answered; one an hour passes, the next within the hour demotes the tenant', async () => {
    const { rt, clock, logs } = world({ inlineEntryMs: 5 });
    await rt.load(POLICY, 'p.ts', true);
    await warm(rt, TRIAL_ENTRIES + 2);
    assert.equal(rt.stats().inline, true);
    const first = await rt.dispatch('pdu', pdu('busy'));
    assert.equal(first.kind, 'reply', 'a slow entry is still a good answer');
    assert.equal(rt.stats().inline, true, 'the first slow entry of the hour passes');
    assert.equal(rt.stats().inlineOffences, 0);
    assert.equal(logs.at(-1)!.level, 'info');
    assert.match(logs.at(-1)!.msg, /once/);
    assert.ok(Number(logs.at(-1)!.fields.entry_ms) >= 5);
    // An hour later, one more passes; a second within the hour demotes.
    clock.advance(SLOW_GRACE_MS);
    assert.equal((await rt.dispatch('pdu', pdu('busy'))).kind, 'reply');
    assert.equal(rt.stats().inline, true, 'an hour on, another one-off passes');
    clock.advance(SLOW_GRACE_MS - 1);
    const o = await rt.dispatch('pdu', pdu('busy'));
    assert.equal(o.kind, 'reply');
    assert.equal(rt.stats().inline, false);
    assert.equal(rt.stats().inlineOffences, 1);
    assert.equal(logs.at(-1)!.level, 'warn');
    assert.equal(logs.at(-1)!.fields.reason, 'slow');
    assert.ok(Number(logs.at(-1)!.fields.entry_ms) >= 5);
    rt.dispose();
  });

  it('a trial entry that runs long starts the trial over: a policy with regular slow calls never goes inline', async () => {
    const { rt } = world({ inlineEntryMs: 5 });
    await rt.load(POLICY, 'p.ts', true);
    for (let i = 0; i < 3 * TRIAL_ENTRIES; i++) {
      const o = await rt.dispatch('pdu', pdu(i % 40 === 39 ? 'busy' : 'w'));
      assert.equal(o.kind, 'reply');
    }
    assert.equal(rt.stats().inline, false);
    assert.equal(rt.stats().inlineOffences, 0, 'never inline, so never an offence');
    rt.dispose();
  });

  it(`never inline: with inline_entry_ms 0, or a handler_timeout_ms over ${INLINE_MAX_TIMEOUT_MS} ms`, async () => {
    for (const o of [{ inlineEntryMs: 0 }, { handlerTimeoutMs: INLINE_MAX_TIMEOUT_MS + 1 }]) {
      const { rt } = world(o);
      await rt.load(POLICY, 'p.ts', true);
      await warm(rt, TRIAL_ENTRIES + 8);
      assert.equal(rt.stats().inline, false, JSON.stringify(o));
      rt.dispose();
    }
  });
});

/**
 * Hostile tenants that behave until their entries run inline (on the
 * sandbox process's own thread, which every tenant of the process shares),
 * then attack. Each attack is cut or caught, the tenant goes back to its
 * own thread, and the good tenant in the same process keeps getting
 * ESME_ROK. What V8 cannot stop inline — one huge allocation — is the
 * sentry's: it kills the process, names the tenant, and the core restarts
 * the process as after any crash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TRIAL_ENTRIES } from '../../src/sandbox-process/policy-isolate';
import { HOSTILE_LIMITS, STATUS, assertAlive, assertCrashWindow, assertGoodFlowed, crashWithGoodTraffic, startWorld, submitText, tenantStats, withGoodTraffic, type World } from './hostile-helpers';
import type { EsmeClient } from '../../src/tools/esme-client';
import '../helpers/ivm-teardown';

const ROOMY = { ...HOSTILE_LIMITS, cpu_ms_per_s: 1000 };

/** Each policy answers 'warm' at once; any other text is its attack. */
const warmThen = (attack: string, asyncHandler = false): string => `
  const spin = () => { for (;;) {} };
  smpp.onPdu('submit_sm', ${asyncHandler ? 'async ' : ''}(pdu) => {
    if (pdu.text === 'warm') return pdu.reply({ message_id: 'warm' });
    ${attack}
  });`;

const POLICIES = {
  loop: warmThen('spin();'),
  microtasks: warmThen('const again = () => Promise.resolve().then(again); again(); return new Promise(() => {});'),
  // Spins in the continuation, in the entry that hands it the cache read's result.
  afterawait: warmThen("await cache.get('k'); spin();", true),
  redos: warmThen('return pdu.reply({ message_id: String(/^(a+)+$/.test(pdu.text)) });'),
  recursion: warmThen('const stubborn = (n) => { try { return stubborn(n + 1) + 1; } catch (e) { return stubborn(n + 1); } }; return stubborn(0);'),
  getters: warmThen(`
    if (pdu.text === 'reply-getter') return pdu.reply({ get message_id() { spin(); } });
    if (pdu.text === 'throw-message') throw { get message() { spin(); } };
    return new Proxy({}, { get: spin, has: spin, ownKeys: spin, getPrototypeOf: spin, getOwnPropertyDescriptor: spin });`),
  smallbomb: warmThen('const keep = []; for (;;) keep.push({ a: [1, 2, 3], b: String(keep.length) });'),
};

/** Bind, send short PDUs until the tenant's entries run inline, and return the client. */
async function goInline(w: World, tenant: string): Promise<EsmeClient> {
  const c = await w.esme(tenant);
  for (let i = 0; i < TRIAL_ENTRIES + 8; i++) assert.equal((await submitText(c, 'warm')).fields.message_id, 'warm');
  assert.equal((await tenantStats(w, tenant)).inline, true, `${tenant}: inline after its trial`);
  return c;
}

/** Go inline, attack with `texts` while the good tenant sends, and check containment. */
async function inlineCase(w: World, tenant: string, texts: string[]) {
  const c = await goInline(w, tenant);
  const pid = w.pid();
  const { value: answers, samples } = await withGoodTraffic(w, async () => {
    const out = [];
    for (const t of texts) out.push(await submitText(c, t));
    return out;
  });
  // The good tenant waits for at most one inline entry's handler_timeout_ms (50 ms here) per offence.
  assertGoodFlowed(samples, 5, 400);
  await assertAlive(w, [{ tenant, c }], pid);
  const st = await tenantStats(w, tenant);
  assert.equal(st.inline, false, `${tenant}: back on its own thread`);
  assert.equal(st.inlineOffences, 1, `${tenant}: one offence (after it, every entry ran on its own thread)`);
  const warned = w.policyLogs(tenant).filter((l) => l.msg.includes('held the sandbox thread'));
  assert.equal(warned.length, 1, `${tenant}: the demotion is logged`);
  // Still served, on its own thread.
  assert.equal((await submitText(c, 'warm')).fields.message_id, 'warm');
  return answers;
}

describe('hostile tenants inline: cut, answered, sent back to their own thread', () => {
  let w: World;
  before(async () => {
    const specs: Record<string, { policy: string; limits: Record<string, unknown> }> = {};
    for (const [id, policy] of Object.entries(POLICIES)) specs[id] = { policy, limits: ROOMY };
    w = await startWorld(specs);
  });
  after(() => w.close());

  it('a synchronous infinite loop, an endless microtask chain, a loop after an await: ESME_RSYSERR at handler_timeout_ms', async () => {
    for (const tenant of ['loop', 'microtasks', 'afterawait']) {
      const [a] = await inlineCase(w, tenant, ['go']);
      assert.equal(a!.command_status, STATUS.ESME_RSYSERR, tenant);
      assert.equal((await tenantStats(w, tenant)).timeouts, 1, tenant);
    }
  });

  it('ReDoS and a stubborn deep recursion: ESME_RSYSERR', async () => {
    assert.equal((await inlineCase(w, 'redos', [`${'a'.repeat(40)}!`]))[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal((await inlineCase(w, 'recursion', ['go']))[0]!.command_status, STATUS.ESME_RSYSERR);
  });

  it('looping getters on a returned value, on a thrown object, and a returned Proxy: ESME_RSYSERR each', async () => {
    const answers = await inlineCase(w, 'getters', ['reply-getter', 'throw-message', 'proxy']);
    assert.deepEqual(
      answers.map((a) => a.command_status),
      [STATUS.ESME_RSYSERR, STATUS.ESME_RSYSERR, STATUS.ESME_RSYSERR],
    );
  });

  it('a memory bomb of small allocations: cut (timeout or memory kill), answered ESME_RSYSERR', async () => {
    const [a] = await inlineCase(w, 'smallbomb', ['go']);
    assert.equal(a!.command_status, STATUS.ESME_RSYSERR);
  });
});

describe('hostile tenants inline: what only the sentry can stop', () => {
  let w: World;
  before(async () => {
    w = await startWorld({ bomber: { policy: warmThen('new Array(6e7).fill(0); return pdu.reply({ message_id: "survived" });'), limits: { ...HOSTILE_LIMITS, handler_deadline_ms: 5000 } } });
  });
  after(() => w.close());

  it('one huge allocation inline hangs the thread: the sentry names the tenant and kills the process; sessions stay, the good tenant is served again after the restart, the bomber is penalised', async () => {
    const c = await goInline(w, 'bomber');
    // Let the good tenant go inline too: its entries then wait behind the bomber's.
    for (let i = 0; i < TRIAL_ENTRIES + 8; i++) assert.equal((await submitText(w.good, `p${i}`)).command_status, 0);
    const { value: bomb, samples, sentAt: bombAt, exitAt, exitSignal, named, pid } = await crashWithGoodTraffic(w, 'bomber', () => submitText(c, 'bomb'));
    assert.equal(bomb.command_status, STATUS.ESME_RSYSERR, "the bomb's PDU is answered");
    assert.ok(exitAt > 0, 'the sandbox process died');
    assert.equal(exitSignal, 'SIGKILL');
    // The sentry waits 2 x handler_timeout_ms + 1 s + 4 ms per MB of memory_mb (16 here) for an inline entry, checking every 50 ms.
    assert.ok(exitAt - bombAt >= 1000 && exitAt - bombAt < 4000, `killed ${exitAt - bombAt} ms after the bomb`);
    assert.equal(named.length, 1, 'the sentry told the core whose entry it was');
    assert.equal(named[0]!.tenant, 'bomber');
    assert.match(named[0]!.message, /inline policy entry did not return/);
    assert.notEqual(w.s.sandbox.processOf('bomber')!.pid, pid, 'a new process');
    // The good tenant: every PDU answered; failures only around the crash, ESME_RSYSERR; served after it.
    assertCrashWindow(samples, exitAt);
    assert.equal(w.s.gateway.sessions('good').length, 1);
    assert.equal(w.s.gateway.sessions('bomber').length, 1);
    assert.equal((await c.request('enquire_link')).command_status, 0);
    const state = w.s.sandbox.tenantState('bomber')!;
    assert.equal(state.crashes, 1, 'the bomber is blamed');
    assert.equal(state.penalised, true);
    assert.equal(w.s.sandbox.tenantState('good')!.crashes, 0, 'not the good tenant');
  });
});

describe('inline entries off (sandbox.inline_entry_ms: 0)', () => {
  let w: World;
  before(async () => {
    w = await startWorld({}, { sandbox: { inline_entry_ms: 0 } });
  });
  after(() => w.close());

  it('no tenant goes inline, however short its calls', async () => {
    for (let i = 0; i < TRIAL_ENTRIES + 16; i++) assert.equal((await submitText(w.good, `p${i}`)).command_status, 0);
    const st = await tenantStats(w, 'good');
    assert.equal(st.inline, false);
    assert.ok(Number(st.calls) >= TRIAL_ENTRIES + 16, 'the calls ran, each on its own thread');
  });
});

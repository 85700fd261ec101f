/**
 * Hostile tenants, CPU side: code that never yields, in every place the
 * sandbox lets tenant code run (handlers, microtasks, regex, getters on what
 * comes back, thrown values, stack formatting). Each is answered, and the
 * good tenant in the same sandbox process keeps getting ESME_ROK.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HOSTILE_LIMITS, STATUS, assertAlive, sleep, assertGoodFlowed, hostileCase, startWorld, submitText, tenantStats, withBind, withGoodTraffic, type World } from './hostile-helpers';

// Cases with several variants get a CPU budget that never runs dry, so each
// variant shows its own outcome (ESME_RSYSERR) rather than ESME_RTHROTTLED.
const ROOMY = { ...HOSTILE_LIMITS, cpu_ms_per_s: 1000 };

const POLICIES = {
  loop: `smpp.onPdu('submit_sm', () => { for (;;) {} });`,
  microtasks: `smpp.onPdu('submit_sm', () => {
    const again = () => Promise.resolve().then(again);
    again();
    return new Promise(() => {});
  });`,
  awaitloop: `smpp.onPdu('submit_sm', async () => { for (;;) await null; });`,
  forever: `smpp.onPdu('submit_sm', () => new Promise(() => {}));`,
  // Spins in the continuation, which runs in the entry that hands it the host call's result.
  afterawait: `smpp.onPdu('submit_sm', async () => { await cache.get('k'); for (;;) {} });`,
  redos: `smpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: String(/^(a+)+$/.test(pdu.text)) }));`,
  recursion: `smpp.onPdu('submit_sm', (pdu) => {
    if (pdu.text === 'plain') { const down = (n) => down(n + 1) + 1; return down(0); }
    const stubborn = (n) => { try { return stubborn(n + 1) + 1; } catch (e) { return stubborn(n + 1); } };
    return stubborn(0);
  });`,
  budget: `smpp.onPdu('submit_sm', (pdu) => { if (pdu.text === 'spin') for (;;) {} return pdu.reply({ message_id: 'cheap' }); });`,
  getters: `
    const spin = () => { for (;;) {} };
    smpp.onPdu('submit_sm', (pdu) => {
      switch (pdu.text) {
        case 'reply-getter': return pdu.reply({ get message_id() { spin(); } });
        case 'returned-proxy': return new Proxy({}, { get: spin, has: spin, ownKeys: spin, getPrototypeOf: spin, getOwnPropertyDescriptor: spin });
        case 'returned-thenable': return { then() { spin(); } };
        case 'thenable-getter': return { get then() { spin(); } };
        case 'reply-proxy-fields': return pdu.reply(new Proxy({}, { ownKeys: spin }));
        case 'throw-message': throw { get message() { spin(); } };
        case 'throw-code': throw { message: 'x', get code() { spin(); } };
        case 'throw-stack': throw { message: 'x', get stack() { spin(); } };
        case 'throw-tostring': throw { message: { toString: spin } };
        case 'throw-proxy': throw new Proxy({}, { get: spin, getPrototypeOf: spin });
        case 'reject-message': return Promise.reject({ get message() { spin(); } });
        case 'async-throw': return (async () => { await null; throw { get message() { spin(); } }; })();
        case 'error-proto-name': Object.defineProperty(Error.prototype, 'name', { get: spin }); throw new Error('x');
        case 'error-message-proto': Object.defineProperty(Object.prototype, 'message', { get: spin, configurable: true }); throw {};
      }
      return pdu.reply({ message_id: 'unknown' });
    });`,
  // Intrinsics the prelude itself calls, replaced by ones that throw looping objects.
  escapes: `
    const spin = () => { for (;;) {} };
    const hostile = { get message() { spin(); } };
    smpp.onPdu('submit_sm', (pdu) => {
      switch (pdu.text) {
        case 'promise-resolve': Promise.resolve = () => { throw hostile; }; break;
        case 'promise-resolve-proxy': Promise.resolve = () => { throw new Proxy({}, { get: spin, getPrototypeOf: spin }); }; break;
        case 'promise-reject': Promise.reject = () => { throw hostile; }; return smpp.submitVia('x', { a: 1n }).catch((e) => pdu.reply({ message_id: e.code }));
        case 'string-slice': String.prototype.slice = () => { throw hostile; }; throw new Error('x');
        case 'through-the-api': return smpp.submitVia({ toString() { throw hostile; } }, {});
      }
      return (async () => pdu.reply({ message_id: 'intact' }))();
    });`,
  stacktrace: `
    const tried = [];
    try { Error.prepareStackTrace = () => { for (;;) {} }; tried.push('assigned'); } catch (e) { tried.push(e.name); }
    try { Object.defineProperty(Error, 'prepareStackTrace', { get() { for (;;) {} } }); tried.push('defined'); } catch (e) { tried.push(e.name); }
    try { delete Error.prepareStackTrace; tried.push(typeof Error.prepareStackTrace); } catch (e) { tried.push(e.name); }
    smpp.onPdu('submit_sm', (pdu) => {
      if (pdu.text === 'report') return pdu.reply({ message_id: tried.join(',') + ',' + typeof Error.prepareStackTrace });
      try { Error.prepareStackTrace = () => { for (;;) {} }; } catch (e) { /* locked */ }
      const e = new Error('formatted');
      void e.stack;
      throw e;
    });`,
  nearlimit: `smpp.onPdu('submit_sm', (pdu) => { const t = Date.now(); while (Date.now() - t < 40); return pdu.reply({ message_id: 'slow' }); });`,
  toplevelThrow: `smpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'v1' }));`,
};

describe('hostile tenants: CPU', () => {
  let w: World;
  before(async () => {
    w = await startWorld({
      loop: POLICIES.loop,
      microtasks: POLICIES.microtasks,
      awaitloop: POLICIES.awaitloop,
      forever: POLICIES.forever,
      afterawait: POLICIES.afterawait,
      redos: POLICIES.redos,
      recursion: { policy: POLICIES.recursion, limits: ROOMY },
      budget: POLICIES.budget,
      getters: { policy: POLICIES.getters, limits: ROOMY },
      escapes: { policy: POLICIES.escapes, limits: ROOMY },
      stacktrace: POLICIES.stacktrace,
      toplevel: { policy: POLICIES.toplevelThrow, limits: ROOMY },
      longloop: { policy: POLICIES.loop, limits: { ...HOSTILE_LIMITS, handler_timeout_ms: 1500, handler_deadline_ms: 3000 } },
      nearlimit: { policy: POLICIES.nearlimit, limits: HOSTILE_LIMITS },
    });
  });
  after(() => w.close());

  it('a synchronous infinite loop in a handler: ESME_RSYSERR at handler_timeout_ms', async () => {
    const { answers } = await hostileCase(w, 'loop');
    assert.equal(answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal((await tenantStats(w, 'loop')).timeouts, 1);
  });

  it('a tenant allowed a long handler_timeout_ms spins for all of it: its neighbours are not held up meanwhile', async () => {
    const t0 = Date.now();
    const { answers } = await hostileCase(w, 'longloop', ['go'], { maxLatencyMs: 400, minGood: 30 });
    assert.equal(answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.ok(Date.now() - t0 >= 1500, 'it really ran for its whole timeout');
  });

  it('a stats request (the admin API, metrics) while a tenant spins: answered, and the neighbours are not held up meanwhile', async () => {
    const c = await w.esme('longloop');
    const { value, samples } = await withGoodTraffic(w, async () => {
      const spin = submitText(c, 'go');
      await sleep(200);
      const st = await w.s.sandbox.stats();
      await spin;
      return { st };
    });
    assertGoodFlowed(samples, 30, 400);
    assert.ok(value.st.tenants.some((t) => t.tenant === 'longloop' && t.heapUsed > 0), 'the spinning tenant is in the answer, with its heap');
  });

  it('handlers that each spin just under handler_timeout_ms: answered, the budget throttles them, neighbours keep a low latency', async () => {
    const { answers } = await hostileCase(w, 'nearlimit', ['a', 'b', 'c', 'd', 'e', 'f'], { maxLatencyMs: 400 });
    const statuses = answers.map((a) => a.command_status);
    assert.equal(statuses[0], STATUS.ESME_ROK);
    assert.ok(statuses.includes(STATUS.ESME_RTHROTTLED), `over cpu_ms_per_s: ${statuses.join(',')}`);
    assert.ok(statuses.every((x) => x === STATUS.ESME_ROK || x === STATUS.ESME_RTHROTTLED));
  });

  it('an endless microtask chain, and an endless await loop: ESME_RSYSERR (microtasks run inside the timed entry)', async () => {
    const a = await hostileCase(w, 'microtasks');
    assert.equal(a.answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.ok(a.ms < 1000, `answered by the CPU timeout, not the deadline (${a.ms} ms)`);
    const b = await hostileCase(w, 'awaitloop');
    assert.equal(b.answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal((await tenantStats(w, 'microtasks')).timeouts, 1);
    assert.equal((await tenantStats(w, 'awaitloop')).timeouts, 1);
  });

  it('an infinite loop after an await (in the entry that delivers the host call result): ESME_RSYSERR at handler_timeout_ms', async () => {
    const a = await hostileCase(w, 'afterawait', ['x', 'y']);
    assert.deepEqual(
      a.answers.map((x) => x.command_status),
      [STATUS.ESME_RSYSERR, STATUS.ESME_RSYSERR],
    );
    assert.ok(a.ms < 2000, `answered by the CPU timeout, not the deadline (${a.ms} ms)`);
    assert.equal((await tenantStats(w, 'afterawait')).timeouts, 2);
  });

  it('a promise that never settles: ESME_RSYSERR at handler_deadline_ms, not before', async () => {
    const t0 = Date.now();
    const { answers } = await hostileCase(w, 'forever', ['go'], { afterMs: 50, minGood: 50 });
    const ms = Date.now() - t0;
    assert.equal(answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.ok(ms >= HOSTILE_LIMITS.handler_deadline_ms, `answered after the deadline (${ms} ms)`);
  });

  it('ReDoS: a catastrophic regex on a crafted input is stopped by the CPU timeout', async () => {
    const { answers } = await hostileCase(w, 'redos', ['aaaa', `${'a'.repeat(40)}!`]);
    assert.equal(answers[0]!.command_status, STATUS.ESME_ROK, 'the same regex on a benign input answers');
    assert.equal(answers[0]!.fields.message_id, 'true');
    assert.equal(answers[1]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal((await tenantStats(w, 'redos')).timeouts, 1);
  });

  it('deep recursion: the stack overflow is an error; catching it and recursing on is a timeout', async () => {
    const { answers } = await hostileCase(w, 'recursion', ['plain', 'stubborn']);
    assert.equal(answers[0]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal(answers[1]!.command_status, STATUS.ESME_RSYSERR);
    const st = await tenantStats(w, 'recursion');
    assert.equal(st.errors, 2);
    assert.equal(st.timeouts, 1, 'only the stubborn one ran into the timeout');
  });

  it('CPU budget: a tenant that keeps spinning gets ESME_RTHROTTLED for new PDUs until the budget refills', async () => {
    const texts = ['spin', 'spin', 'spin', 'spin', 'cheap'];
    const { answers, client } = await hostileCase(w, 'budget', texts);
    const statuses = answers.map((a) => a.command_status);
    assert.equal(statuses[0], STATUS.ESME_RSYSERR);
    assert.ok(statuses.includes(STATUS.ESME_RTHROTTLED), `throttled once over cpu_ms_per_s (${statuses.join(',')})`);
    assert.ok(statuses.every((s) => s === STATUS.ESME_RSYSERR || s === STATUS.ESME_RTHROTTLED), 'never a silent ESME_ROK');
    assert.ok((await tenantStats(w, 'budget')).throttled as number >= 1);
    // The budget refills at cpu_ms_per_s per second.
    let r = await submitText(client, 'cheap');
    for (let i = 0; i < 40 && r.command_status !== STATUS.ESME_ROK; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await submitText(client, 'cheap');
    }
    assert.equal(r.command_status, STATUS.ESME_ROK);
    assert.equal(r.fields.message_id, 'cheap');
  });

  it('looping getters, proxies and thenables on a returned value, and on thrown objects: ESME_RSYSERR, each within the CPU timeout', async () => {
    const variants = [
      'reply-getter',
      'returned-proxy',
      'returned-thenable',
      'thenable-getter',
      'reply-proxy-fields',
      'throw-message',
      'throw-code',
      'throw-stack',
      'throw-tostring',
      'throw-proxy',
      'reject-message',
      'async-throw',
      'error-message-proto',
      'error-proto-name',
    ];
    const { answers } = await hostileCase(w, 'getters', variants);
    answers.forEach((a, i) => assert.equal(a.command_status, STATUS.ESME_RSYSERR, variants[i]));
    const st = await tenantStats(w, 'getters');
    assert.ok((st.timeouts as number) >= variants.length - 1, `timeouts: ${String(st.timeouts)}`);
  });

  it('replacing intrinsics the prelude calls (Promise.resolve / reject, String.prototype.slice) with ones that throw looping objects: never called, or ESME_RSYSERR — no hang', async () => {
    // Each variant in a fresh isolate (a reload), since each one breaks its isolate for good.
    const expected: [string, number, string?][] = [
      ['promise-resolve', STATUS.ESME_ROK, 'intact'],
      ['promise-resolve-proxy', STATUS.ESME_ROK, 'intact'],
      ['promise-reject', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['string-slice', STATUS.ESME_RSYSERR],
      ['through-the-api', STATUS.ESME_RSYSERR],
    ];
    for (const [v, status, id] of expected) {
      assert.equal((await w.s.sandbox.reload('escapes', withBind(POLICIES.escapes))).ok, true);
      const { answers } = await hostileCase(w, 'escapes', [v, 'after']);
      assert.equal(answers[0]!.command_status, status, v);
      if (id) assert.equal(answers[0]!.fields.message_id, id, v);
    }
  });

  it('a looping Error.prepareStackTrace cannot be installed; errors still format and answer ESME_RSYSERR', async () => {
    const { answers } = await hostileCase(w, 'stacktrace', ['report', 'go']);
    assert.equal(answers[0]!.command_status, STATUS.ESME_ROK);
    assert.equal(answers[0]!.fields.message_id, 'TypeError,TypeError,TypeError,undefined');
    assert.equal(answers[1]!.command_status, STATUS.ESME_RSYSERR);
    assert.equal((await tenantStats(w, 'stacktrace')).timeouts, 0, 'the error was formatted without running tenant code');
  });

  it('top-level code that throws a looping object, loops, or leaves a looping value on reload: refused or harmless, the old version keeps serving', async () => {
    const c = await w.esme('toplevel');
    const pid = w.pid();
    const spin = 'const spin = () => { for (;;) {} };';
    const refused = [
      "throw new Error('plain');",
      `${spin} throw { get message() { spin(); } };`,
      `${spin} throw new Proxy({}, { get: spin, getPrototypeOf: spin });`,
      `${spin} Object.defineProperty(Error.prototype, 'name', { get: spin }); throw new TypeError('x');`,
      `${spin} Object.defineProperty(Object.prototype, 'message', { get: spin }); throw {};`,
      'for (;;) {}',
    ];
    // A looping completion value is never read: such a version loads (it registers no handler).
    const harmless = [`${spin} ({ get x() { spin(); } });`, `${spin} new Proxy({}, { get: spin, getPrototypeOf: spin, ownKeys: spin });`];
    const { samples } = await withGoodTraffic(w, async () => {
      for (const src of [...refused, ...harmless]) {
        const r = await w.s.sandbox.reload('toplevel', src);
        assert.equal(r.ok, !refused.includes(src), src);
        if (r.ok) assert.equal((await w.s.sandbox.reload('toplevel', withBind(POLICIES.toplevelThrow))).ok, true);
        const a = await submitText(c, 'x');
        assert.equal(a.command_status, STATUS.ESME_ROK, `old version still serving after: ${src}`);
        assert.equal(a.fields.message_id, 'v1');
      }
    });
    assertGoodFlowed(samples);
    await assertAlive(w, [{ tenant: 'toplevel', c }], pid);
  });
});

/**
 * Hostile tenants, memory side: heap bombs, the memory-kill lifecycle
 * (dispose → in-flight ESME_RSYSERR → fresh isolate after a backoff →
 * quarantine), and huge values handed to every part of the API. The good
 * tenant shares the sandbox process throughout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HOSTILE_LIMITS, STATUS, assertAlive, assertGoodFlowed, hostileCase, sleep, startWorld, submitText, tenantStats, withGoodTraffic, type World } from './hostile-helpers';
import '../helpers/ivm-teardown';

// A bomb needs CPU time to fill a heap: with 50 ms it would only ever hit the
// CPU timeout. These tenants get 1 s per call so the memory limit is what stops them.
const BOMB_LIMITS = { ...HOSTILE_LIMITS, handler_timeout_ms: 1000, cpu_ms_per_s: 1000, handler_deadline_ms: 2500 };

const POLICIES = {
  smallbomb: `
    const keep = [];
    smpp.onPdu('submit_sm', (pdu) => {
      if (pdu.text === 'bomb') for (;;) keep.push({ i: keep.length, s: 'x' + keep.length });
      return pdu.reply({ message_id: 'fine' });
    });`,
  trigger: `
    smpp.onPdu('submit_sm', async (pdu) => {
      if (pdu.text === 'bomb') { const k = []; for (;;) k.push([k.length, k.length + 1, k.length + 2]); }
      if (pdu.text === 'wait') await new Promise(() => {});
      return pdu.reply({ message_id: 'fine' });
    });`,
  huge: `
    const big = 'x'.repeat(5e6);
    const code = (p) => p.then(() => 'OK', (e) => e.code || 'NO_CODE');
    smpp.onPdu('submit_sm', async (pdu, session) => {
      const t = pdu.text;
      let r;
      if (t === 'submit-string') r = await code(smpp.submitVia('up', { short_message: big }));
      if (t === 'submit-bytes') r = await code(smpp.submitVia('up', { short_message: new Uint8Array(4e6) }));
      if (t === 'submit-wide') { const o = {}; for (let i = 0; i < 5e4; i++) o['k' + i] = i; r = await code(smpp.submitVia('up', o)); }
      if (t === 'submit-deep') { let o = {}; for (let i = 0; i < 1000; i++) o = { o }; r = await code(smpp.submitVia('up', o)); }
      if (t === 'submit-long-array') r = await code(smpp.submitVia('up', { a: new Array(1e6).fill(0) }));
      if (t === 'bind-name') r = await code(smpp.submitVia(big, {}));
      if (t === 'deliver') r = await code(smpp.deliverTo(session.sessionId, { short_message: big }));
      if (t === 'session-name') r = await code(smpp.deliverTo(big, {}));
      if (t === 'cache-set') r = await code(cache.set('k', big));
      if (t === 'cache-set-object') r = await code(cache.set('k', { a: [big, big] }));
      if (t === 'cache-quota') r = await code(cache.set('q', '€'.repeat(30000)));
      if (t === 'cache-key') r = await code(cache.get(big));
      if (t === 'timer-name') r = await code(smpp.timers.after(10, big));
      if (t === 'log') { log.info(big, { big, nested: { big } }); log.warn({ toString: () => big }); r = 'OK'; }
      if (t === 'reply-huge') return pdu.reply({ message_id: big });
      return pdu.reply({ message_id: r });
    });`,
};

describe('hostile tenants: memory', () => {
  let w: World;
  before(async () => {
    w = await startWorld({
      smallbomb: { policy: POLICIES.smallbomb, limits: BOMB_LIMITS },
      trigger: { policy: POLICIES.trigger, limits: BOMB_LIMITS },
      huge: { policy: POLICIES.huge, limits: { ...HOSTILE_LIMITS, memory_mb: 32, cpu_ms_per_s: 1000, handler_timeout_ms: 500, max_log_per_s: 100 } },
    });
  });
  after(() => w.close());

  it('a memory bomb of many small allocations: the isolate is disposed, the PDU answered ESME_RSYSERR', async () => {
    const { answers } = await hostileCase(w, 'smallbomb', ['fine', 'bomb']);
    assert.equal(answers[0]!.command_status, STATUS.ESME_ROK);
    assert.equal(answers[1]!.command_status, STATUS.ESME_RSYSERR);
    const st = await tenantStats(w, 'smallbomb');
    assert.equal(st.memoryKills, 1);
    assert.equal(st.state, 'backoff');
  });

  it('memory kill lifecycle: in-flight calls ESME_RSYSERR, a fresh isolate after a backoff, quarantine after repeated kills', async () => {
    const c = await w.esme('trigger');
    const c2 = await w.esme('trigger');
    const pid = w.pid();
    // Stats requests throughout (as the admin API makes them): reading an
    // isolate's heap or CPU while isolated-vm disposes it must not throw in
    // the sandbox process.
    let polling = true;
    let polls = 0;
    const poller = (async () => {
      while (polling) {
        await w.s.sandbox.stats();
        polls++;
        await sleep(1);
      }
    })();
    const { samples } = await withGoodTraffic(w, async () => {
      assert.equal((await submitText(c, 'fine')).fields.message_id, 'fine');
      // Kill 1, with another PDU of the same isolate in flight: both answered at the kill.
      const waiting = submitText(c2, 'wait');
      await sleep(50);
      const t0 = Date.now();
      const bomb = await submitText(c, 'bomb');
      const waited = await waiting;
      assert.equal(bomb.command_status, STATUS.ESME_RSYSERR);
      assert.equal(waited.command_status, STATUS.ESME_RSYSERR);
      assert.ok(Date.now() - t0 < BOMB_LIMITS.handler_deadline_ms, 'the in-flight PDU was answered at the kill, not at its deadline');
      let st = await tenantStats(w, 'trigger');
      assert.equal(st.memoryKills, 1);
      assert.equal(st.state, 'backoff');
      assert.equal(st.heapUsed, 0, 'the isolate is gone');
      // During the backoff: answered, ESME_RSYSERR, no isolate started.
      assert.equal((await submitText(c, 'fine')).command_status, STATUS.ESME_RSYSERR);
      // After it: a fresh isolate from the same script serves again.
      const back = async (): Promise<void> => {
        let r = await submitText(c, 'fine');
        for (let i = 0; i < 60 && r.command_status !== STATUS.ESME_ROK; i++) {
          await sleep(50);
          r = await submitText(c, 'fine');
        }
        assert.equal(r.command_status, STATUS.ESME_ROK);
        assert.equal(r.fields.message_id, 'fine');
      };
      await back();
      st = await tenantStats(w, 'trigger');
      assert.equal(st.state, 'ready');
      assert.ok((st.heapUsed as number) > 0, 'a new isolate');
      // Kill 2, then back again after a longer backoff.
      assert.equal((await submitText(c, 'bomb')).command_status, STATUS.ESME_RSYSERR);
      await back();
      // Kill 3: quarantined, and it stays so.
      assert.equal((await submitText(c, 'bomb')).command_status, STATUS.ESME_RSYSERR);
      st = await tenantStats(w, 'trigger');
      assert.equal(st.memoryKills, 3);
      assert.equal(st.state, 'quarantined');
      assert.match(String(st.loadError), /quarantined after 3 kills/);
      await sleep(300);
      assert.equal((await submitText(c, 'fine')).command_status, STATUS.ESME_RSYSERR);
      assert.equal((await tenantStats(w, 'trigger')).state, 'quarantined');
    });
    polling = false;
    await poller;
    assert.ok(polls > 50, `stats polled ${polls} times`);
    assertGoodFlowed(samples, 20);
    await assertAlive(w, [{ tenant: 'trigger', c }, { tenant: 'trigger', c: c2 }], pid);
    const reported = w.logs().filter((l) => l.tenant === 'trigger' && l.msg === 'policy quarantined');
    assert.equal(reported.length, 1, 'the quarantine is reported in the log');
    assert.equal((await tenantStats(w, 'good')).memoryKills, 0);
  });

  it('huge strings, byte arrays, objects and keys handed to submitVia / deliverTo / cache / timers / log / reply: refused inside the isolate, bounded in the log', async () => {
    const expected: [string, number, string?][] = [
      ['submit-string', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['submit-bytes', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['submit-wide', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['submit-deep', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['submit-long-array', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['bind-name', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['deliver', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['session-name', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cache-set', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cache-set-object', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['cache-quota', STATUS.ESME_ROK, 'QUOTA_EXCEEDED'],
      ['cache-key', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['timer-name', STATUS.ESME_ROK, 'INVALID_FIELD'],
      ['log', STATUS.ESME_ROK, 'OK'],
      ['reply-huge', STATUS.ESME_RSYSERR],
    ];
    const { answers } = await hostileCase(
      w,
      'huge',
      expected.map((e) => e[0]),
      { afterMs: 300 },
    );
    answers.forEach((a, i) => {
      const [name, status, id] = expected[i]!;
      assert.equal(a.command_status, status, name);
      if (id) assert.equal(a.fields.message_id, id, name);
    });
    const lines = w.policyLogs('huge');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.ok(l.msg.length <= 2049, `log message cut to 2048 (${l.msg.length})`);
    assert.deepEqual(lines[0]!.fields, { fields_dropped: 'fields are not plain data within the size limit' });
    const bytes = JSON.stringify(w.logs()).length;
    assert.ok(bytes < 200_000, `no huge value reached the core's log (${bytes} bytes of log)`);
    assert.equal((await tenantStats(w, 'huge')).memoryKills, 0);
  });
});

/**
 * The edge against guessing and floods: failed binds slowed and locked out
 * per source, connections closed after a few failures, connection and
 * session caps. Real TCP on loopback; other sources are other 127.0.0.x
 * addresses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accept, reject } from '../../src/dispatch/in-process';
import { SourceLogLimiter } from '../../src/log/source-limit';
import { ManualClock } from '../../src/util/clock';
import { STATUS } from '../../src/wire/status';
import { bindBody, RawPeer, rawPdu, sleep, startGateway, testConfig, until } from '../helpers/harness';

const byPassword = { acme: { bind: (b: { password: string }) => (b.password === 'right' ? accept() : reject('ESME_RINVPASWD', 'bad password')) } };

function gateway(admission: Record<string, number>, record = false) {
  return startGateway({ config: testConfig({ server: { admission: { bind_failure_delay_ms: 20, ...admission } } }), handlers: byPassword, record });
}

/** One bind_transceiver on `p`: its status and how long its answer took. */
async function bind(p: RawPeer, systemId: string, password: string): Promise<{ status: number | undefined; ms: number }> {
  const t0 = Date.now();
  p.write(rawPdu(0x09, 1, bindBody(systemId, password)));
  const r = await p.read(8000);
  return { status: r?.status, ms: Date.now() - t0 };
}

describe('admission: failed binds', () => {
  it('each failure is answered later than the last, and the connection is closed after bind_failures_per_connection', async () => {
    const h = await gateway({ bind_failures_per_connection: 3, bind_failures_per_system_id: 100, bind_failures_per_ip: 100 });
    try {
      const p = await RawPeer.connect(h.port);
      const answers = [await bind(p, 'acme-app', 'x'), await bind(p, 'acme-app', 'y'), await bind(p, 'acme-app', 'z')];
      assert.deepEqual(answers.map((a) => a.status), [STATUS.ESME_RINVPASWD, STATUS.ESME_RINVPASWD, STATUS.ESME_RINVPASWD]);
      assert.ok(answers[0]!.ms >= 15 && answers[2]!.ms >= 70, `delays ${answers.map((a) => a.ms).join(', ')} ms`);
      assert.equal(await p.waitClosed(2000), true, 'closed after the third failure');
      // An unknown system_id counts too.
      const q = await RawPeer.connect(h.port);
      assert.equal((await bind(q, 'nobody', 'x')).status, STATUS.ESME_RINVSYSID);
      q.socket.destroy();
      assert.equal(h.gateway.admission.counts.bindFailures, 4);
    } finally {
      await h.close();
    }
  });

  it("a source that guessed one system_id's password too often is locked out (ESME_RBINDFAIL, policy not asked); the right password from another source still binds", async () => {
    const h = await gateway({ bind_failures_per_system_id: 4, bind_failures_per_connection: 100, bind_lockout_ms: 60_000 });
    try {
      const attacker = await RawPeer.connect(h.port, '127.0.0.2');
      for (let i = 0; i < 4; i++) assert.equal((await bind(attacker, 'acme-app', `guess${i}`)).status, STATUS.ESME_RINVPASWD);
      assert.equal((await bind(attacker, 'acme-app', 'right')).status, STATUS.ESME_RBINDFAIL, 'locked out, even with the right password');
      assert.equal(h.gateway.admission.counts.lockouts, 1);
      const customer = await RawPeer.connect(h.port, '127.0.0.3');
      const ok = await bind(customer, 'acme-app', 'right');
      assert.equal(ok.status, 0);
      assert.ok(ok.ms < 1000, `the customer bound in ${ok.ms} ms`);
      attacker.socket.destroy();
      customer.socket.destroy();
    } finally {
      await h.close();
    }
  });

  it('a source with bind_failures_per_ip failures over any system_ids is locked out as a whole', async () => {
    const h = await gateway({ bind_failures_per_ip: 3, bind_failures_per_system_id: 100, bind_failures_per_connection: 100 });
    try {
      const p = await RawPeer.connect(h.port, '127.0.0.4');
      for (const id of ['a1', 'a2', 'a3']) assert.equal((await bind(p, id, 'x')).status, STATUS.ESME_RINVSYSID);
      assert.equal((await bind(p, 'acme-app', 'right')).status, STATUS.ESME_RBINDFAIL);
      p.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('admission: caps', () => {
  it('connections over max_connections_per_ip and max_connections are closed at once, and counted', async () => {
    const h = await gateway({ max_connections_per_ip: 2, max_connections: 3 });
    try {
      const a = [await RawPeer.connect(h.port, '127.0.0.5'), await RawPeer.connect(h.port, '127.0.0.5')];
      const third = await RawPeer.connect(h.port, '127.0.0.5');
      assert.equal(await third.waitClosed(2000), true, 'over the per-source cap');
      const other = await RawPeer.connect(h.port, '127.0.0.6');
      assert.equal((await bind(other, 'acme-app', 'right')).status, 0, 'another source still gets in');
      const over = await RawPeer.connect(h.port, '127.0.0.7');
      assert.equal(await over.waitClosed(2000), true, 'over the total cap');
      assert.deepEqual([h.gateway.admission.counts.refusedPerIp, h.gateway.admission.counts.refusedTotal], [1, 1]);
      for (const p of [...a, other]) p.socket.destroy();
      await sleep(100);
      const again = await RawPeer.connect(h.port, '127.0.0.5');
      assert.equal((await bind(again, 'acme-app', 'right')).status, 0, 'room again once connections closed');
      again.socket.destroy();
    } finally {
      await h.close();
    }
  });

  it('binds over max_sessions_per_system_id are answered ESME_RBINDFAIL', async () => {
    const h = await gateway({ max_sessions_per_system_id: 2 });
    try {
      const ps = [await RawPeer.connect(h.port), await RawPeer.connect(h.port), await RawPeer.connect(h.port)];
      assert.equal((await bind(ps[0]!, 'acme-app', 'right')).status, 0);
      assert.equal((await bind(ps[1]!, 'acme-app', 'right')).status, 0);
      assert.equal((await bind(ps[2]!, 'acme-app', 'right')).status, STATUS.ESME_RBINDFAIL);
      for (const p of ps) p.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('admission: sessions per tenant', () => {
  it("binds over a tenant's limits.max_sessions, over all its system_ids, are answered ESME_RBINDFAIL; another tenant is not counted; a session that ends frees its place", async () => {
    const h = await startGateway({
      config: testConfig({ tenants: [{ id: 'acme', system_ids: ['acme-app', 'acme-2'], limits: { max_sessions: 2 } }, { id: 'globex', system_ids: ['globex-app'] }] }),
      handlers: { ...byPassword, globex: byPassword.acme },
    });
    try {
      const ps = await Promise.all(Array.from({ length: 5 }, () => RawPeer.connect(h.port)));
      assert.equal((await bind(ps[0]!, 'acme-app', 'right')).status, 0);
      assert.equal((await bind(ps[1]!, 'acme-2', 'right')).status, 0);
      assert.equal((await bind(ps[2]!, 'acme-app', 'right')).status, STATUS.ESME_RBINDFAIL);
      assert.equal((await bind(ps[3]!, 'globex-app', 'right')).status, 0, 'another tenant has its own');
      ps[0]!.socket.destroy();
      await until(() => h.gateway.sessions('acme').length === 1, 2000, 'the ended session gone');
      assert.equal((await bind(ps[4]!, 'acme-2', 'right')).status, 0);
      for (const p of ps) p.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('admission: log lines a source can cause', () => {
  it('malformed PDUs from one source: every one is answered, at most log_lines_per_minute are logged, the last says so, the rest are counted; another source has its own budget (regression: a warn line each, 46 MB in 10 s)', async () => {
    const h = await gateway({ log_lines_per_minute: 10 }, true);
    try {
      const flood = await RawPeer.connect(h.port, '127.0.0.8');
      for (let i = 1; i <= 300; i++) flood.write(rawPdu(0x00000222, i));
      for (let i = 1; i <= 300; i++) {
        const r = await flood.read();
        assert.deepEqual([r?.id, r?.status, r?.seq], [0x80000000, STATUS.ESME_RINVCMDID, i]);
      }
      const other = await RawPeer.connect(h.port, '127.0.0.9');
      other.write(rawPdu(0x00000222, 1));
      assert.equal((await other.read())?.status, STATUS.ESME_RINVCMDID);
      await sleep(50);
      const nacks = h.logs().filter((l) => String(l.msg).startsWith('generic_nack'));
      assert.equal(nacks.length, 11, 'ten from the flooding source, one from the other');
      assert.match(String(nacks[9]!.msg), /further lines from this source are left out/);
      assert.equal(h.gateway.admission.logs.suppressed, 290);
      flood.destroy();
      other.destroy();
    } finally {
      await h.close();
    }
  });

  it('failed binds and connections that never bound, from one source, are limited the same way', async () => {
    const h = await gateway({ log_lines_per_minute: 5, bind_failure_delay_ms: 0, bind_failures_per_ip: 1000, bind_failures_per_system_id: 1000 }, true);
    try {
      for (let i = 0; i < 10; i++) {
        const p = await RawPeer.connect(h.port, '127.0.0.10');
        assert.equal((await bind(p, 'x'.repeat(16_000), 'pw')).status, STATUS.ESME_RINVSYSID);
        p.destroy();
        await p.waitClosed();
      }
      await sleep(50);
      const lines = h.logs().filter((l) => String(l.client ?? '').startsWith('127.0.0.10') || String(l.msg).startsWith('esme session closed'));
      assert.equal(lines.length, 5, lines.map((l) => l.msg).join(' | '));
      assert.equal(h.gateway.admission.logs.suppressed, 15, 'ten refused binds and ten closes: five written');
    } finally {
      await h.close();
    }
  });

  it('the first line of the next minute carries how many were left out; sources past the tracked maximum share one budget', () => {
    const clock = new ManualClock();
    const l = new SourceLogLimiter(clock, 3);
    assert.deepEqual([l.take('a'), l.take('a'), l.take('a'), l.take('a'), l.take('a')].map((t) => [t.write, t.last]), [[true, false], [true, false], [true, true], [false, false], [false, false]]);
    assert.deepEqual(l.take('b'), { write: true, last: false, leftOut: 0 });
    clock.advance(60_000);
    assert.deepEqual(l.take('a'), { write: true, last: false, leftOut: 2 });
    assert.equal(l.suppressed, 2);
    l.take('b');
    for (let i = 0; i < 9_998; i++) l.take(`s${i}`);
    // a, b and 9,998 others are tracked; any more share one budget of 3 lines.
    const late = Array.from({ length: 10 }, (_, i) => l.take(`late-${i}`).write);
    assert.deepEqual(late, [true, true, true, false, false, false, false, false, false, false]);
    clock.advance(60_000);
    assert.equal(l.take('late-3').write, true, 'a minute later the stale sources are swept');
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reject } from '../../src/dispatch/in-process';
import { EsmeClient } from '../../src/tools/esme-client';
import { STATUS } from '../../src/wire/status';
import { acceptAll, bindBody, cstr, RawPeer, rawPdu, sleep, startGateway, testConfig, type Harness } from '../helpers/harness';

describe('inbound listener: binds', () => {
  let h: Harness;
  const events: string[] = [];
  before(async () => {
    h = await startGateway({
      handlers: {
        acme: acceptAll({
          bind: (req) => (req.password === 'pw' ? { accept: true } : reject('ESME_RINVPASWD', 'bad password')),
          session: (ev, s) => events.push(`${ev}:${s.systemId}`),
        }),
        // globex registers no bind handler: closed by default.
      },
    });
  });
  after(() => h.close());

  it('accepts bind_transceiver when the policy accepts, with our system_id in the response', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    const r = await c.bind('acme-app', 'pw');
    assert.equal(r.command_status, 0);
    assert.equal(r.command, 'bind_transceiver_resp');
    assert.equal(r.fields.system_id, 'sluice');
    assert.equal(h.gateway.sessions('acme').length, 1);
    await c.unbind();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.gateway.sessions('acme').length, 0);
    assert.deepEqual(events.splice(0), ['bound:acme-app', 'unbound:acme-app']);
  });

  it('passes the policy reject status through', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    const r = await c.bind('acme-app', 'nope');
    assert.equal(r.command_status, STATUS.ESME_RINVPASWD);
    c.close();
  });

  it('rejects bind_transmitter and bind_receiver with ESME_RINVSYSID (transceiver only)', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    assert.equal((await c.bind('acme-app', 'pw', 'bind_transmitter')).command_status, STATUS.ESME_RINVSYSID);
    assert.equal((await c.bind('acme-app', 'pw', 'bind_receiver')).command_status, STATUS.ESME_RINVSYSID);
    c.close();
  });

  it('rejects a system_id no tenant owns with ESME_RINVSYSID, running no script', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    assert.equal((await c.bind('stranger', 'pw')).command_status, STATUS.ESME_RINVSYSID);
    c.close();
  });

  it('rejects every bind of a tenant with no bind handler', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    assert.equal((await c.bind('globex-app', 'pw')).command_status, STATUS.ESME_RINVSYSID);
    c.close();
  });

  it('answers PDUs before a successful bind with ESME_RINVBNDSTS', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    const r = await c.submit({ destination_addr: '31600000000', short_message: Buffer.from('hi') });
    assert.equal(r.command, 'submit_sm_resp');
    assert.equal(r.command_status, STATUS.ESME_RINVBNDSTS);
    c.close();
  });

  it('answers a second bind on a bound session with ESME_RALYBND', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    assert.equal((await c.bind('acme-app', 'pw')).command_status, 0);
    assert.equal((await c.bind('acme-app', 'pw')).command_status, STATUS.ESME_RALYBND);
    c.close();
  });

  it('acks enquire_link before and after bind, and accepts unbind', async () => {
    const p = await RawPeer.connect(h.port);
    p.write(rawPdu(0x15, 7));
    const r1 = await p.read();
    assert.deepEqual([r1?.id, r1?.status, r1?.seq], [0x80000015, 0, 7]);
    p.write(rawPdu(0x09, 8, bindBody('acme-app')));
    const r2 = await p.read();
    assert.deepEqual([r2?.id, r2?.status], [0x80000009, 0]);
    p.write(rawPdu(0x15, 9));
    assert.equal((await p.read())?.id, 0x80000015);
    p.write(rawPdu(0x06, 10));
    const r3 = await p.read();
    assert.deepEqual([r3?.id, r3?.status, r3?.seq], [0x80000006, 0, 10]);
    assert.equal(await p.waitClosed(), true);
  });

  it('answers deliver_sm sent by an ESME with generic_nack ESME_RINVCMDID and keeps the session', async () => {
    const c = await EsmeClient.connect({ port: h.port });
    await c.bind('acme-app', 'pw');
    const r = await c.request('deliver_sm', { short_message: Buffer.from('x') });
    assert.equal(r.command, 'generic_nack');
    assert.equal(r.command_status, STATUS.ESME_RINVCMDID);
    assert.equal((await c.request('enquire_link')).command_status, 0);
    c.close();
  });
});

describe('inbound listener: fields the core refuses before any policy', () => {
  /** A submit_sm body written by hand, so that fields npm smpp would not encode can be sent. */
  function submitBody(o: { src?: string; dst?: string; sched?: string; vp?: string; esm?: number; sm?: Buffer } = {}): Buffer {
    const sm = o.sm ?? Buffer.from('hi');
    return Buffer.concat([
      cstr(''), Buffer.from([0, 0]), cstr(o.src ?? '4412345'), Buffer.from([0, 0]), cstr(o.dst ?? '31612345678'),
      Buffer.from([o.esm ?? 0, 0, 0]), cstr(o.sched ?? ''), cstr(o.vp ?? ''), Buffer.from([1, 0, 0, 0, Math.min(sm.length, 255)]), sm,
    ]);
  }

  it('answers each with the status that fits, and the session lives on (regression: all were ESME_ROK)', async () => {
    const h = await startGateway();
    try {
      const p = await RawPeer.connect(h.port);
      p.write(rawPdu(0x09, 1, bindBody('acme-app')));
      assert.equal((await p.read())?.status, 0);
      const cases: [string, Buffer, number][] = [
        ['a 100-character source_addr', submitBody({ src: '4'.repeat(100) }), STATUS.ESME_RINVSRCADR!],
        ['a 30-character destination_addr', submitBody({ dst: '3'.repeat(30) }), STATUS.ESME_RINVDSTADR!],
        ['a malformed schedule_delivery_time', submitBody({ sched: 'tomorrow' }), STATUS.ESME_RINVSCHED!],
        ['a malformed validity_period', submitBody({ vp: '2612031200000' }), STATUS.ESME_RINVEXPIRY!],
        ['sm_length 255', submitBody({ sm: Buffer.alloc(255, 0x41) }), STATUS.ESME_RINVMSGLEN!],
        ['a UDHL beyond the message', submitBody({ esm: 0x40, sm: Buffer.from([0x20, 0x00, 0x03]) }), STATUS.ESME_RINVMSGLEN!],
        ['a sound one', submitBody({ vp: '000001000000000R', sched: '261203120000000+' }), 0],
      ];
      let seq = 2;
      for (const [what, body, status] of cases) {
        p.write(rawPdu(0x04, seq++, body));
        assert.equal((await p.read())?.status, status, what);
      }
      p.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('inbound listener: what a peer can put in the log', () => {
  it('an unknown system_id of 16 KB is logged cut to 32 characters, with the client address (regression: logged whole, 162 MB in 10 s)', async () => {
    const h = await startGateway({ record: true });
    try {
      const p = await RawPeer.connect(h.port);
      p.write(rawPdu(0x09, 1, bindBody('x'.repeat(16_000))));
      const r = await p.read();
      assert.equal(r?.status, STATUS.ESME_RINVSYSID);
      const line = h.logs().find((l) => l.msg === 'bind refused: system_id belongs to no tenant')!;
      assert.ok(String(line.system_id).length < 60, `logged ${String(line.system_id).length} characters`);
      assert.match(String(line.system_id), /\(16000 chars\)$/);
      assert.match(String(line.client), /127\.0\.0\.1/);
      p.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('inbound listener: frames', () => {
  it('a bound session that sends part of a PDU and stops is closed after frame_timeout_ms, not the inactivity timer; one whose PDUs arrive in pieces is not', async () => {
    const h = await startGateway({ config: testConfig({ server: { frame_timeout_ms: 300 } }) });
    try {
      const half = await RawPeer.connect(h.port);
      const slow = await RawPeer.connect(h.port);
      for (const p of [half, slow]) {
        p.write(rawPdu(0x09, 1, bindBody('acme-app')));
        assert.equal((await p.read())?.status, 0);
      }
      const enquire = rawPdu(0x15, 2);
      half.write(enquire.subarray(0, 10));
      // The slow one finishes each PDU within the timeout, a piece at a time.
      for (let i = 0; i < 4; i++) {
        slow.write(enquire.subarray(0, 8));
        await sleep(150);
        slow.write(enquire.subarray(8));
        assert.equal((await slow.read())?.id, 0x80000015);
      }
      assert.equal(await half.waitClosed(2000), true, 'the half frame closed its session');
      assert.equal(slow.closed, false);
      slow.socket.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('inbound listener: config', () => {
  it('closes an unbound connection after session_init_timer_ms', async () => {
    const h = await startGateway({ config: testConfig({ server: { session_init_timer_ms: 100 } }) });
    const p = await RawPeer.connect(h.port);
    assert.equal(await p.waitClosed(2000), true);
    await h.close();
  });
});

describe('inbound listener: TLS', () => {
  it('serves SMPP over TLS on server.tls with the configured certificate', async () => {
    const fixtures = path.resolve(__dirname, '../../../test/fixtures/tls');
    const config = testConfig({ server: { tls: { port: 0, cert_path: `${fixtures}/server.crt`, key_path: `${fixtures}/server.key` } } });
    const h = await startGateway({ config });
    assert.ok(h.tlsPort);
    const c = await EsmeClient.connect({ port: h.tlsPort!, tls: { ca: readFileSync(`${fixtures}/server.crt`), servername: 'localhost' } });
    assert.equal((await c.bind('acme-app', 'pw')).command_status, 0);
    assert.equal((await c.submit({ short_message: Buffer.from('over tls') })).command_status, 0);
    c.close();
    await h.close();
  });
});

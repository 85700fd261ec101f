import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import type { InboundRequest, SmppSession } from '../../src/sessions/smpp-session';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator } from '../../src/tools/sim';
import { acceptAll, sleep, startGateway, type Harness } from '../helpers/harness';

describe('send helpers and tenant isolation', () => {
  let sim: SmscSimulator;
  let h: Harness;
  before(async () => {
    sim = new SmscSimulator({ dlrDelayMs: -1 });
    const port = await sim.listen();
    const config = parseConfig(
      stringify({
        server: { bind_address: '127.0.0.1', port: 0, response_timer_ms: 300 },
        tenants: [
          { id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme' }, { name: 'dead', host: '127.0.0.1', port: 1, system_id: 'x' }] },
          { id: 'globex', system_ids: ['globex-app'], binds: [{ name: 'gx', host: '127.0.0.1', port, system_id: 'globex' }] },
        ],
      }),
      { file: 't.yaml', env: {} },
    );
    h = await startGateway({ config, handlers: { acme: acceptAll(), globex: acceptAll() } });
    const end = Date.now() + 3000;
    while (h.gateway.binds('acme')[0]!.state !== 'bound' || h.gateway.binds('globex')[0]!.state !== 'bound') {
      if (Date.now() > end) throw new Error('binds did not come up');
      await sleep(10);
    }
  });
  after(async () => {
    await h.close();
    await sim.close();
  });

  it('submitVia reaches the upstream and resolves { ok, command_status, message_id }', async () => {
    const r = await h.gateway.sendVia('acme', 'up', 'submit_sm', { source_addr: '1000', destination_addr: '31600000000', short_message: 'hello' });
    assert.equal(r.ok, true);
    assert.equal(r.command_status, 'ESME_ROK');
    assert.match(r.message_id!, /^[0-9A-F]+$/);
  });

  it('an upstream failure resolves ok:false with the status name', async () => {
    const failing = new SmscSimulator({ errorRate: 1 });
    const port = await failing.listen();
    const cfg = parseConfig(stringify({ server: { port: 0, bind_address: '127.0.0.1' }, tenants: [{ id: 'acme', binds: [{ name: 'f', host: '127.0.0.1', port, system_id: 'a' }] }] }), { file: 't', env: {} });
    const g = await startGateway({ config: cfg, handlers: {} });
    while (g.gateway.binds('acme')[0]!.state !== 'bound') await sleep(10);
    const r = await g.gateway.sendVia('acme', 'f', 'submit_sm', { short_message: 'x' });
    assert.deepEqual([r.ok, r.command_status], [false, 'ESME_RSUBMITFAIL']);
    await g.close();
    await failing.close();
  });

  it("another tenant's bind fails exactly like a bind that does not exist: UNKNOWN_BIND", async () => {
    const a = await h.gateway.sendVia('acme', 'gx', 'submit_sm', { short_message: 'x' }).catch((e: Error & { code: string }) => e);
    const b = await h.gateway.sendVia('acme', 'nope', 'submit_sm', { short_message: 'x' }).catch((e: Error & { code: string }) => e);
    assert.equal((a as { code: string }).code, 'UNKNOWN_BIND');
    assert.equal((b as { code: string }).code, 'UNKNOWN_BIND');
    assert.equal((a as Error).message.replace('gx', 'X'), (b as Error).message.replace('nope', 'X'), 'no hint that it exists');
  });

  it('a bind that is not up fails with BIND_DOWN', async () => {
    await assert.rejects(h.gateway.sendVia('acme', 'dead', 'submit_sm', { short_message: 'x' }), { code: 'BIND_DOWN' });
  });

  it('invalid fields fail with INVALID_FIELD before anything is sent', async () => {
    const before = sim.stats.submits;
    await assert.rejects(h.gateway.sendVia('acme', 'up', 'submit_sm', { short_message: 'x'.repeat(300) }), { code: 'INVALID_FIELD' });
    await assert.rejects(h.gateway.sendVia('acme', 'up', 'submit_sm', { bogus_field: 1 }), { code: 'INVALID_FIELD' });
    await assert.rejects(h.gateway.sendVia('acme', 'up', 'submit_sm', { source_addr_ton: 999 }), { code: 'INVALID_FIELD' });
    await assert.rejects(h.gateway.sendVia('acme', 'up', 'deliver_sm', {}), { code: 'INVALID_FIELD' });
    assert.equal(sim.stats.submits, before);
  });

  it('an upstream that does not answer: TIMEOUT', async () => {
    const slow = new SmscSimulator({ latencyMs: 2000 });
    const port = await slow.listen();
    const cfg = parseConfig(stringify({ server: { port: 0, bind_address: '127.0.0.1', response_timer_ms: 100 }, tenants: [{ id: 'acme', binds: [{ name: 's', host: '127.0.0.1', port, system_id: 'a' }] }] }), { file: 't', env: {} });
    const g = await startGateway({ config: cfg, handlers: {} });
    while (g.gateway.binds('acme')[0]!.state !== 'bound') await sleep(10);
    await assert.rejects(g.gateway.sendVia('acme', 's', 'submit_sm', { short_message: 'x' }), { code: 'TIMEOUT' });
    await g.close();
    await slow.close();
  });

  it("deliverTo reaches the tenant's own ESME; another tenant's session is UNKNOWN_SESSION", async () => {
    const got: InboundRequest[] = [];
    const c = await EsmeClient.connect({
      port: h.port,
      onRequest: (pdu: InboundRequest, s: SmppSession) => {
        got.push(pdu);
        s.respond(pdu, 0, { message_id: '' });
      },
    });
    await c.bind('acme-app', 'pw');
    const sid = h.gateway.sessions('acme')[0]!.sessionId;
    const r = await h.gateway.sendTo('acme', sid, 'deliver_sm', { source_addr: '3160', destination_addr: '1000', short_message: 'Grüße {€}' });
    assert.equal(r.ok, true);
    assert.equal(got[0]!.fields.data_coding, 0, 'GSM 03.38 text goes as data_coding 0, not 1');
    assert.deepEqual([...(got[0]!.fields.short_message as Buffer)].slice(-6), [0x1b, 0x28, 0x1b, 0x65, 0x1b, 0x29]);
    await assert.rejects(h.gateway.sendTo('globex', sid, 'deliver_sm', { short_message: 'x' }), { code: 'UNKNOWN_SESSION' });
    await assert.rejects(h.gateway.sendTo('acme', 'nope', 'deliver_sm', { short_message: 'x' }), { code: 'UNKNOWN_SESSION' });
    // UCS-2 for text GSM cannot carry, surrogate pairs intact
    await h.gateway.sendTo('acme', sid, 'data_sm', { source_addr: '1', destination_addr: '2', message_payload: 'hi 😀' });
    assert.equal(got[1]!.fields.data_coding, 8);
    assert.equal(Buffer.from(got[1]!.fields.message_payload as Buffer).swap16().toString('utf16le'), 'hi 😀');
    // alert_notification has no response
    assert.deepEqual(await h.gateway.sendTo('acme', sid, 'alert_notification', { source_addr: '1', esme_addr: '2' }), { ok: true, command_status: 'ESME_ROK' });
    await sleep(30);
    assert.equal(got[2]!.command, 'alert_notification');
    c.close();
    await sleep(30);
    // Gone a moment ago: held for the next session of acme-app (test/gateway/holds.test.ts); another tenant still cannot name it.
    assert.deepEqual(await h.gateway.sendTo('acme', sid, 'deliver_sm', { short_message: 'x' }), { ok: true, command_status: 'ESME_ROK', held: true });
    await assert.rejects(h.gateway.sendTo('globex', sid, 'deliver_sm', { short_message: 'x' }), { code: 'UNKNOWN_SESSION' });
  });

  it('forwarding a received PDU keeps unknown TLVs and bytes exact', async () => {
    const seen: InboundRequest[] = [];
    const orig = (sim as unknown as { onSubmit: (s: SmppSession, p: InboundRequest) => void }).onSubmit.bind(sim);
    (sim as unknown as { onSubmit: typeof orig }).onSubmit = (s, p) => {
      seen.push(p);
      orig(s, p);
    };
    const udhBody = Buffer.from([0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    await h.gateway.sendVia('acme', 'up', 'submit_sm', {
      esm_class: 0x40,
      data_coding: 4,
      short_message: new Uint8Array(udhBody),
      validity_period: '000001000000000R',
      unknown_tlvs: [{ tag: 0x1401, value: new Uint8Array([1, 2, 3]) }],
    });
    const p = seen[0]!;
    assert.deepEqual(Buffer.from(p.fields.short_message as Buffer), udhBody);
    assert.equal(p.fields.validity_period, '000001000000000R');
    assert.equal(p.fields.data_coding, 4);
    assert.deepEqual(p.unknownTlvs, [{ tag: 0x1401, value: new Uint8Array([1, 2, 3]) }]);
  });
});

describe('every send helper reaches the upstream', () => {
  it('submit_sm_multi, data_sm, cancel_sm, query_sm, replace_sm go out on the bind and resolve with the SMSC status', async () => {
    const sim = new SmscSimulator();
    const port = await sim.listen();
    const seen: string[] = [];
    const orig = (sim as unknown as { onRequest: (s: SmppSession, p: InboundRequest) => void }).onRequest.bind(sim);
    (sim as unknown as { onRequest: typeof orig }).onRequest = (s, p) => {
      seen.push(p.command);
      orig(s, p);
    };
    const config = parseConfig(stringify({ server: { bind_address: '127.0.0.1', port: 0 }, tenants: [{ id: 'acme', binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'a' }] }] }), { file: 't', env: {} });
    const h = await startGateway({ config, handlers: {} });
    while (h.gateway.binds('acme')[0]!.state !== 'bound') await sleep(10);
    const g = h.gateway;
    assert.equal((await g.sendVia('acme', 'up', 'data_sm', { source_addr: '1', destination_addr: '2', message_payload: 'hi' })).ok, true);
    const multi = await g.sendVia('acme', 'up', 'submit_sm_multi', { destinations: [{ destination_addr: '31600000001' }, { dl_name: 'friends' }], short_message: 'x' });
    const cancel = await g.sendVia('acme', 'up', 'cancel_sm', { message_id: 'abc', source_addr: '1', destination_addr: '2' });
    const query = await g.sendVia('acme', 'up', 'query_sm', { message_id: 'abc', source_addr: '1' });
    const replace = await g.sendVia('acme', 'up', 'replace_sm', { message_id: 'abc', source_addr: '1', short_message: 'y' });
    // Refusals come back as the simulator's status, not as errors: it has no submit_sm_multi, and no message "abc".
    assert.deepEqual(
      [multi, cancel, query, replace].map((r) => [r.ok, r.command_status]),
      [[false, 'ESME_RINVCMDID'], [false, 'ESME_RCANCELFAIL'], [false, 'ESME_RQUERYFAIL'], [false, 'ESME_RREPLACEFAIL']],
    );
    assert.deepEqual(seen.slice(-5), ['data_sm', 'submit_sm_multi', 'cancel_sm', 'query_sm', 'replace_sm']);
    await h.close();
    await sim.close();
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { InProcessPolicyHost, reply } from '../../src/dispatch/in-process';
import type { PolicyPdu } from '../../src/pdu/model';
import type { InboundRequest, SmppSession } from '../../src/sessions/smpp-session';
import { SmscSimulator } from '../../src/tools/sim';
import { STATUS } from '../../src/wire/status';
import { acceptAll, startGateway, until, type Harness } from '../helpers/harness';

// docs/design.md, "Operations and their defaults", row by row over real TCP, with no PDU handler registered.
describe('operation coverage: inbound defaults', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway();
  });
  after(() => h.close());

  const sm = { source_addr: '1000', destination_addr: '31600000001', short_message: Buffer.from('hello') };
  const rows: [string, Record<string, unknown>, number, boolean][] = [
    ['submit_sm', sm, 0, true],
    ['submit_sm_multi', { source_addr: '1000', dest_address: [{ dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '31600000001' }], short_message: Buffer.from('x') }, STATUS.ESME_RSYSERR!, false],
    ['data_sm', { source_addr: '1000', destination_addr: '31600000001' }, STATUS.ESME_RSYSERR!, false],
    ['cancel_sm', { message_id: 'abc', source_addr: '1000', destination_addr: '31600000001' }, STATUS.ESME_RCANCELFAIL!, false],
    ['query_sm', { message_id: 'abc', source_addr: '1000' }, STATUS.ESME_RQUERYFAIL!, false],
    ['replace_sm', { message_id: 'abc', source_addr: '1000', short_message: Buffer.from('y') }, STATUS.ESME_RREPLACEFAIL!, false],
    ['enquire_link', {}, 0, false],
  ];
  for (const [command, fields, status, hasId] of rows) {
    it(`${command} → ${status === 0 ? 'ESME_ROK' : `0x${status.toString(16)}`}`, async () => {
      const c = await h.esme();
      const r = await c.request(command, fields);
      assert.equal(r.command, `${command}_resp`);
      assert.equal(r.command_status, status);
      if (hasId) assert.match(String(r.fields.message_id), /^[0-9a-z]{16,}$/);
      c.close();
    });
  }

  it('submit_sm default message ids are unique', async () => {
    const c = await h.esme();
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add(String((await c.submit(sm)).fields.message_id));
    assert.equal(ids.size, 200);
    c.close();
  });

  it('unbind → accepted, session closed', async () => {
    const c = await h.esme();
    const before = h.gateway.sessions('acme').length;
    const r = await c.request('unbind');
    assert.equal(r.command, 'unbind_resp');
    assert.equal(r.command_status, 0);
    // The connection ends, and the gateway no longer counts the session as the tenant's.
    await until(() => c.session.closed, 5000, 'the connection closed');
    await until(() => h.gateway.sessions('acme').length === before - 1, 5000, 'the session gone from the tenant');
  });
});

describe('operation coverage: handlers and failures', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway({
      handlers: {
        acme: acceptAll({
          pdu: {
            submit_sm: (pdu: PolicyPdu) => {
              if (pdu.text === 'throw') throw new Error('boom');
              if (pdu.text === 'garbage') return reply({ message_id: 42 as unknown as string });
              if (pdu.text === 'hang') return new Promise(() => {});
              if (pdu.text === 'reject') return reply({ command_status: 'ESME_RINVDSTADR' });
              return reply({ message_id: `echo-${pdu.text}` });
            },
            query_sm: () => reply({ message_id: 'q1', message_state: 2, final_date: '', error_code: 0 }),
          },
        }),
      },
      config: parseConfig(stringify({ server: { bind_address: '127.0.0.1', port: 0 }, tenants: [{ id: 'acme', system_ids: ['acme-app'], limits: { handler_deadline_ms: 200 } }] }), { file: 't.yaml', env: {} }),
    });
  });
  after(() => h.close());

  it('a handler reply reaches the ESME', async () => {
    const c = await h.esme();
    const r = await c.submit({ short_message: Buffer.from('abc') });
    assert.equal(r.fields.message_id, 'echo-abc');
    const q = await c.request('query_sm', { message_id: 'q1', source_addr: '1' });
    assert.deepEqual([q.command_status, q.fields.message_state], [0, 2]);
    assert.equal((await c.submit({ short_message: Buffer.from('reject') })).command_status, STATUS.ESME_RINVDSTADR);
    c.close();
  });

  for (const bad of ['throw', 'garbage', 'hang']) {
    it(`a handler that ${bad === 'hang' ? 'never settles (deadline)' : bad === 'throw' ? 'throws' : 'returns garbage'} → ESME_RSYSERR, counted`, async () => {
      const c = await h.esme();
      const before = { ...h.gateway.counters('acme') };
      const r = await c.submit({ short_message: Buffer.from(bad) });
      assert.equal(r.command_status, STATUS.ESME_RSYSERR);
      const after = h.gateway.counters('acme');
      assert.equal(after.errors + after.deadlines, before.errors + before.deadlines + 1);
      assert.equal((await c.submit({ short_message: Buffer.from('ok') })).command_status, 0, 'session lives on');
      c.close();
    });
  }
});

describe('operation coverage: outbound defaults (PDUs arriving on our binds)', () => {
  let sim: SmscSimulator;
  let h: Harness;
  let upstream: SmppSession | undefined;
  before(async () => {
    sim = new SmscSimulator();
    const port = await sim.listen();
    const cfg = parseConfig(
      stringify({
        server: { bind_address: '127.0.0.1', port: 0 },
        tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme' }] }],
      }),
      { file: 't.yaml', env: {} },
    );
    h = await startGateway({ config: cfg, policy: new InProcessPolicyHost({ acme: acceptAll() }) });
    for (let i = 0; i < 200 && h.gateway.binds('acme')[0]!.state !== 'bound'; i++) await new Promise((r) => setTimeout(r, 10));
    upstream = (sim as unknown as { sessions: Set<SmppSession> }).sessions.values().next().value;
  });
  after(async () => {
    await h.close();
    await sim.close();
  });

  it('deliver_sm (a DLR) → ESME_ROK', async () => {
    const r = await upstream!.request('deliver_sm', { esm_class: 0x04, short_message: Buffer.from('id:1 stat:DELIVRD err:000') });
    assert.deepEqual([r.command, r.command_status], ['deliver_sm_resp', 0]);
  });

  it('data_sm → ESME_RSYSERR', async () => {
    const r = await upstream!.request('data_sm', { source_addr: '1', destination_addr: '2' });
    assert.deepEqual([r.command, r.command_status], ['data_sm_resp', STATUS.ESME_RSYSERR]);
  });

  it('alert_notification → no-op (no response), bind stays up', async () => {
    upstream!.notify('alert_notification', { source_addr: '1', esme_addr: '2' });
    const r = await upstream!.request('enquire_link');
    assert.equal(r.command_status, 0);
    assert.equal(h.gateway.binds('acme')[0]!.state, 'bound');
  });

  it('submit_sm from the upstream → generic_nack ESME_RINVCMDID', async () => {
    const r = await upstream!.request('submit_sm', { short_message: Buffer.from('x') });
    assert.deepEqual([r.command, r.command_status], ['generic_nack', STATUS.ESME_RINVCMDID]);
  });
});

export type { InboundRequest };

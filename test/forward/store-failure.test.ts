/**
 * A journal that cannot be written (a full disk, a lost Redis): nothing is
 * acknowledged that is not stored. The fault is injected in the backend (a
 * store that refuses writes cannot be made for real as root); the gateway,
 * its sessions and the upstream are real, on loopback.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryForward } from '../../src/cache/forward-memory';
import { ForwardStore } from '../../src/cache/forward-store';
import { accept } from '../../src/dispatch/in-process';
import type { Gateway } from '../../src/gateway';
import { SmscSimulator } from '../../src/tools/sim';
import { statusValue } from '../../src/wire/status';
import { TestEsme } from '../helpers/esme';
import { freePort, startGateway, testConfig, until } from '../helpers/harness';

/** A memory journal whose commits fail, as a full disk's do, while `fault.broken`. */
function failingJournal(broken: boolean): { backend: ReturnType<typeof memoryForward>; fault: { broken: boolean } } {
  const backend = memoryForward();
  const fault = { broken };
  const commit = backend.commit.bind(backend);
  backend.commit = async (ops) => {
    if (fault.broken) throw new Error('SQLITE_FULL: database or disk is full');
    return commit(ops);
  };
  return { backend, fault };
}

describe('store and forward: a journal that cannot be written', () => {
  it('submits are refused ESME_RSYSERR, never acknowledged, and the log says why; once it can be written again they are taken', async () => {
    const { backend, fault } = failingJournal(true);
    const sim = new SmscSimulator({ port: await freePort(), dlrDelayMs: -1 });
    const simPort = await sim.listen();
    let gateway: Gateway | undefined;
    const h = await startGateway({
      record: true,
      forward: new ForwardStore(backend),
      config: testConfig({ tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme' }], routing: { default_chain: ['bind:up', 'queue'] } }] }),
      handlers: {
        acme: {
          bind: () => accept(),
          pdu: {
            // As `smpp.forward(pdu)` does from a sandbox, in-process.
            submit_sm: async (pdu, session) => {
              const r = await gateway!.forward('acme', { command: 'submit_sm', fields: { destination_addr: pdu.destination_addr, short_message: pdu.short_message }, session });
              return { kind: 'reply', status: statusValue(r.command_status), fields: r.message_id ? { message_id: r.message_id } : {} };
            },
          },
        },
      },
    });
    gateway = h.gateway;
    try {
      await until(() => h.gateway.binds('acme')[0]!.state === 'bound');
      const esme = await h.esme('acme-app');
      const refused = await esme.submit({ destination_addr: '316', short_message: Buffer.from('x') });
      assert.equal(refused.command_status, statusValue('ESME_RSYSERR'));
      assert.ok(h.logs().some((l) => /^forward journal: write failed/.test(String(l.msg)) && /disk is full/.test(String(l.err))));
      fault.broken = false;
      const taken = await esme.submit({ destination_addr: '316', short_message: Buffer.from('y') });
      assert.equal(taken.command_status, 0);
      assert.equal(h.logs().find((l) => l.msg === 'forward journal: writes work again')?.failed_writes, 1);
      assert.equal((await h.gateway.forwarder.store.get([`acme/${String(taken.fields.message_id)}`]))[0]?.state, 1);
    } finally {
      await h.close();
      await sim.close();
    }
  });

  it('receipts that come while it cannot be written are held, their upstream unanswered, and taken once it can: an upstream that never sends one again loses none', { timeout: 60_000 }, async () => {
    const { backend, fault } = failingJournal(false);
    // No resendUnansweredMs: a receipt refused is a receipt gone.
    const sim = new SmscSimulator({ port: await freePort(), dlrDelayMs: 300 });
    const simPort = await sim.listen();
    let gateway: Gateway | undefined;
    const h = await startGateway({
      forward: new ForwardStore(backend),
      config: testConfig({
        tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme' }], routing: { default_chain: ['bind:up'] }, receipts: { by: 'core' } }],
      }),
      handlers: {
        acme: {
          bind: () => accept(),
          pdu: {
            submit_sm: async (pdu, session) => {
              const r = await gateway!.forward('acme', { command: 'submit_sm', fields: { destination_addr: pdu.destination_addr, short_message: pdu.short_message, registered_delivery: 1 }, session });
              return { kind: 'reply', status: statusValue(r.command_status), fields: r.message_id ? { message_id: r.message_id } : {} };
            },
          },
        },
      },
    });
    gateway = h.gateway;
    try {
      await until(() => h.gateway.binds('acme')[0]!.state === 'bound');
      const esme = await TestEsme.bind(h.port);
      const acked = (await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(i)))).map((r) => String(r.fields.message_id));
      assert.equal(acked.length, 20);
      // The store fails before any receipt comes (300 ms after each submit) and stays failed for 2 s.
      fault.broken = true;
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(sim.stats.dlrsAcked, 0, 'no receipt answered while it could not be held');
      assert.equal(sim.stats.gaveUp, 0, 'none refused');
      assert.equal(esme.receipts.length, 0);
      fault.broken = false;
      await until(() => acked.every((id) => esme.byId().has(id)), 15_000, 'every receipt at the ESME once the store takes writes');
      await until(() => sim.stats.dlrsAcked === 20, 5000, 'every deliver_sm answered ESME_ROK');
      assert.equal(sim.stats.gaveUp, 0);
      esme.close();
    } finally {
      await h.close();
      await sim.close();
    }
  });
});

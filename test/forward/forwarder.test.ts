/**
 * Store and forward through policies/gateway.ts in the real sandbox, on a
 * real gateway and in-process upstream simulators over loopback TCP:
 * routing chains, the durable queue, expiry, message management.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { SmppSession } from '../../src/sessions/smpp-session';
import { realClock } from '../../src/util/clock';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator, type SimOptions } from '../../src/tools/sim';
import { TestEsme } from '../helpers/esme';
import { freePort, sandboxedSetup, sleep, until } from '../helpers/harness';

const GATEWAY = readFileSync(path.resolve(__dirname, '../../../policies/gateway.ts'), 'utf8');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Rig {
  sluice: Sluice;
  sims: SmscSimulator[];
  ports: number[];
  close(): Promise<void>;
}

/** The gateway policy on two binds (ports[0], ports[1]); sims started on those ports unless `down`. */
async function rig(opts: { sim?: SimOptions; down?: boolean; tenant?: Record<string, unknown>; admin?: boolean; server?: Record<string, unknown> } = {}): Promise<Rig> {
  const ports = [await freePort(), await freePort()];
  const sims: SmscSimulator[] = [];
  if (!opts.down) for (const port of ports) sims.push(await startSim(port, opts.sim));
  const { dir, config } = sandboxedSetup(
    { gateway: GATEWAY },
    {
      ...(opts.admin ? { admin: { listen: '127.0.0.1:0', token: 'root' } } : {}),
      ...(opts.server ? { server: { bind_address: '127.0.0.1', port: 0, ...opts.server } } : {}),
      tenants: [
        {
          id: 'acme',
          policy: 'gateway.ts',
          system_ids: ['acme-app', 'acme-batch'],
          settings: { esmes: { 'acme-app': 'acme-pw', 'acme-batch': 'batch-pw' }, mo_routes: { '4470': 'acme-batch' }, mo_default: 'acme-app' },
          binds: ports.map((port, i) => ({ name: `up${i}`, host: '127.0.0.1', port, system_id: 'acme', window: 64, response_timer_ms: 2000 })),
          routing: {
            default_chain: ['bind:up0', 'bind:up1', 'queue'],
            rules: [
              { prefix: '0031', name: 'national', chain: ['reject:ESME_RINVDSTADR'] },
              { prefix: '99', name: 'nowhere', chain: ['bind:up1'] },
            ],
          },
          queue: { retry_ms: 100, retry_max_ms: 500 },
          ...opts.tenant,
        },
      ],
    },
  );
  dirs.push(dir);
  const sluice = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, reconnectBaseMs: 50, admin: opts.admin === true });
  return {
    sluice,
    sims,
    ports,
    async close() {
      await sluice.stop();
      await Promise.all(sims.map((s) => s.close()));
    },
  };
}

async function startSim(port: number, o: SimOptions = {}): Promise<SmscSimulator> {
  const s = new SmscSimulator({ port, dlrDelayMs: 20, ...o });
  await s.listen();
  return s;
}

const bound = (r: Rig, n = 2): Promise<void> => until(() => r.sluice.gateway.binds('acme').filter((b) => b.state === 'bound').length >= n, 5000);

describe('store and forward: routing chains', () => {
  it('the first bind that is up takes each message; its receipt comes back with our id, in the body and the TLV', async () => {
    const r = await rig();
    try {
      await bound(r);
      const esme = await TestEsme.bind(r.sluice.port);
      const resps = await Promise.all(Array.from({ length: 50 }, (_, i) => esme.submit(i)));
      assert.ok(resps.every((x) => x.command_status === 0));
      const ids = resps.map((x) => String(x.fields.message_id));
      assert.equal(new Set(ids).size, 50);
      await until(() => esme.receipts.length >= 50);
      const got = esme.byId();
      for (const id of ids) assert.equal(got.get(id)?.[0]?.stat, 'DELIVRD');
      assert.equal(got.get(ids[0]!)?.[0]?.state, 2);
      assert.equal(r.sims[0]!.stats.submits, 50, 'the first bind of the chain took them all');
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('a bind that is down is skipped; with every bind down the message is queued (ESME_ROK), and sent when one comes up', async () => {
    const r = await rig({ down: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      const resps = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(i)));
      assert.ok(resps.every((x) => x.command_status === 0), 'queued messages are acknowledged');
      await sleep(200);
      assert.equal(esme.receipts.length, 0);
      const sim = await startSim(r.ports[1]!);
      r.sims.push(sim);
      await until(() => esme.receipts.length >= 20, 8000);
      assert.equal(sim.stats.submits, 20);
      const got = esme.byId();
      for (const x of resps) assert.equal(got.get(String(x.fields.message_id))?.length, 1);
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('reject steps answer their status; a chain of binds that are all down, without queue, answers ESME_RSUBMITFAIL', async () => {
    const r = await rig({ down: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      assert.equal((await esme.submit(1, { destination_addr: '0031612345678' })).command_status, 0x0b);
      assert.equal((await esme.submit(2, { destination_addr: '99123' })).command_status, 0x45);
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('an upstream that refuses a message: the ESME gets its status, nothing is queued', async () => {
    const r = await rig({ sim: { errorRate: 1 } });
    try {
      await bound(r);
      const esme = await TestEsme.bind(r.sluice.port);
      assert.equal((await esme.submit(1)).command_status, 0x45);
      await sleep(300);
      assert.equal(r.sims[0]!.stats.submits + r.sims[1]!.stats.submits, 1);
      esme.close();
    } finally {
      await r.close();
    }
  });
});

describe('store and forward: the queue', () => {
  it('a queued message past its validity_period expires: the ESME gets an EXPIRED receipt (message_state 3)', async () => {
    const r = await rig({ down: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      const resp = await esme.submit(1, { validity_period: '000000000001000R' });
      assert.equal(resp.command_status, 0);
      await until(() => esme.receipts.length >= 1, 5000);
      assert.deepEqual([esme.receipts[0]!.bodyId, esme.receipts[0]!.stat, esme.receipts[0]!.state], [resp.fields.message_id, 'EXPIRED', 3]);
      assert.equal(r.sluice.gateway.forwarder.count('acme').expired, 1);
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('a malformed validity_period is refused ESME_RINVEXPIRY', async () => {
    const r = await rig({ down: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      assert.equal((await esme.submit(1, { validity_period: 'tomorrow' })).command_status, 0x62);
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('query_sm, replace_sm and cancel_sm of queued messages are answered from the journal', async () => {
    const r = await rig({ down: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      const a = String((await esme.submit('a')).fields.message_id);
      const b = String((await esme.submit('b')).fields.message_id);
      const q = await esme.client.request('query_sm', { message_id: a, source_addr: '4412345' });
      assert.deepEqual([q.command_status, q.fields.message_state], [0, 1]);
      assert.equal((await esme.client.request('query_sm', { message_id: 'nope' })).command_status, 0x67);
      assert.equal((await esme.client.request('replace_sm', { message_id: a, registered_delivery: 1, short_message: Buffer.from('replaced') })).command_status, 0);
      assert.equal((await esme.client.request('cancel_sm', { message_id: b, source_addr: '4412345', destination_addr: '31612345678' })).command_status, 0);
      assert.equal((await esme.client.request('cancel_sm', { message_id: b })).command_status, 0x11, 'cancelled once');
      const qb = await esme.client.request('query_sm', { message_id: b });
      assert.deepEqual([qb.command_status, qb.fields.message_state], [0, 4]);
      const texts: string[] = [];
      const sim = new SmscSimulator({ port: r.ports[0]!, dlrDelayMs: 20 });
      const orig = (sim as unknown as { onSubmit: (s: unknown, p: { fields: Record<string, unknown> }) => void }).onSubmit.bind(sim);
      (sim as unknown as { onSubmit: (s: unknown, p: { fields: Record<string, unknown> }) => void }).onSubmit = (s, p) => {
        texts.push(Buffer.from(p.fields.short_message as Buffer).toString('latin1'));
        orig(s, p);
      };
      await sim.listen();
      r.sims.push(sim);
      await until(() => esme.receipts.length >= 1, 8000);
      await sleep(300);
      assert.deepEqual(texts, ['replaced'], 'the replaced text went; the cancelled message did not');
      const qa = await esme.client.request('query_sm', { message_id: a });
      assert.deepEqual([qa.command_status, qa.fields.message_state], [0, 2]);
      esme.close();
    } finally {
      await r.close();
    }
  });
});

describe('store and forward: what a policy can reach', () => {
  // globex's policy tries to route through acme's bind, and to hand MO to acme's ESME.
  const HOSTILE = `
    smpp.onBind((b) => b.accept());
    smpp.onPdu('submit_sm', async (pdu) => {
      const t = pdu.short_message.length > 0 ? String.fromCharCode(...pdu.short_message) : '';
      try {
        if (t === 'other-bind') await smpp.forward(pdu, { chain: ['bind:up0'] });
        else if (t === 'bad-step') await smpp.forward(pdu, { chain: ['drop'] });
        else if (t === 'not-a-pdu') await smpp.forward({ command: 'submit_sm', destination_addr: '1' });
        else if (t === 'forged') await smpp.forward(Object.assign(Object.create(Object.getPrototypeOf(pdu)), pdu));
        return pdu.reply({ command_status: 'ESME_ROK' });
      } catch (e) {
        log.info('denied', { code: e.code ?? e.name, message: e.message });
        return pdu.reply({ command_status: e.code === 'UNKNOWN_BIND' ? 'ESME_RINVDSTADR' : e.code === 'INVALID_FIELD' ? 'ESME_RINVTLVLEN' : 'ESME_RSYSERR' });
      }
    });`;

  it("another tenant's bind in a chain is UNKNOWN_BIND; a bad step INVALID_FIELD; a PDU the policy made or copied is refused", async () => {
    const port = await freePort();
    const { dir, config } = sandboxedSetup(
      { gateway: GATEWAY, hostile: HOSTILE },
      {
        tenants: [
          { id: 'acme', policy: 'gateway.ts', system_ids: ['acme-app'], settings: { esmes: { 'acme-app': 'acme-pw' } }, binds: [{ name: 'up0', host: '127.0.0.1', port, system_id: 'acme' }], routing: { default_chain: ['bind:up0', 'queue'] } },
          { id: 'globex', policy: 'hostile.ts', system_ids: ['globex-app'] },
        ],
      },
    );
    dirs.push(dir);
    const sluice = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, reconnectBaseMs: 50 });
    try {
      const esme = await TestEsme.bind(sluice.port, 'globex-app', 'x');
      const answer = async (text: string): Promise<number> => (await esme.submit(0, { short_message: Buffer.from(text) })).command_status;
      assert.equal(await answer('other-bind'), 0x0b, 'UNKNOWN_BIND');
      assert.equal(await answer('bad-step'), 0xc2, 'INVALID_FIELD');
      assert.equal(await answer('not-a-pdu'), 0x08, 'a plain object is not a PDU');
      assert.equal(await answer('forged'), 0x08, 'a copy of a PDU is not one');
      assert.equal(await sluice.gateway.forwarder.store.depth().then((d) => d.length), 0, 'nothing was queued');
      esme.close();
    } finally {
      await sluice.stop();
    }
  });
});

/** An upstream the test drives by hand: it answers binds and submits (ids it is told), and sends what the test says. */
class HandSmsc {
  readonly submits: { id: string; fields: Record<string, unknown> }[] = [];
  readonly requests: string[] = [];
  session: SmppSession | undefined;
  /** Send each submit's receipt first, and its submit_sm_resp this much later. */
  receiptFirstMs = 0;
  private n = 0x1a2b00;
  private readonly server = net.createServer((socket) => {
    const s = new SmppSession(socket, { role: 'server', clock: realClock, logger: silentLogger, window: 64, peerWindow: 1000, responseTimeoutMs: 5000, enquireLinkMs: 0x7fffffff, inactivityMs: 0x7fffffff, maxPduBytes: 65536 });
    s.on('request', (pdu) => {
      if (pdu.command.startsWith('bind_')) {
        s.respond(pdu, 0, { system_id: 'hand' });
        s.markBound();
        this.session = s;
      } else if (pdu.command === 'submit_sm') {
        const id = (this.n++).toString(16).toUpperCase();
        this.submits.push({ id, fields: pdu.fields });
        if (this.receiptFirstMs > 0) {
          void this.receipt(id);
          setTimeout(() => s.respond(pdu, 0, { message_id: id }), this.receiptFirstMs);
        } else s.respond(pdu, 0, { message_id: id });
      } else {
        this.requests.push(`${pdu.command}:${String(pdu.fields.message_id ?? '')}`);
        s.respond(pdu, 0);
      }
    });
  });

  async listen(port: number): Promise<void> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
  }

  /** A deliver_sm from the upstream; resolves with the gateway's answer status. */
  async deliver(fields: Record<string, unknown>): Promise<number> {
    return (await this.session!.request('deliver_sm', { source_addr: '447700900123', destination_addr: '4412345', ...fields })).command_status;
  }

  receipt(id: string, stat = 'DELIVRD'): Promise<number> {
    return this.deliver({ esm_class: 0x04, short_message: Buffer.from(`id:${id} sub:001 dlvrd:001 submit date:2612031200 done date:2612031201 stat:${stat} err:000 text:`) });
  }

  async close(): Promise<void> {
    this.session?.close('test over', false);
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('store and forward: receipts and MO from an upstream', () => {
  async function handRig(server?: Record<string, unknown>): Promise<{ r: Rig; smsc: HandSmsc }> {
    const r = await rig({ down: true, ...(server ? { server } : {}) });
    const smsc = new HandSmsc();
    await smsc.listen(r.ports[0]!);
    await until(() => r.sluice.gateway.binds('acme').some((b) => b.state === 'bound'), 8000);
    return { r, smsc };
  }

  it('a receipt id written in decimal, or zero-padded lower case, finds its message; a re-sent receipt is delivered once', async () => {
    const { r, smsc } = await handRig();
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      const a = String((await esme.submit('a')).fields.message_id);
      const b = String((await esme.submit('b')).fields.message_id);
      const [ua, ub] = smsc.submits.map((x) => x.id);
      assert.equal(await smsc.receipt(String(parseInt(ua!, 16))), 0, 'decimal of the hex id');
      assert.equal(await smsc.receipt(`000${ub!.toLowerCase()}`), 0, 'padded lower case');
      assert.equal(await smsc.receipt(ua!), 0, 'the same receipt again');
      await until(() => esme.receipts.length >= 2);
      await sleep(200);
      assert.deepEqual(esme.receipts.map((x) => x.bodyId).sort(), [a, b].sort());
      assert.equal(r.sluice.gateway.forwarder.count('acme').receiptsDuplicate, 1);
      // A receipt for nothing we sent is parked, not delivered.
      assert.equal(await smsc.receipt('FFFF0000'), 0);
      assert.equal(r.sluice.gateway.forwarder.count('acme').receiptsEarly, 1);
      esme.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it('MO goes to the ESME that owns the number: bytes exact to a bound one, held for one that is not and delivered when it binds', async () => {
    const { r, smsc } = await handRig();
    try {
      const app = await TestEsme.bind(r.sluice.port);
      const bytes = Buffer.from([0x00, 0xff, 0x1b, 0x80]);
      assert.equal(await smsc.deliver({ destination_addr: '4412345', data_coding: 4, short_message: bytes }), 0);
      await until(() => app.mo.length === 1);
      assert.deepEqual(Buffer.from(app.mo[0]!.fields.short_message as Buffer), bytes);
      // 4470… belongs to acme-batch, which is not bound: held, and the upstream is answered.
      assert.equal(await smsc.deliver({ destination_addr: '4470123', short_message: Buffer.from('for batch') }), 0);
      await sleep(100);
      assert.equal(app.mo.length, 1);
      const batch = await TestEsme.bind(r.sluice.port, 'acme-batch', 'batch-pw');
      await until(() => batch.mo.length === 1);
      assert.equal(Buffer.from(batch.mo[0]!.fields.short_message as Buffer).toString(), 'for batch');
      assert.equal(r.sluice.gateway.forwarder.count('acme').mo, 2);
      app.close();
      batch.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it("an ESME that never answers its receipts is closed and its receipts held, delivered when it binds again; the tenant's other ESME is served throughout", async () => {
    const { r, smsc } = await handRig({ response_timer_ms: 1000 });
    try {
      const silent = await EsmeClient.connect({ port: r.sluice.port, onRequest: () => {} });
      assert.equal((await silent.bind('acme-app', 'acme-pw')).command_status, 0);
      const ids: string[] = [];
      for (let i = 0; i < 150; i++) ids.push(String((await silent.submit({ source_addr: '1', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(`s${i}`) })).fields.message_id));
      const other = await TestEsme.bind(r.sluice.port, 'acme-batch', 'batch-pw');
      // Every receipt at once, while the other ESME of the tenant keeps submitting.
      const receipts = Promise.all(smsc.submits.map((x) => smsc.receipt(x.id)));
      const answers = await Promise.all(Array.from({ length: 150 }, (_, i) => other.submit(i)));
      assert.deepEqual([...new Set(answers.map((a) => a.command_status))], [0], 'the other ESME is answered ESME_ROK throughout');
      assert.ok((await receipts).every((st) => st === 0), 'every receipt was answered upstream (delivered or held)');
      await until(() => silent.session.closed, 5000);
      const back = await TestEsme.bind(r.sluice.port);
      await until(() => new Set(back.receipts.map((x) => x.bodyId)).size >= 150, 15_000);
      assert.deepEqual(new Set(back.receipts.map((x) => x.bodyId)), new Set(ids));
      back.close();
      other.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it('an ESME slower than its receipts come gets every one in the order the upstream sent them, none held: past a full window they wait in its session', async () => {
    // 200 receipts at once: three windows (64) of them, which the session queues (up to 16 windows) rather than hold.
    const { r, smsc } = await handRig();
    try {
      const got: string[] = [];
      let unanswered = 0;
      let most = 0;
      const slow = await EsmeClient.connect({
        port: r.sluice.port,
        onRequest: (pdu, s) => {
          got.push(/id:(\S+)/.exec(Buffer.from(pdu.fields.short_message as Uint8Array).toString('latin1'))?.[1] ?? '');
          most = Math.max(most, ++unanswered);
          // An ESME that takes 3 ms for each receipt, one at a time.
          setTimeout(() => {
            unanswered--;
            s.respond(pdu, 0, { message_id: '' });
          }, 3 * unanswered);
        },
      });
      assert.equal((await slow.bind('acme-app', 'acme-pw')).command_status, 0);
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) ids.push(String((await slow.submit({ source_addr: '1', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(`s${i}`) })).fields.message_id));
      const statuses = await Promise.all(smsc.submits.map((x) => smsc.receipt(x.id)));
      assert.deepEqual([...new Set(statuses)], [0], 'the upstream is answered ESME_ROK for every receipt');
      await until(() => got.length >= 200, 20_000);
      assert.equal(most, 64, 'the ESME had a full window of receipts unanswered');
      assert.deepEqual(got, ids, 'each receipt once, in the order the upstream sent them');
      assert.equal(r.sluice.gateway.heldCounts().tenants.get('acme')?.held ?? 0, 0, 'none was held in the store');
      slow.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it('a receipt for an ESME that unbound is held and delivered when it binds again', async () => {
    const { r, smsc } = await handRig();
    try {
      const first = await TestEsme.bind(r.sluice.port);
      const id = String((await first.submit('x')).fields.message_id);
      first.close();
      await until(() => r.sluice.gateway.sessions('acme').length === 0);
      assert.equal(await smsc.receipt(smsc.submits[0]!.id), 0);
      const again = await TestEsme.bind(r.sluice.port);
      await until(() => again.receipts.length === 1);
      assert.equal(again.receipts[0]!.bodyId, id);
      again.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });
});

describe('store and forward: order, sent messages, metrics', () => {
  it('a receipt that comes before its submit_sm_resp reaches the ESME only after the ESME had its own', async () => {
    const r = await rig({ down: true });
    const smsc = new HandSmsc();
    smsc.receiptFirstMs = 100;
    await smsc.listen(r.ports[0]!);
    try {
      await until(() => r.sluice.gateway.binds('acme').some((b) => b.state === 'bound'), 8000);
      const esme = await TestEsme.bind(r.sluice.port);
      // What the ESME's session reads, in wire order: responses by message_id, receipts by their id.
      const order: string[] = [];
      const session = esme.client.session as unknown as { onResponseFrame(frame: Buffer, id: number): void };
      const onResponse = session.onResponseFrame.bind(session);
      session.onResponseFrame = (frame, id) => {
        order.push(`resp:${frame.subarray(16, frame.indexOf(0, 16)).toString()}`);
        onResponse(frame, id);
      };
      const ids = (await Promise.all([1, 2, 3].map((i) => esme.submit(i)))).map((x) => String(x.fields.message_id));
      await until(() => esme.receipts.length >= 3);
      for (const x of esme.receipts) order.push(`dlr:${x.bodyId}`);
      for (const id of ids) assert.ok(order.indexOf(`resp:${id}`) < order.indexOf(`dlr:${id}`), order.join(' '));
      assert.equal(r.sluice.gateway.forwarder.count('acme').receiptsEarly, 3);
      esme.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it('cancel_sm and query_sm of a message an upstream took: cancel goes upstream with its id, query is answered from the journal', async () => {
    const r = await rig({ down: true });
    const smsc = new HandSmsc();
    await smsc.listen(r.ports[0]!);
    try {
      await until(() => r.sluice.gateway.binds('acme').some((b) => b.state === 'bound'), 8000);
      const esme = await TestEsme.bind(r.sluice.port);
      const id = String((await esme.submit('c')).fields.message_id);
      const q = await esme.client.request('query_sm', { message_id: id });
      assert.deepEqual([q.command_status, q.fields.message_state], [0, 1]);
      assert.equal((await esme.client.request('cancel_sm', { message_id: id })).command_status, 0);
      assert.deepEqual(smsc.requests, [`cancel_sm:${smsc.submits[0]!.id}`], "the upstream's own id");
      const after = await esme.client.request('query_sm', { message_id: id });
      assert.deepEqual([after.command_status, after.fields.message_state], [0, 4]);
      // Another ESME of the tenant does not reach it.
      const other = await TestEsme.bind(r.sluice.port, 'acme-batch', 'batch-pw');
      assert.equal((await other.client.request('query_sm', { message_id: id })).command_status, 0x67);
      esme.close();
      other.close();
    } finally {
      await r.close();
      await smsc.close();
    }
  });

  it('queue depth and the oldest message age per tenant and bind, in /metrics and the tenant view', async () => {
    const r = await rig({ down: true, admin: true });
    try {
      const esme = await TestEsme.bind(r.sluice.port);
      await Promise.all([1, 2, 3].map((i) => esme.submit(i)));
      const get = (p: string): Promise<string> => fetch(`http://127.0.0.1:${r.sluice.adminPort}${p}`, { headers: { authorization: 'Bearer root' } }).then((x) => x.text());
      const metrics = await get('/metrics');
      assert.match(metrics, /sluice_queue_depth\{tenant="acme",bind="up0"\} 3/);
      // Wall-clock ages: seconds, not the 1.8e9 s an uptime-stamped row read against the epoch gave.
      const age = Number(/sluice_queue_oldest_age_seconds\{tenant="acme",bind="up0"\} (\S+)/.exec(metrics)?.[1]);
      assert.ok(age >= 0 && age < 60, `oldest age ${age} s`);
      assert.match(metrics, /sluice_forward_queued_total\{tenant="acme"\} 3/);
      const view = JSON.parse(await get('/v1/tenants/acme')) as { queue: { bind: string; depth: number; oldest_age_ms: number }[]; forward: { queued: number } };
      assert.deepEqual([view.queue[0]!.bind, view.queue[0]!.depth, view.forward.queued], ['up0', 3, 3]);
      assert.ok(view.queue[0]!.oldest_age_ms >= 0 && view.queue[0]!.oldest_age_ms < 60_000, `oldest_age_ms ${view.queue[0]!.oldest_age_ms}`);
      esme.close();
    } finally {
      await r.close();
    }
  });
});

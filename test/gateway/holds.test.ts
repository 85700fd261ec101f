/**
 * Messages for ESMEs not bound here (docs/design.md, "Replicas"): held in the store and
 * delivered when a session of their system_id is bound, on whichever
 * replica. Real gateways on loopback, real ESME clients, stores shared the
 * way replicas share them (one SQLite file, a real redis-server).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryHolds, type HoldStore } from '../../src/cache';
import type { Gateway } from '../../src/gateway';
import type { InboundRequest, SmppSession } from '../../src/sessions/smpp-session';
import { EsmeClient } from '../../src/tools/esme-client';
import { silentLogger } from '../../src/log/logger';
import { startSluice } from '../../src/runtime';
import { sandboxedSetup, sleep, startGateway, testConfig, twoReplicas, until } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';

const redis = redisForThisFile();
const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-holds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** An ESME bound as `systemId` that answers every deliver_sm / data_sm and records it. */
async function receiver(h: { gateway: Gateway; port: number }, systemId = 'acme-app'): Promise<{ client: EsmeClient; got: InboundRequest[]; sessionId: string }> {
  const got: InboundRequest[] = [];
  const before = new Set(h.gateway.sessions('acme').map((s) => s.sessionId));
  const client = await EsmeClient.connect({
    port: h.port,
    onRequest: (pdu: InboundRequest, s: SmppSession) => {
      got.push(pdu);
      s.respond(pdu, 0, { message_id: '' });
    },
  });
  assert.equal((await client.bind(systemId, 'pw')).command_status, 0);
  const sessionId = h.gateway.sessions('acme').find((s) => !before.has(s.sessionId))!.sessionId;
  return { client, got, sessionId };
}

const text = (p: InboundRequest): string => Buffer.from(p.fields.short_message as Buffer).toString('latin1');

describe('held messages, one gateway', () => {
  it('a message for an ESME that unbound is held and delivered, bytes exact, when a session of its system_id binds', async () => {
    // No poll during the test: what arrives comes with the bind.
    const h = await startGateway({ config: testConfig({ server: { hold_ttl_ms: 60_000 } }), holdPollMs: 60_000 });
    try {
      const first = await receiver(h);
      first.client.close();
      await until(() => h.gateway.sessions('acme').length === 0);
      const bytes = new Uint8Array([0x00, 0xff, 0x1b, 0x80, 0x7f]);
      assert.deepEqual(await h.gateway.sendTo('acme', first.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', esm_class: 0x04, short_message: 'id:1 stat:DELIVRD' }), {
        ok: true,
        command_status: 'ESME_ROK',
        held: true,
      });
      await h.gateway.sendTo('acme', first.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', data_coding: 4, short_message: bytes });
      // An id never bound, and acme's session named by another tenant: unknown, nothing held.
      await assert.rejects(h.gateway.sendTo('acme', 'nope', 'deliver_sm', { short_message: 'x' }), { code: 'UNKNOWN_SESSION' });
      await assert.rejects(h.gateway.sendTo('globex', first.sessionId, 'deliver_sm', { short_message: 'x' }), { code: 'UNKNOWN_SESSION' });
      // A bad field is refused at once, not held.
      await assert.rejects(h.gateway.sendTo('acme', first.sessionId, 'deliver_sm', { short_message: 'x'.repeat(300) }), { code: 'INVALID_FIELD' });

      const next = await receiver(h);
      await until(() => next.got.length === 2);
      assert.equal(text(next.got[0]!), 'id:1 stat:DELIVRD');
      assert.equal(next.got[0]!.fields.esm_class, 0x04);
      assert.deepEqual([...(next.got[1]!.fields.short_message as Buffer)], [...bytes]);
      await sleep(200);
      assert.equal(next.got.length, 2);
      next.client.close();
    } finally {
      await h.close();
    }
  });
});

describe('held messages, a session with a full window', () => {
  it('what is held because its ESME had a full window unanswered goes to it as soon as it answers, in order, not at the next poll', async () => {
    // No poll during the test (a minute): what is held must come from the hold itself.
    const h = await startGateway({ config: testConfig({ server: { window: 4, hold_ttl_ms: 60_000 } }), holdPollMs: 60_000 });
    try {
      const got: string[] = [];
      const waiting: (() => void)[] = [];
      let answering = false;
      const before = new Set(h.gateway.sessions('acme').map((x) => x.sessionId));
      const client = await EsmeClient.connect({
        port: h.port,
        onRequest: (pdu: InboundRequest, session: SmppSession) => {
          got.push(text(pdu));
          const answer = (): void => session.respond(pdu, 0, { message_id: '' });
          if (answering) answer();
          else waiting.push(answer);
        },
      });
      assert.equal((await client.bind('acme-app', 'pw')).command_status, 0);
      const sessionId = h.gateway.sessions('acme').find((x) => !before.has(x.sessionId))!.sessionId;
      // The ESME leaves the first window (4) unanswered; the other six are held.
      const results = Promise.all(Array.from({ length: 10 }, (_, i) => h.gateway.sendTo('acme', sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', short_message: `m${i}` })));
      await until(() => h.gateway.heldCounts().tenants.get('acme')?.held === 6);
      assert.equal(got.length, 4);
      answering = true;
      for (const a of waiting.splice(0)) a();
      await until(() => got.length === 10, 10_000);
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `m${i}`));
      const held = (await results).filter((r) => r.held === true).length;
      assert.equal(held, 6, 'six of them were held');
      client.close();
    } finally {
      await h.close();
    }
  });

  it('a message sent while others wait in the store goes behind them, not past them', async () => {
    // An ESME a little slower than the messages for it: its window fills now and then, so some are
    // held; the ones after must not overtake them on their way out of the store (a SQLite file, as shipped).
    const stores = await twoReplicas(`sqlite://${path.join(dir, `order-${++files}.sqlite`)}`, (c) => c.holds);
    const h = await startGateway({ config: testConfig({ server: { window: 4, hold_ttl_ms: 60_000 } }), holdPollMs: 60_000, holds: stores.a });
    try {
      const got: string[] = [];
      const before = new Set(h.gateway.sessions('acme').map((x) => x.sessionId));
      const client = await EsmeClient.connect({
        port: h.port,
        onRequest: (pdu: InboundRequest, session: SmppSession) => {
          got.push(text(pdu));
          setTimeout(() => session.respond(pdu, 0, { message_id: '' }), 2);
        },
      });
      assert.equal((await client.bind('acme-app', 'pw')).command_status, 0);
      const sessionId = h.gateway.sessions('acme').find((x) => !before.has(x.sessionId))!.sessionId;
      const n = 300;
      const results: Promise<{ held?: boolean }>[] = [];
      for (let i = 0; i < n; i++) {
        results.push(h.gateway.sendTo('acme', sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', short_message: `m${i}` }));
        if (i % 6 === 5) await sleep(1);
      }
      const held = (await Promise.all(results)).filter((r) => r.held === true).length;
      await until(() => got.length >= n, 20_000);
      assert.ok(held > 0, 'some were held (the ESME fell behind)');
      const first = got.findIndex((x, i) => x !== `m${i}`);
      assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`), `in order (${held} of ${n} went through the store); first out of place at ${first}: ${got.slice(Math.max(0, first - 3), first + 5).join(' ')}`);
      client.close();
    } finally {
      await h.close();
      await stores.close();
    }
  });
});

describe('held messages, a store that does not answer', () => {
  it('holds a bind up for at most a second; sends to sessions bound here carry on', async () => {
    const hung: HoldStore = { ...memoryHolds(), remember: () => new Promise(() => {}), pending: async () => [] };
    const h = await startGateway({ holds: hung });
    try {
      const t0 = Date.now();
      const esme = await receiver(h);
      const waited = Date.now() - t0;
      assert.ok(waited >= 900 && waited < 3000, `bind answered after ${waited} ms`);
      const r = await h.gateway.sendTo('acme', esme.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', short_message: 'x' });
      assert.equal(r.ok, true);
      assert.equal(r.held, undefined);
      esme.client.close();
    } finally {
      await h.close();
    }
  });
});

describe('held messages, from a policy in the sandbox', () => {
  it("deliverTo a session that unbound resolves { held: true } in the policy, and the ESME gets it when it binds again", { timeout: 30_000 }, async () => {
    // The app's session id is kept in the cache when it binds; the ops console's submit "notify" sends to it.
    const policy = `
      smpp.onBind((b) => b.accept());
      smpp.onSession('bound', async (s) => { if (s.kind === 'esme' && s.systemId === 'acme-app') await cache.set('app', s.sessionId); });
      smpp.onPdu('submit_sm', async (pdu) => {
        if (pdu.text !== 'notify') return pdu.reply({ message_id: 'ok' });
        const r = await smpp.deliverTo(await cache.get('app'), { source_addr: '1', destination_addr: '2', short_message: 'for the app' });
        return pdu.reply({ message_id: JSON.stringify(r) });
      });`;
    const x = sandboxedSetup(
      { acme: policy },
      { admin: { listen: '127.0.0.1:0', token: 'root' }, tenants: [{ id: 'acme', policy: 'acme.ts', system_ids: ['acme-app', 'acme-ops'] }] },
    );
    const s = await startSluice({ config: x.config, logger: silentLogger, cwd: x.dir, watch: false, admin: true });
    try {
      const app = await receiver(s);
      app.client.close();
      await until(() => s.gateway.sessions('acme').length === 0);
      const ops = await EsmeClient.connect({ port: s.port });
      assert.equal((await ops.bind('acme-ops', 'pw')).command_status, 0);
      const r = await ops.submit({ short_message: Buffer.from('notify') });
      assert.deepEqual(JSON.parse(String(r.fields.message_id)), { ok: true, command_status: 'ESME_ROK', held: true });
      const back = await receiver(s);
      await until(() => back.got.length === 1);
      assert.equal(text(back.got[0]!), 'for the app');
      const metrics = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`, { headers: { authorization: 'Bearer root' } })).text();
      assert.match(metrics, /sluice_held_total\{tenant="acme"\} 1\n/);
      assert.match(metrics, /sluice_held_delivered_total\{tenant="acme"\} 1\n/);
      assert.match(metrics, /sluice_held_expired_total 0\n/);
      ops.close();
      back.client.close();
    } finally {
      await s.stop();
      rmSync(x.dir, { recursive: true, force: true });
    }
  });
});

const shared: { name: string; url: () => string; skip?: string | false }[] = [
  { name: 'one SQLite file', url: () => `sqlite://${path.join(dir, `c${++files}.sqlite`)}` },
  { name: 'a real redis-server', url: () => redis.url, skip: redisSkip },
];

for (const s of shared) {
  describe(`held messages across two gateways on ${s.name}`, { skip: s.skip ?? false }, () => {
    it('a receipt sent on one replica reaches the ESME bound on the other, once; a session of it bound here takes it at once', async () => {
      const stores = await twoReplicas(s.url(), (c) => c.holds);
      // A claim lasts response_timer_ms + 1 s: 1.3 s here, so a delivery left unacknowledged would come again within the test.
      const config = testConfig({ server: { hold_ttl_ms: 60_000, response_timer_ms: 300 } });
      const a = await startGateway({ config, holds: stores.a, holdPollMs: 50 });
      const b = await startGateway({ config, holds: stores.b, holdPollMs: 50 });
      try {
        const esme = await receiver(a);
        // The DLR comes back on replica b, whose policy knows the session id from the shared cache.
        // Every replica knows the session from the moment its bind was answered.
        const r = await b.gateway.sendTo('acme', esme.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', esm_class: 0x04, short_message: 'id:7 stat:DELIVRD' });
        assert.deepEqual(r, { ok: true, command_status: 'ESME_ROK', held: true });
        await until(() => esme.got.length === 1);
        assert.equal(text(esme.got[0]!), 'id:7 stat:DELIVRD');

        // With a session of acme-app bound on b too, b delivers it itself.
        const local = await receiver(b);
        const direct = await b.gateway.sendTo('acme', esme.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', short_message: 'direct' });
        assert.equal(direct.ok, true);
        assert.equal(direct.held, undefined, 'sent, not held');
        assert.equal(text(local.got[0]!), 'direct');
        await sleep(1600);
        assert.equal(esme.got.length + local.got.length, 2, 'acknowledged: not delivered twice, to either session');
        esme.client.close();
        local.client.close();
      } finally {
        await a.close();
        await b.close();
        await stores.close();
      }
    });

    it('held while no session of the system_id is bound anywhere, and kept across a restart of every replica', async () => {
      const url = s.url();
      const config = testConfig({ server: { hold_ttl_ms: 60_000 } });
      let stores = await twoReplicas(url, (c) => c.holds);
      const a = await startGateway({ config, holds: stores.a, holdPollMs: 50 });
      const gone = await receiver(a);
      gone.client.close();
      await until(() => a.gateway.sessions('acme').length === 0);
      for (let i = 0; i < 5; i++) await a.gateway.sendTo('acme', gone.sessionId, 'deliver_sm', { source_addr: '1', destination_addr: '2', short_message: `m${i}` });
      await a.close();
      await stores.close();

      stores = await twoReplicas(url, (c) => c.holds);
      const b = await startGateway({ config, holds: stores.b, holdPollMs: 50 });
      try {
        const back = await receiver(b);
        await until(() => back.got.length === 5);
        assert.deepEqual(back.got.map(text), ['m0', 'm1', 'm2', 'm3', 'm4']);
        back.client.close();
      } finally {
        await b.close();
        await stores.close();
      }
    });
  });
}

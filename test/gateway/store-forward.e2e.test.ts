/**
 * The shipped gateway as an operator runs it, every part a real process:
 * ESME clients → `sluice start -c config/example-gateway.yaml` (with
 * policies/gateway.ts, the SQLite journal) → `sluice sim` upstreams, all on
 * loopback. Copies of the config and policy run in a temp dir, with ports
 * and nothing else set through the environment.
 */
import assert from 'node:assert/strict';
import { appendFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { everyReceipt, ReconnectingEsme, TestEsme, texts } from '../helpers/esme';
import { freePort, until } from '../helpers/harness';
import { SimProcess } from '../helpers/sim-process';
import { exampleGatewayDir, SluiceProcess } from '../helpers/sluice-process';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


interface Rig {
  dir: string;
  port: number;
  aggPorts: [number, number];
  gateway: SluiceProcess;
  /** Start the gateway (again, on the same journal). */
  start(): Promise<SluiceProcess>;
  stop(): Promise<void>;
}

/** The example gateway; `oneAccount`: both binds to one upstream port, two sessions of one account. */
async function rig(t: TestContext, opts: { oneAccount?: boolean } = {}): Promise<Rig> {
  const dir = exampleGatewayDir('sluice-e2e-');
  dirs.push(dir);
  const port = await freePort();
  const first = await freePort();
  const aggPorts: [number, number] = [first, opts.oneAccount ? first : await freePort()];
  const env = {
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_PORT: String(port),
    SLUICE_ADMIN_LISTEN: `127.0.0.1:${await freePort()}`,
    AGG_PORT: String(aggPorts[0]),
    AGG2_PORT: String(aggPorts[1]),
  };
  const r: Rig = {
    dir,
    port,
    aggPorts,
    gateway: undefined as unknown as SluiceProcess,
    async start() {
      r.gateway = SluiceProcess.start('config/example-gateway.yaml', dir, env);
      await r.gateway.logged('listening', 0, () => true, 20_000);
      return r.gateway;
    },
    async stop() {
      await r.gateway?.stop('SIGTERM');
    },
  };
  t.after(() => r.gateway?.stop('SIGKILL'));
  await r.start();
  return r;
}

/** Until the gateway logged `bind` as bound (from log line `after` on). */
const bound = (g: SluiceProcess, bind: string, after = 0): Promise<unknown> => g.logged('bind state', after, (l) => l.bind === bind && l.state === 'bound', 20_000);


describe('the gateway, real processes', { timeout: 180_000 }, () => {
  it('receipts correlate whatever form the upstream writes ids in, and when they come before the response', async (t) => {
    const r = await rig(t);
    const a = await SimProcess.start(r.aggPorts[0], ['--receipt-id', 'mixed', '--early-receipts', '0.3', '--dlr-delay-ms', '20']);
    const b = await SimProcess.start(r.aggPorts[1], ['--resp-id', 'decimal', '--receipt-id', 'mixed', '--early-receipts', '0.3', '--dlr-delay-ms', '20']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      const esme = new ReconnectingEsme(r.port);
      await esme.sendAll(texts('hex', 60), 8);
      assert.equal(await everyReceipt(esme, 15_000), 0, 'no receipt delivered twice');
      // The first upstream goes: the rest takes the second bind, whose upstream writes decimal ids.
      await a.kill();
      await bound(r.gateway, 'aggregator-eu-2');
      await esme.sendAll(texts('dec', 60), 8);
      assert.equal(await everyReceipt(esme, 15_000), 0, 'no receipt delivered twice');
      assert.equal(b.submitted().filter((x) => x.startsWith('dec')).length, 60);
      assert.ok(a.events.filter((e) => e.ev === 'receipt' && e.id !== e.rid).length > 10, 'ids in other forms were sent');
      esme.close();
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('an upstream killed mid-run: traffic fails over, every message answered ESME_ROK reached an upstream', async (t) => {
    const r = await rig(t);
    const a = await SimProcess.start(r.aggPorts[0], ['--dlr-delay-ms', '20']);
    const b = await SimProcess.start(r.aggPorts[1], ['--dlr-delay-ms', '20']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      await bound(r.gateway, 'aggregator-eu-2');
      const esme = new ReconnectingEsme(r.port);
      let killed: Promise<void> | undefined;
      await esme.sendAll(texts('f', 400), 16, {}, (n) => {
        if (n === 150) killed = a.kill();
      });
      await killed;
      const upstream = new Set([...a.submitted(), ...b.submitted()]);
      const lost = [...esme.acked.keys()].filter((x) => !upstream.has(x));
      assert.deepEqual(lost, [], 'every message answered ESME_ROK reached an upstream');
      assert.ok(b.submitted().length > 200, 'the second bind took over');
      // Receipts for what the surviving upstream took all come back.
      const viaB = new Set(b.submitted());
      const ids = [...esme.acked].filter(([text]) => viaB.has(text)).map(([, id]) => id);
      await until(() => ids.every((id) => esme.byId().has(id)), 15_000, 'receipts of the second upstream');
      t.diagnostic(`failover: ${esme.acked.size} acked, refused while failing over: ${JSON.stringify(Object.fromEntries(esme.refused))}`);
      esme.close();
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('every upstream down: messages are queued and acknowledged, and delivered with their receipts when one returns', async (t) => {
    const r = await rig(t);
    const esme = new ReconnectingEsme(r.port);
    await esme.sendAll(texts('q', 50), 8);
    assert.equal(esme.acked.size, 50);
    assert.equal(esme.refused.size, 0);
    const from = r.gateway.lines.length;
    const a = await SimProcess.start(r.aggPorts[0], ['--dlr-delay-ms', '20']);
    try {
      await bound(r.gateway, 'aggregator-eu', from);
      assert.equal(await everyReceipt(esme, 20_000), 0);
      assert.deepEqual(a.submitted().sort(), texts('q', 50).sort(), 'each queued message sent once');
      esme.close();
    } finally {
      await a.kill();
    }
  });

  it('kill -9 of the gateway mid-traffic and a restart: every message answered ESME_ROK is delivered upstream and its receipt reaches the ESME', async (t) => {
    const r = await rig(t);
    const flags = ['--dlr-delay-ms', '100', '--resend-ms', '300', '--resend-max', '50', '--early-receipts', '0.2'];
    const a = await SimProcess.start(r.aggPorts[0], flags);
    const b = await SimProcess.start(r.aggPorts[1], flags);
    try {
      await bound(r.gateway, 'aggregator-eu');
      const esme = new ReconnectingEsme(r.port);
      let restarted: Promise<unknown> | undefined;
      await esme.sendAll(texts('k', 600), 32, {}, (n) => {
        if (n === 250) restarted = r.gateway.stop('SIGKILL').then(() => r.start());
      });
      await restarted;
      const upstream = [...a.submitted(), ...b.submitted()];
      const seen = new Set(upstream);
      const lost = [...esme.acked.keys()].filter((x) => !seen.has(x));
      assert.deepEqual(lost, [], 'lost: every message answered ESME_ROK reached an upstream');
      const dupReceipts = await everyReceipt(esme, 30_000);
      const dupSends = upstream.length - seen.size;
      t.diagnostic(`kill -9: ${esme.acked.size} acked, 0 lost, ${dupSends} sent upstream twice (no answer came before the kill), ${dupReceipts} receipts delivered twice; ESME saw ${JSON.stringify(Object.fromEntries(esme.refused))}`);
      esme.close();
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('an upstream that sends receipts on any session of the account and re-sends unanswered ones to whichever bind comes up first, through three kill -9s: every receipt reaches the ESME', async (t) => {
    const r = await rig(t, { oneAccount: true });
    const up = await SimProcess.start(r.aggPorts[0], ['--receipts-on', 'spread', '--dlr-delay-ms', '100', '--resend-ms', '300', '--resend-max', '100', '--early-receipts', '0.2']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      await bound(r.gateway, 'aggregator-eu-2');
      const esme = new ReconnectingEsme(r.port);
      const restarts: Promise<unknown>[] = [];
      await esme.sendAll(texts('a', 900), 32, {}, (n) => {
        if (n === 200 || n === 450 || n === 700) restarts.push(r.gateway.stop('SIGKILL').then(() => r.start()));
      });
      await Promise.all(restarts);
      const seen = new Set(up.submitted());
      const lost = [...esme.acked.keys()].filter((x) => !seen.has(x));
      assert.deepEqual(lost, [], 'every message answered ESME_ROK reached the upstream');
      const twice = await everyReceipt(esme, 60_000);
      t.diagnostic(`any session, 3 kill -9s: ${esme.acked.size} acked, every receipt back (${twice} twice); ESME saw ${JSON.stringify(Object.fromEntries(esme.refused))}`);
      esme.close();
    } finally {
      await up.kill();
    }
  });

  it('an ESME that unbinds with receipts pending gets them when it binds again', async (t) => {
    const r = await rig(t);
    const a = await SimProcess.start(r.aggPorts[0], ['--dlr-delay-ms', '800']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      const first = new ReconnectingEsme(r.port);
      await first.sendAll(texts('u', 30), 8);
      first.close();
      await until(() => a.events.filter((e) => e.ev === 'receipt' && e.acked === true).length >= 30, 10_000, 'the upstream had its receipts answered');
      const again = new ReconnectingEsme(r.port);
      await again.session();
      for (const [text, id] of first.acked) again.acked.set(text, id);
      assert.equal(await everyReceipt(again, 10_000), 0);
      again.close();
    } finally {
      await a.kill();
    }
  });

  it('a reload of gateway.ts mid-traffic loses nothing', async (t) => {
    const r = await rig(t);
    const a = await SimProcess.start(r.aggPorts[0], ['--dlr-delay-ms', '20']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      const esme = new ReconnectingEsme(r.port);
      const from = r.gateway.lines.length;
      let edits = 0;
      await esme.sendAll(texts('r', 400), 16, {}, (n) => {
        if (n % 100 === 50) appendFileSync(path.join(r.dir, 'policies/gateway.ts'), `\n// edit ${++edits}\n`);
      });
      await r.gateway.logged('policy version active', from);
      assert.equal(esme.refused.size, 0, `every submit answered ESME_ROK (${JSON.stringify(Object.fromEntries(esme.refused))})`);
      assert.equal(await everyReceipt(esme, 15_000), 0);
      assert.equal(new Set(a.submitted()).size, 400);
      esme.close();
    } finally {
      await a.kill();
    }
  });

  it('SIGTERM under load: every submit on the wire when it comes is answered (ESME_ROK ones reached the upstream), later ones get ESME_RTHROTTLED until the unbind', async (t) => {
    const r = await rig(t);
    const a = await SimProcess.start(r.aggPorts[0], ['--latency-ms', '20']);
    try {
      await bound(r.gateway, 'aggregator-eu');
      const esme = await TestEsme.bind(r.port);
      const answers: (number | string)[] = [];
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        sends.push(esme.submit(i, { registered_delivery: 0, short_message: Buffer.from(`t${i}`) }).then((x) => void (answers[i] = x.command_status), (e: { code?: string }) => void (answers[i] = e.code ?? 'error')));
        if (i === 100) r.gateway.child.kill('SIGTERM');
        await new Promise((res) => setImmediate(res));
      }
      await Promise.all(sends);
      await r.gateway.stop();
      // The client's window (64) was on the wire when the SIGTERM came; later ones waited in the client.
      const before = answers.slice(0, 64);
      assert.deepEqual([...new Set(before)].filter((x) => x !== 0 && x !== 0x58), [], `answers to what was sent before the SIGTERM: ${JSON.stringify([...new Set(before)])}`);
      // After it, an ESME that keeps sending may have the last ones cut by the unbind (our client closes when it is unbound).
      assert.deepEqual([...new Set(answers)].filter((x) => x !== 0 && x !== 0x58 && x !== 'SESSION_CLOSED'), []);
      const ok = answers.filter((x) => x === 0).length;
      assert.ok(before.filter((x) => x === 0).length > 0, 'what was in flight was taken');
      assert.equal(a.submitted().length, ok, 'each ESME_ROK reached the upstream');
      t.diagnostic(`SIGTERM: ${ok} answered ESME_ROK, ${answers.filter((x) => x === 0x58).length} ESME_RTHROTTLED while stopping, ${answers.filter((x) => x === 'SESSION_CLOSED').length} cut by the unbind (sent after it began)`);
      esme.close();
    } finally {
      await a.kill();
    }
  });

  it('a queued message past its validity_period gives the ESME an EXPIRED receipt', async (t) => {
    const r = await rig(t);
    const esme = new ReconnectingEsme(r.port);
    await esme.sendAll(texts('e', 5), 5, { validity_period: '000000000002000R' });
    assert.equal(await everyReceipt(esme, 15_000, 'EXPIRED'), 0);
    assert.equal(esme.receipts[0]!.state, 3);
    esme.close();
  });
});

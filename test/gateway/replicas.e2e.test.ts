/**
 * Two replicas of the shipped gateway as real processes on one real
 * redis-server, two binds each to one upstream account that spreads its
 * receipts over every session (so most land on a replica other than the
 * one that sent the message, often before its correlation is written there).
 * The ESME binds to one replica; receipts the other replica takes reach it
 * through the held store.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it, type TestContext } from 'node:test';
import { everyReceipt, ReconnectingEsme, texts } from '../helpers/esme';
import { freePort } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';
import { SimProcess } from '../helpers/sim-process';
import { exampleGatewayDir, SluiceProcess } from '../helpers/sluice-process';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const redis = redisForThisFile();

interface Replica {
  port: number;
  proc: SluiceProcess;
  start(): Promise<SluiceProcess>;
}

async function replica(t: TestContext, upstream: number): Promise<Replica> {
  const dir = exampleGatewayDir('sluice-replica-');
  dirs.push(dir);
  const port = await freePort();
  const env = {
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_PORT: String(port),
    SLUICE_ADMIN_LISTEN: `127.0.0.1:${await freePort()}`,
    SLUICE_CACHE_URL: redis.url,
    AGG_PORT: String(upstream),
    AGG2_PORT: String(upstream),
  };
  const r: Replica = {
    port,
    proc: undefined as unknown as SluiceProcess,
    async start() {
      r.proc = SluiceProcess.start('config/example-gateway.yaml', dir, env);
      await r.proc.logged('listening', 0, () => true, 20_000);
      await r.proc.logged('bind state', 0, (l) => l.bind === 'aggregator-eu-2' && l.state === 'bound', 20_000);
      return r.proc;
    },
  };
  t.after(() => r.proc?.stop('SIGKILL'));
  await r.start();
  return r;
}


describe('replicas on one redis-server, an upstream spreading receipts over both', { timeout: 180_000, skip: redisSkip }, () => {
  it('no fault: every receipt reaches the ESME, each deliver_sm answered', async (t) => {
    const upPort = await freePort();
    const up = await SimProcess.start(upPort, ['--receipts-on', 'spread', '--dlr-delay-ms', '0', '--early-receipts', '0.2']);
    try {
      const a = await replica(t, upPort);
      await replica(t, upPort);
      const esme = new ReconnectingEsme(a.port);
      await esme.sendAll(texts('r', 2000), 64);
      assert.equal(esme.acked.size, 2000);
      await everyReceipt(esme, 30_000);
      const refused = up.events.filter((e) => e.ev === 'receipt' && e.acked !== true);
      assert.equal(refused.length, 0, 'every deliver_sm answered ESME_ROK');
      esme.close();
    } finally {
      await up.kill();
    }
  });

  it('the other replica killed -9 mid-run: what it left unanswered the upstream sends again to the survivor, and every receipt reaches the ESME', async (t) => {
    const upPort = await freePort();
    const up = await SimProcess.start(upPort, ['--receipts-on', 'spread', '--dlr-delay-ms', '50', '--resend-ms', '300', '--resend-max', '100', '--early-receipts', '0.2']);
    try {
      const a = await replica(t, upPort);
      const b = await replica(t, upPort);
      const esme = new ReconnectingEsme(a.port);
      let killed: Promise<void> | undefined;
      await esme.sendAll(texts('k', 1500), 32, {}, (n) => {
        if (n === 600) killed = b.proc.stop('SIGKILL');
      });
      await killed;
      await everyReceipt(esme, 60_000);
      t.diagnostic(`replica killed -9: ${esme.acked.size} acked, every receipt back; ESME saw ${JSON.stringify(Object.fromEntries(esme.refused))}`);
      esme.close();
    } finally {
      await up.kill();
    }
  });
});

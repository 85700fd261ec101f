/**
 * Two replicas of the gateway on one shared store (a real redis-server, and
 * one SQLite file), a `single: true` bind held by one of them: an ESME bound
 * to the standby replica has its messages queued there and sent by the
 * holder, and its receipts come back to it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { SmscSimulator } from '../../src/tools/sim';
import { TestEsme } from '../helpers/esme';
import { freePort, sandboxedSetup, until } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';

const GATEWAY = readFileSync(path.resolve(__dirname, '../../../policies/gateway.ts'), 'utf8');
const redis = redisForThisFile();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-replicas-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function replicas(url: () => string, simPort: number): Promise<Sluice[]> {
  const out: Sluice[] = [];
  for (const name of ['r1', 'r2']) {
    const { dir, config } = sandboxedSetup(
      { gateway: GATEWAY },
      {
        cache: { url: url(), lease_ttl_ms: 6000 },
        tenants: [
          {
            id: 'acme',
            policy: 'gateway.ts',
            system_ids: ['acme-app'],
            settings: { esmes: { 'acme-app': 'acme-pw' } },
            binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme', single: true, response_timer_ms: 2000 }],
            routing: { default_chain: ['bind:up', 'queue'] },
            queue: { retry_ms: 100, retry_max_ms: 400 },
          },
        ],
      },
    );
    out.push(await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, replica: name, reconnectBaseMs: 50 }));
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

for (const [name, url, skip] of [
  ['Redis', () => redis.url, redisSkip],
  ['one SQLite file', () => `sqlite://${path.join(tmp, 'shared.sqlite')}`, false],
] as const) {
  describe(`replicas sharing ${name}`, { skip, timeout: 60_000 }, () => {
    it('sends from the standby replica are queued and drained by the holder; receipts come back to the ESME on the standby', async () => {
      const sim = new SmscSimulator({ port: await freePort(), dlrDelayMs: 20 });
      const simPort = await sim.listen();
      const [a, b] = await replicas(url, simPort);
      try {
        await until(() => [a!, b!].some((s) => s.gateway.binds('acme')[0]!.state === 'bound'), 10_000);
        const holder = [a!, b!].find((s) => s.gateway.binds('acme')[0]!.state === 'bound')!;
        const standby = holder === a ? b! : a!;
        assert.equal(standby.gateway.binds('acme')[0]!.state, 'standby');
        const esme = await TestEsme.bind(standby.port);
        const resps = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(i)));
        assert.ok(resps.every((r) => r.command_status === 0), 'queued on the standby replica, acknowledged');
        await until(() => sim.stats.submits >= 20, 15_000);
        await until(() => esme.receipts.length >= 20, 15_000);
        const got = esme.byId();
        for (const r of resps) assert.equal(got.get(String(r.fields.message_id))?.length, 1);
        assert.equal(sim.stats.submits, 20, 'each sent once');
        esme.close();
      } finally {
        await Promise.all([a!.stop(), b!.stop()]);
        await sim.close();
      }
    });
  });
}

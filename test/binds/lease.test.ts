/**
 * `single: true` binds (docs/design.md, "Replicas"): a lease in the shared store lets one
 * replica at a time hold the bind. The lease itself over every store (a Map,
 * one SQLite file opened twice, a real redis-server), then OutboundBinds of
 * two replicas against an upstream that refuses a second bind of the same
 * system_id, then real `sluice start` processes, one of them killed -9.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { OutboundBind, type BindLease } from '../../src/binds/outbound-bind';
import { memoryLeases, type LeaseStore } from '../../src/cache';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { SmscSimulator } from '../../src/tools/sim';
import { realClock } from '../../src/util/clock';
import { sleep, twoReplicas, until, type ReplicaPair } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';
import { SluiceProcess } from '../helpers/sluice-process';

const redis = redisForThisFile();

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'sluice-lease-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


let keys = 0;
const key = (): string => `sluice:lease:test:${process.pid}:${++keys}`;

const stores: { name: string; open: () => Promise<ReplicaPair<LeaseStore>>; skip?: string | false }[] = [
  {
    name: 'memory',
    open: async () => {
      const m = memoryLeases();
      return { a: m, b: m, close: async () => undefined };
    },
  },
  { name: 'one SQLite file, two connections', open: () => twoReplicas(`sqlite://${path.join(tmp(), 'cache.sqlite')}`, (s) => s.leases) },
  { name: 'real redis-server, two clients', open: () => twoReplicas(redis.url, (s) => s.leases), skip: redisSkip },
];

for (const s of stores) {
  describe(`lease store: ${s.name}`, { skip: s.skip ?? false }, () => {
    it('is held by one owner at a time: renewed by its holder, released only by it, taken over once it expires', async () => {
      const { a, b, close } = await s.open();
      try {
        const k = key();
        assert.equal(await a.acquire(k, 'A', 400), true);
        assert.equal(await b.acquire(k, 'B', 400), false);
        assert.equal(await a.acquire(k, 'A', 400), true, 'the holder renews');
        await b.release(k, 'B'); // not B's to give back
        assert.equal(await b.acquire(k, 'B', 400), false);
        await a.release(k, 'A');
        assert.equal(await b.acquire(k, 'B', 200), true, 'released: free at once');
        assert.equal(await a.acquire(k, 'A', 400), false);
        assert.equal(await a.acquire(key(), 'A', 400), true, 'another key is another lease');
        await sleep(300);
        assert.equal(await a.acquire(k, 'A', 400), true, 'expired: anyone may take it');
        assert.equal(await b.acquire(k, 'B', 400), false);
      } finally {
        await close();
      }
    });

    it('goes to exactly one of many owners asking at once', async () => {
      const { a, b, close } = await s.open();
      try {
        for (let round = 0; round < 20; round++) {
          const k = key();
          const won = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).acquire(k, `owner${i}`, 5000)));
          assert.equal(won.filter(Boolean).length, 1, `round ${round}: ${won.join(' ')}`);
        }
      } finally {
        await close();
      }
    });
  });
}

/** A store that can be cut off: while `down`, every call rejects as an unreachable store's would. */
function cuttable(store: LeaseStore): LeaseStore & { down: boolean } {
  return {
    down: false,
    acquire(k, o, t) {
      return this.down ? Promise.reject(new Error('connection refused')) : store.acquire(k, o, t);
    },
    release(k, o) {
      return this.down ? Promise.reject(new Error('connection refused')) : store.release(k, o);
    },
  };
}

function singleBind(port: number): ReturnType<typeof parseConfig> {
  return parseConfig(
    stringify({
      server: { port: 0, session_init_timer_ms: 2000 },
      tenants: [{ id: 'acme', binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw', single: true }] }],
    }),
    { file: 't.yaml', env: {} },
  );
}

function replica(port: number, lease: BindLease): OutboundBind {
  const cfg = singleBind(port);
  return new OutboundBind('acme', cfg.tenants[0]!.binds[0]!, { clock: realClock, logger: silentLogger, server: cfg.server, reconnectBaseMs: 50, lease });
}

describe('OutboundBind, single: true, two replicas on one SQLite file', () => {
  it('one binds, the other waits in standby and takes over when the holder stops; never two at once', async () => {
    const sim = new SmscSimulator({ systemId: 'acme', password: 'pw', oneBindPerSystemId: true });
    const port = await sim.listen();
    const { a, b, close } = await twoReplicas(`sqlite://${path.join(tmp(), 'cache.sqlite')}`, (s) => s.leases);
    const r1 = replica(port, { store: a, owner: 'r1', ttlMs: 1500 });
    const r2 = replica(port, { store: b, owner: 'r2', ttlMs: 1500 });
    try {
      r1.start();
      await until(() => r1.state === 'bound');
      r2.start();
      await sleep(600); // r2 asked at least twice (every 500 ms)
      assert.equal(r2.state, 'standby');
      assert.equal(r2.leaseHeld, false);
      await assert.rejects(r2.request('submit_sm', {}), { code: 'BIND_DOWN', message: /standby/ });
      const r = await r1.request('submit_sm', { destination_addr: '31600000000', short_message: Buffer.from('x') });
      assert.equal(r.command_status, 0);

      // The holder stops: it unbinds, gives the lease back, and r2 binds at its next try.
      const stopped = Date.now();
      await r1.stop();
      await until(() => r2.state === 'bound');
      // At r2's next try (within 500 ms); a lease left to run out would hold it 1000–1500 ms.
      assert.ok(Date.now() - stopped < 900, 'taken at the next try, not after the lease ran out');
      assert.equal(sim.stats.peakBound, 1);
      assert.equal(sim.stats.refusedAlreadyBound, 0);
      assert.equal(sim.stats.binds, 2);
    } finally {
      await Promise.all([r1.stop(), r2.stop()]);
      await close();
      await sim.close();
    }
  });

  it('a holder that cannot reach the store lets the bind go before its lease runs out; the other replica then takes it', async () => {
    const sim = new SmscSimulator({ systemId: 'acme', password: 'pw', oneBindPerSystemId: true });
    const port = await sim.listen();
    const pair = await twoReplicas(`sqlite://${path.join(tmp(), 'cache.sqlite')}`, (s) => s.leases);
    const cut = cuttable(pair.a);
    const r1 = replica(port, { store: cut, owner: 'r1', ttlMs: 1000 });
    const r2 = replica(port, { store: pair.b, owner: 'r2', ttlMs: 1000 });
    const r1States: string[] = [];
    r1.on('state', (e) => r1States.push(e.state));
    try {
      r1.start();
      await until(() => r1.state === 'bound');
      r2.start();
      await until(() => r2.state === 'standby');
      cut.down = true;
      // r1 keeps the bind while its lease lasts, then goes to standby at nine tenths of it.
      await sleep(300);
      assert.equal(r1.state, 'bound');
      await until(() => r1.state === 'standby', 3000);
      await until(() => r2.state === 'bound', 3000);
      assert.equal(sim.stats.peakBound, 1, 'never two binds at once');
      assert.equal(sim.stats.refusedAlreadyBound, 0);
      // The store comes back: r1 finds the lease taken and stays in standby.
      cut.down = false;
      await sleep(800);
      assert.equal(r1.state, 'standby');
      assert.equal(r2.state, 'bound');
      assert.deepEqual(r1States.slice(0, 5), ['standby', 'connecting', 'binding', 'bound', 'standby']);
    } finally {
      await Promise.all([r1.stop(), r2.stop()]);
      await pair.close();
      await sim.close();
    }
  });

  it('a bind that is not single takes no lease', async () => {
    const sim = new SmscSimulator();
    const port = await sim.listen();
    const cfg = singleBind(port);
    const taken: string[] = [];
    const store: LeaseStore = {
      acquire: async (k) => {
        taken.push(k);
        return true;
      },
      release: async () => undefined,
    };
    const b = new OutboundBind('acme', { ...cfg.tenants[0]!.binds[0]!, single: false }, { clock: realClock, logger: silentLogger, server: cfg.server, lease: { store, owner: 'r1', ttlMs: 300 } });
    try {
      b.start();
      await until(() => b.state === 'bound');
      assert.deepEqual(taken, []);
      assert.equal(b.leaseHeld, false);
    } finally {
      await b.stop();
      await sim.close();
    }
  });
});

/** Two `sluice start` processes with one single bind to one upstream; the holder is killed -9. */
async function failover(cacheUrl: (dir: string) => string): Promise<void> {
  const sim = new SmscSimulator({ systemId: 'acme', password: 'pw', oneBindPerSystemId: true });
  const port = await sim.listen();
  const dir = tmp();
  const file = path.join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      server: { bind_address: '127.0.0.1', port: 0 },
      cache: { url: cacheUrl(dir), lease_ttl_ms: 1500 },
      sandbox: { processes: 1 },
      admin: { listen: '127.0.0.1:0', token: 'root' },
      tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw', single: true }] }],
    }),
  );
  const bound = (l: Record<string, unknown>): boolean => l.state === 'bound';
  const p1 = SluiceProcess.start(file, dir);
  let p2: SluiceProcess | undefined;
  try {
    await p1.logged('bind state', 0, bound);
    p2 = SluiceProcess.start(file, dir);
    const started = await p2.logged('sluice started');
    await p2.logged('bind state', 0, (l) => l.state === 'standby');
    const metrics = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${String(started.adminPort)}/metrics`, { headers: { authorization: 'Bearer root' } })).text();
    assert.match(await metrics(), /sluice_bind_state\{tenant="acme",bind="up",state="standby"\} 1/);
    await sleep(1600); // a whole lease: p2 asked several times and was refused each time
    assert.equal(p2.lines.some(bound), false, 'the standby replica did not bind while the holder lived');
    const killed = Date.now();
    await p1.stop('SIGKILL');
    await p2.logged('bind state', 0, bound);
    const took = Date.now() - killed;
    // It waits for the lease to run out (1.5 s), and tries every 0.5 s.
    assert.ok(took >= 900 && took < 5000, `took over after ${took} ms`);
    await until(() => sim.boundSessions === 1);
    assert.match(await metrics(), /sluice_bind_state\{tenant="acme",bind="up",state="bound"\} 1/);
    assert.match(await metrics(), /sluice_bind_state\{tenant="acme",bind="up",state="standby"\} 0/);
    assert.equal(sim.stats.peakBound, 1);
    assert.equal(sim.stats.refusedAlreadyBound, 0);
  } finally {
    await p1.stop('SIGKILL');
    await p2?.stop();
    await sim.close();
  }
}

describe('single: true across real sluice processes', () => {
  it('SQLite (two processes on one host): the holder is killed -9, the other binds once its lease runs out', { timeout: 30_000 }, () =>
    failover((dir) => `sqlite://${path.join(dir, 'cache.sqlite')}`),
  );

  it('Redis (the shared store of a cluster): the holder is killed -9, the other binds once its lease runs out', { timeout: 30_000, skip: redisSkip }, () =>
    failover(() => redis.url),
  );
});

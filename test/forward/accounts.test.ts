/**
 * Receipts as real upstreams send them: on any session of the account, not
 * the one that carried the message; to a tenant over its CPU budget; and
 * kept in wall-clock time, so a queued message expires on time after a
 * restart and replicas with different uptimes agree. The shipped gateway
 * policy in the real sandbox, in-process simulators over loopback TCP.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore } from '../../src/cache';
import { MSG_OUT } from '../../src/cache/forward-store';
import { silentLogger } from '../../src/log/logger';
import { bytesToJson } from '../../src/util/json-bytes';
import { startSluice, type Sluice } from '../../src/runtime';
import { realClock, type Clock } from '../../src/util/clock';
import { SmscSimulator, type SimOptions } from '../../src/tools/sim';
import { TestEsme } from '../helpers/esme';
import { memoryForward } from '../../src/cache/forward-memory';
import { ForwardStore, MSG_SENT } from '../../src/cache/forward-store';
import { freePort, sandboxedSetup, startGateway, testConfig, until } from '../helpers/harness';
import { STATUS } from '../../src/wire/status';

const GATEWAY = readFileSync(path.resolve(__dirname, '../../../policies/gateway.ts'), 'utf8');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * The real clock as a process that has been up `uptimeMs` sees it (its
 * monotonic time starts there), with its wall clock `wallShiftMs` off.
 */
function clockOf(uptimeMs: number, wallShiftMs = 0): Clock {
  return {
    now: () => realClock.now() + uptimeMs,
    wall: () => realClock.wall() + wallShiftMs,
    setTimeout: (fn, ms) => realClock.setTimeout(fn, ms),
    clearTimeout: (h) => realClock.clearTimeout(h),
  };
}

interface Setup {
  dir: string;
  start(clock?: Clock): Promise<Sluice>;
}

/** The gateway policy with `binds` (each on one of `ports`, all as system_id "acme" unless given), on a SQLite journal in a temp dir. */
function setup(policy: string, binds: Record<string, unknown>[], tenant: Record<string, unknown> = {}): Setup {
  const { dir, config } = sandboxedSetup(
    { gateway: policy },
    {
      cache: { url: 'sqlite://journal.sqlite' },
      tenants: [
        {
          id: 'acme',
          policy: 'gateway.ts',
          system_ids: ['acme-app'],
          settings: { esmes: { 'acme-app': 'acme-pw' } },
          binds: binds.map((b) => ({ host: '127.0.0.1', system_id: 'acme', window: 64, response_timer_ms: 2000, ...b })),
          routing: { default_chain: [...binds.map((b) => `bind:${String(b.name)}`), 'queue'] },
          queue: { retry_ms: 100, retry_max_ms: 500 },
          ...tenant,
        },
      ],
    },
  );
  dirs.push(dir);
  return { dir, start: (clock) => startSluice({ config, logger: silentLogger, cwd: dir, watch: false, reconnectBaseMs: 50, clock }) };
}

async function sim(o: SimOptions = {}): Promise<SmscSimulator> {
  const s = new SmscSimulator({ port: await freePort(), dlrDelayMs: 20, ...o });
  await s.listen();
  return s;
}

/** `n` submits on `esme`, each answered ESME_ROK; resolves with our ids once every one's receipt reached it. */
async function everyReceipt(esme: TestEsme, n: number, ms: number): Promise<string[]> {
  const resps = await Promise.all(Array.from({ length: n }, (_, i) => esme.submit(i)));
  assert.deepEqual([...new Set(resps.map((r) => r.command_status))], [0]);
  const ids = resps.map((r) => String(r.fields.message_id));
  await until(() => ids.every((id) => esme.byId().has(id)), ms, 'every receipt');
  return ids;
}

const boundBinds = (s: Sluice, n: number): Promise<void> =>
  until(() => s.gateway.binds('acme').filter((b) => b.state === 'bound').length >= n, 5000, `${n} binds up`);

describe('receipts per upstream account', () => {
  it('an upstream that sends every receipt on another session of the account: all come back, each deliver_sm answered ESME_ROK', { timeout: 60_000 }, async () => {
    const up = await sim({ receiptsOn: 'other' });
    const x = setup(GATEWAY, [
      { name: 'agg-1', port: up.port },
      { name: 'agg-2', port: up.port },
    ]);
    const s = await x.start();
    try {
      await boundBinds(s, 2);
      const esme = await TestEsme.bind(s.port);
      const n = 1000;
      const ids: string[] = [];
      for (let k = 0; k < n; k += 100) {
        for (const r of await Promise.all(Array.from({ length: 100 }, (_, i) => esme.submit(k + i)))) {
          assert.equal(r.command_status, 0);
          ids.push(String(r.fields.message_id));
        }
      }
      await until(() => esme.byId().size >= n, 20_000, 'every receipt').catch(() => undefined);
      const got = esme.byId();
      const missing = ids.filter((id) => !got.has(id));
      assert.deepEqual(missing.length, 0, `${missing.length} of ${n} receipts missing`);
      assert.ok(up.stats.rerouted >= n * 0.9, `receipts came on the other session (${up.stats.rerouted} rerouted)`);
      await until(() => up.stats.dlrsAcked >= n, 5000, 'every deliver_sm answered ESME_ROK');
      assert.equal(up.stats.gaveUp, 0);
      assert.equal(s.gateway.forwarder.count('acme').receiptsUnmatched, 0);
      esme.close();
    } finally {
      await s.stop();
      await up.close();
    }
  });

  it('receipts, some before their submit_sm_resp, spread over every session and re-sent until answered: each reaches the ESME', { timeout: 60_000 }, async () => {
    const up = await sim({ receiptsOn: 'spread', earlyReceiptRate: 0.3, resendUnansweredMs: 200, duplicateReceiptRate: 0.1 });
    const x = setup(GATEWAY, [
      { name: 'agg-1', port: up.port },
      { name: 'agg-2', port: up.port },
      { name: 'agg-3', port: up.port },
    ]);
    const s = await x.start();
    try {
      await boundBinds(s, 3);
      const esme = await TestEsme.bind(s.port);
      await everyReceipt(esme, 300, 20_000);
      assert.ok(up.stats.early > 0, 'some receipts came before their response');
      assert.equal(up.stats.gaveUp, 0);
      esme.close();
    } finally {
      await s.stop();
      await up.close();
    }
  });

  it('a tenant over its CPU budget: its new submits are throttled, but every receipt for what it had accepted is taken and delivered', { timeout: 60_000 }, async () => {
    // Each submit spends ~2 ms of a 10 ms/s budget: the tenant is over it most of the time.
    const spender = GATEWAY.replace(
      'function submit(',
      'function spend(): void { const end = Date.now() + 2; while (Date.now() < end); }\nfunction submit(',
    ).replace('const status = refuse(pdu);', 'spend();\n  const status = refuse(pdu);');
    // Both edits took: spend() defined, and called in submit (a call without its definition would throw, answering ESME_RSYSERR).
    assert.equal(spender.split('function spend()').length - 1, 1);
    assert.equal(spender.split('spend();\n  const status = refuse(pdu);').length - 1, 1);
    const up = await sim({ dlrDelayMs: 50 });
    const x = setup(spender, [{ name: 'agg-1', port: up.port }], { limits: { cpu_ms_per_s: 10 } });
    const s = await x.start();
    try {
      await boundBinds(s, 1);
      const esme = await TestEsme.bind(s.port);
      const acked: string[] = [];
      let throttled = 0;
      const statuses = new Set<number>();
      for (let round = 0; round < 20; round++) {
        for (const r of await Promise.all(Array.from({ length: 5 }, (_, i) => esme.submit(round * 5 + i)))) {
          if (r.command_status === 0) acked.push(String(r.fields.message_id));
          else {
            throttled++;
            statuses.add(r.command_status);
          }
        }
      }
      assert.deepEqual([...statuses], [STATUS.ESME_RTHROTTLED], "the budget throttled new submits");
      assert.ok(acked.length > 0);
      await until(() => acked.every((id) => esme.byId().has(id)), 15_000, 'a receipt for every accepted message').catch(() => undefined);
      const missing = acked.filter((id) => !esme.byId().has(id));
      assert.equal(missing.length, 0, `${missing.length} of ${acked.length} receipts missing`);
      assert.equal(up.stats.gaveUp, 0, 'no deliver_sm refused');
      esme.close();
    } finally {
      await s.stop();
      await up.close();
    }
  });
});

describe('receipts whose policy cannot run', () => {
  for (const [how, line] of [
    ['throws', "if (pdu.isDlr) throw new Error('receipt handler broken');"],
    ['spins past handler_timeout_ms', 'if (pdu.isDlr) for (;;);'],
  ] as const) {
    it(`a receipt handler that ${how}: the core delivers each receipt of a message in its journal and answers the upstream ESME_ROK`, { timeout: 60_000 }, async () => {
      const broken = GATEWAY.replace('  if (pdu.isDlr) return smpp.forward(pdu);', `  ${line}`);
      assert.notEqual(broken, GATEWAY);
      const up = await sim();
      const x = setup(broken, [{ name: 'agg-1', port: up.port }]);
      const s = await x.start();
      try {
        await boundBinds(s, 1);
        const esme = await TestEsme.bind(s.port);
        await everyReceipt(esme, 40, 20_000);
        await until(() => up.stats.dlrsAcked >= 40, 5000, 'every deliver_sm answered ESME_ROK');
        assert.equal(up.stats.gaveUp, 0);
        esme.close();
      } finally {
        await s.stop();
        await up.close();
      }
    });
  }
});

describe('receipts.by: core', () => {
  it('receipts are correlated by the core without the policy; its deliver_sm handler sees MO only', { timeout: 60_000 }, async () => {
    // A receipt handler that would refuse them all: they must not reach it.
    const refusing = GATEWAY.replace('  if (pdu.isDlr) return smpp.forward(pdu);', "  if (pdu.isDlr) return pdu.reply({ command_status: 'ESME_RSYSERR' });");
    assert.notEqual(refusing, GATEWAY);
    const up = await sim({ moEveryMs: 100, moTo: '4470999' });
    const x = setup(refusing, [{ name: 'agg-1', port: up.port }], { receipts: { by: 'core' }, settings: { esmes: { 'acme-app': 'acme-pw' }, mo_default: 'acme-app' } });
    const s = await x.start();
    try {
      await boundBinds(s, 1);
      const esme = await TestEsme.bind(s.port);
      await everyReceipt(esme, 100, 15_000);
      await until(() => esme.mo.length >= 3, 5000, 'MO through the policy');
      assert.equal(up.stats.gaveUp, 0);
      esme.close();
    } finally {
      await s.stop();
      await up.close();
    }
  });
});

describe('wall-clock time in the journal', () => {
  it('messages queued by a gateway that had run for days expire on time after a restart with a fresh uptime', { timeout: 60_000 }, async (t) => {
    const port = await freePort(); // no upstream listens: every message is queued
    const x = setup(GATEWAY, [{ name: 'agg-1', port }], { queue: { retry_ms: 100, retry_max_ms: 500, expiry_ms: 3000 } });
    const first = await x.start(clockOf(4 * 86_400_000));
    const esme = await TestEsme.bind(first.port);
    const resps = await Promise.all(Array.from({ length: 5 }, (_, i) => esme.submit(i)));
    const sentAt = Date.now();
    assert.ok(resps.every((r) => r.command_status === 0), 'queued and acknowledged');
    esme.close();
    await first.stop();
    const second = await x.start(clockOf(0));
    try {
      const back = await TestEsme.bind(second.port);
      await until(() => back.receipts.length >= 5, 15_000, 'EXPIRED receipts');
      const late = Date.now() - sentAt;
      assert.ok(back.receipts.every((r) => r.stat === 'EXPIRED'));
      // Due at 3 s by the wall clock; before, due times were the first process's uptime (4 days).
      assert.ok(late < 10_000, `EXPIRED ${late} ms after submission, expiry_ms 3000`);
      t.diagnostic(`EXPIRED receipts ${late} ms after submission (expiry_ms 3000), across a restart from 4 days of uptime to none`);
      back.close();
    } finally {
      await second.stop();
    }
  });

  it('two replicas on one journal with different uptimes: the one up for days sweeps none of what the fresh one wrote', { timeout: 60_000 }, async () => {
    const up = await sim({ dlrDelayMs: 1500 });
    const x = setup(GATEWAY, [{ name: 'agg-1', port: up.port }]);
    const fresh = await x.start(clockOf(0));
    const old = await x.start(clockOf(4 * 86_400_000, 1500));
    try {
      await boundBinds(fresh, 1);
      await boundBinds(old, 1);
      const esme = await TestEsme.bind(fresh.port);
      const resps = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(i)));
      const ids = resps.map((r) => String(r.fields.message_id));
      // The old replica sweeps before any receipt came: every correlation must survive it.
      await old.gateway.forwarder.sweepNow();
      await until(() => ids.every((id) => esme.byId().has(id)), 15_000, 'every receipt after the sweep');
      esme.close();
    } finally {
      await Promise.all([fresh.stop(), old.stop()]);
      await up.close();
    }
  });
});

describe('the receipt outbox', () => {
  it("receipts a process left in its outbox when it died are delivered by another; a live process's are left to it", { timeout: 30_000 }, async () => {
    const x = setup(GATEWAY, [{ name: 'agg-1', port: await freePort() }]);
    const s = await x.start();
    const other = await CacheStore.open(`sqlite://${path.join(x.dir, 'journal.sqlite')}`);
    try {
      // Another replica that is alive (it holds its liveness lease), and one that died.
      assert.equal(await other.leases.acquire('sluice:alive:live-replica', 'live-replica', 60_000), true);
      const now = Date.now();
      const out = (id: string, own: string) => {
        const fields = { source_addr: '31612345678', destination_addr: '4412345', esm_class: 4, data_coding: 0, receipted_message_id: id, message_state: 2, short_message: Buffer.from(`id:${id} sub:001 dlvrd:001 submit date:2612041200 done date:2612041200 stat:DELIVRD err:000 text:`, 'latin1') };
        const data = JSON.stringify({ sys: 'acme-app', sid: 'a-session-long-gone', id, f: bytesToJson(fields), own });
        return { t: 'put' as const, row: { key: `acme/${id}/r/1`, tenant: 'acme', up: null, state: MSG_OUT, due: now - 1, expires: now + 60_000, created: now - 20_000, route: 'acme-app', data } };
      };
      await other.forward.write([out('DEAD0001', 'dead-replica'), out('LIVE0001', 'live-replica')]);
      const esme = await TestEsme.bind(s.port);
      await until(() => esme.byId().has('DEAD0001'), 5000, "the dead replica's receipt");
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(esme.byId().has('LIVE0001'), false, "a live replica's receipt is left to it");
      // It stops (its lease given back): its receipt is taken over at its next due time.
      await other.leases.release('sluice:alive:live-replica', 'live-replica');
      await until(() => esme.byId().has('LIVE0001'), 15_000, "the stopped replica's receipt");
      assert.equal(esme.byId().get('DEAD0001')!.length, 1, 'delivered once');
      esme.close();
    } finally {
      await other.close();
      await s.stop();
    }
  });
});

describe('journal rows from before accounts', () => {
  it('a message correlated by bind name (as written before receipts were keyed per account) is still found by its receipt', async () => {
    const forward = new ForwardStore(memoryForward());
    const config = testConfig({ tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port: 9, system_id: 'acme' }] }] });
    const h = await startGateway({ config, forward });
    try {
      const now = Date.now();
      const data = { sys: 'acme-app', sid: 'gone', id: 'OLD00001', cmd: 'submit_sm', src: '4412345', dst: '31612345678', rd: 1, at: now, exp: now + 60_000, n: 1, bind: 'up', uid: '1A2B' };
      await forward.write([{ t: 'put', row: { key: 'acme/OLD00001', tenant: 'acme', up: 'acme/up/x1a2b', state: MSG_SENT, due: 0, expires: now + 60_000, created: now, route: null, data: JSON.stringify(data) } }]);
      const got: string[] = [];
      const esme = await h.esme('acme-app');
      esme.session.on('request', (pdu) => got.push(Buffer.from(pdu.fields.short_message as Buffer).toString('latin1')));
      const fields = { esm_class: 4, short_message: Buffer.from('id:1a2b sub:001 dlvrd:001 submit date:2612041200 done date:2612041200 stat:DELIVRD err:000 text:', 'latin1') };
      const r = await h.gateway.forwarder.forward('acme', { command: 'deliver_sm', fields, session: { kind: 'bind', sessionId: 'b1', systemId: 'acme', clientAddr: '127.0.0.1:9', bind: 'up' } });
      assert.equal(r.matched, true);
      await until(() => got.length === 1, 5000, 'the receipt at the ESME');
      assert.match(got[0]!, /^id:OLD00001 .*stat:DELIVRD/);
    } finally {
      await h.close();
    }
  });
});

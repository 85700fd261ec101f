/**
 * Stopping the gateway (SIGTERM in `sluice start`) while ESMEs are still
 * bound: they are unbound and stop() returns. The listeners' close waits for
 * their connections, so it must not be awaited before the sessions end.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { memoryLeases } from '../../src/cache';
import { STOP_GRACE_MS } from '../../src/gateway';
import { SmscSimulator } from '../../src/tools/sim';
import { ManualClock } from '../../src/util/clock';
import { bindBody, RawPeer, rawPdu, sleep, startGateway, testConfig, until } from '../helpers/harness';


describe('gateway stop', () => {
  it('unbinds ESMEs that are still bound, ends their connections, takes no new ones, and returns', { timeout: 10_000 }, async () => {
    const h = await startGateway();
    const a = await h.esme('acme-app');
    const b = await h.esme('globex-app');
    const unbound = (c: typeof a): Promise<void> => new Promise((resolve) => c.session.once('unbind', () => resolve()));
    const closed = (c: typeof a): Promise<void> => new Promise((resolve) => c.session.once('close', () => resolve()));
    const seen = Promise.all([unbound(a), unbound(b), closed(a), closed(b)]);
    await h.gateway.stop();
    await seen;
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = net.connect(h.port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });
});

describe('gateway stop, a peer that never answers its unbind', () => {
  it(`is closed after ${STOP_GRACE_MS} ms, not response_timer_ms; the stop then returns`, { timeout: 10_000 }, async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock });
    const p = await RawPeer.connect(h.port);
    p.write(rawPdu(0x09, 1, bindBody('acme-app')));
    assert.equal((await p.read())!.status, 0);
    let stopped = false;
    const stopping = h.gateway.stop().then(() => (stopped = true));
    const unbind = await p.read();
    assert.equal(unbind!.id, 0x06, 'the peer got an unbind');
    // It does not answer. Just short of the grace, the stop still waits.
    clock.advance(STOP_GRACE_MS - 1);
    await sleep(20);
    assert.equal(stopped, false);
    clock.advance(1);
    await stopping;
    assert.equal(await p.waitClosed(), true);
  });
});

describe('outbound binds marked single', () => {
  it('are held by one gateway of those sharing a lease store; the other shows standby and takes over when the holder stops', async () => {
    const sim = new SmscSimulator({ oneBindPerSystemId: true });
    const port = await sim.listen();
    const config = testConfig({
      cache: { url: 'memory://', lease_ttl_ms: 300 },
      tenants: [{ id: 'acme', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw', single: true }] }],
    });
    const leases = memoryLeases();
    const a = await startGateway({ config, leases, replica: 'replica-a', record: true });
    const b = await startGateway({ config, leases, replica: 'replica-b' });
    const state = (h: typeof a): string | undefined => h.gateway.binds('acme')[0]?.state;
    try {
      await until(() => state(a) === 'bound');
      assert.equal(state(b), 'standby');
      assert.equal(a.logs().find((l) => l.msg === 'lease taken')?.owner, 'replica-a');
      await a.close();
      await until(() => state(b) === 'bound');
      assert.equal(sim.stats.peakBound, 1);
      assert.equal(sim.stats.refusedAlreadyBound, 0);
    } finally {
      await a.close();
      await b.close();
      await sim.close();
    }
  });
});

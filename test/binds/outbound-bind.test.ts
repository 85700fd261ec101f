import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Backoff, RECONNECT_CAP_MS } from '../../src/util/backoff';
import { OutboundBind, type BindStateEvent } from '../../src/binds/outbound-bind';
import { parseConfig } from '../../src/config/load';
import type { OutboundBindConfig } from '../../src/config/schema';
import { silentLogger } from '../../src/log/logger';
import { SmscSimulator } from '../../src/tools/sim';
import { ManualClock, realClock } from '../../src/util/clock';
import { freePort, sleep, until } from '../helpers/harness';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/tls');

function bindConfig(port: number, extra: Record<string, unknown> = {}): { bind: OutboundBindConfig; server: ReturnType<typeof parseConfig>['server'] } {
  const cfg = parseConfig(
    stringify({
      server: { port: 0, session_init_timer_ms: 2000 },
      tenants: [{ id: 'acme', binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw', ...extra }] }],
    }),
    { file: 't.yaml', env: {}, cwd: FIXTURES },
  );
  return { bind: cfg.tenants[0]!.binds[0]!, server: cfg.server };
}



describe('Backoff', () => {
  it('doubles from the base, is capped at 60 s, and resets', () => {
    const b = new Backoff({ baseMs: 1000, maxMs: RECONNECT_CAP_MS, random: () => 1 });
    const seen = Array.from({ length: 9 }, () => b.next());
    assert.deepEqual(seen, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    b.reset();
    assert.equal(b.next(), 1000);
  });

  it('jitters within [50%, 100%] of the step', () => {
    const low = new Backoff({ baseMs: 1000, maxMs: 60_000, random: () => 0 });
    assert.deepEqual([low.next(), low.next()], [500, 1000]);
    const b = new Backoff({ baseMs: 1000, maxMs: 60_000 });
    for (let i = 0; i < 20; i++) assert.ok(b.next() <= 60_000);
  });
});

describe('OutboundBind', () => {
  it('binds as configured: bind_type, credentials, interface_version 0x34', async () => {
    const sim = new SmscSimulator({ systemId: 'acme', password: 'pw' });
    const port = await sim.listen();
    const seen: Record<string, unknown>[] = [];
    const orig = (sim as unknown as { onRequest: (s: unknown, p: { command: string; fields: Record<string, unknown> }) => void }).onRequest.bind(sim);
    (sim as unknown as { onRequest: typeof orig }).onRequest = (s, p) => {
      seen.push({ command: p.command, ...p.fields });
      orig(s, p);
    };
    const { bind, server } = bindConfig(port, { bind_type: 'transmitter' });
    const b = new OutboundBind('acme', bind, { clock: realClock, logger: silentLogger, server });
    b.start();
    await until(() => b.state === 'bound');
    assert.equal(seen[0]!.command, 'bind_transmitter');
    assert.equal(seen[0]!.interface_version, 0x34);
    assert.equal(seen[0]!.system_id, 'acme');
    assert.equal(seen[0]!.password, 'pw');
    const r = await b.request('submit_sm', { destination_addr: '31600000000', short_message: Buffer.from('x') });
    assert.equal(r.command_status, 0);
    await b.stop();
    await sim.close();
  });

  it('reconnects with exponential backoff capped at 60 s, reset after a healthy session', async () => {
    const clock = new ManualClock();
    const port = await freePort();
    const { bind, server } = bindConfig(port);
    const events: BindStateEvent[] = [];
    const b = new OutboundBind('acme', bind, { clock, logger: silentLogger, server, random: () => 1, reconnectBaseMs: 1000, healthyAfterMs: 30_000 });
    b.on('state', (e) => events.push(e));
    b.start();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      await until(() => b.state === 'backoff');
      delays.push(events.at(-1)!.retryInMs!);
      clock.advance(events.at(-1)!.retryInMs!);
      assert.equal(b.state, 'connecting');
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);

    // The upstream comes back: the next attempt binds.
    const sim = new SmscSimulator({ port });
    await sim.listen();
    await until(() => b.state === 'bound' || b.state === 'backoff');
    if (b.state === 'backoff') {
      clock.advance(events.at(-1)!.retryInMs!);
      await until(() => b.state === 'bound');
    }
    // A short session does not reset the backoff...
    sim.dropAll();
    await until(() => b.state === 'backoff');
    assert.equal(events.at(-1)!.retryInMs, 60000);
    clock.advance(60000);
    await until(() => b.state === 'bound');
    // ...a healthy one does.
    clock.advance(30_000);
    await until(() => b.state === 'bound');
    sim.dropAll();
    await until(() => b.state === 'backoff');
    assert.equal(events.at(-1)!.retryInMs, 1000);
    await b.stop();
    await sim.close();
  });

  it('fails requests with BIND_DOWN while not bound, and settles in-flight requests when the session drops', async () => {
    const sim = new SmscSimulator({ latencyMs: 10_000 });
    const port = await sim.listen();
    const { bind, server } = bindConfig(port);
    const b = new OutboundBind('acme', bind, { clock: realClock, logger: silentLogger, server, reconnectBaseMs: 50 });
    await assert.rejects(b.request('submit_sm', {}), { code: 'BIND_DOWN' });
    b.start();
    await until(() => b.state === 'bound');
    const inflight = b.request('submit_sm', { short_message: Buffer.from('x') });
    await sleep(20);
    sim.dropAll();
    await assert.rejects(inflight, { code: 'SESSION_CLOSED' });
    await until(() => b.state === 'bound');
    await b.stop();
    await sim.close();
  });

  it('times out a request the SMSC never answers with TIMEOUT', async () => {
    const sim = new SmscSimulator({ latencyMs: 5_000 });
    const port = await sim.listen();
    const { bind, server } = bindConfig(port, { response_timer_ms: 100 });
    const b = new OutboundBind('acme', bind, { clock: realClock, logger: silentLogger, server });
    b.start();
    await until(() => b.state === 'bound');
    await assert.rejects(b.request('submit_sm', { short_message: Buffer.from('x') }), { code: 'TIMEOUT' });
    await b.stop();
    await sim.close();
  });

  it('max_msg_per_sec only delays submits; THROTTLED when the delay would pass the response timer', async () => {
    const sim = new SmscSimulator();
    const port = await sim.listen();
    const clock = new ManualClock();
    const { bind, server } = bindConfig(port, { max_msg_per_sec: 10, response_timer_ms: 1000 });
    const b = new OutboundBind('acme', bind, { clock, logger: silentLogger, server });
    b.start();
    await until(() => b.state === 'bound');
    const done: number[] = [];
    const ps = Array.from({ length: 15 }, (_, i) => b.request('submit_sm', { short_message: Buffer.from('x') }).then(() => done.push(i)));
    for (let i = 0; i < 400 && done.length < 10; i++) await sleep(5);
    await sleep(50);
    assert.equal(done.length, 10, 'the burst goes at once, the rest wait for the clock');
    clock.advance(500);
    await Promise.all(ps);
    assert.equal(done.length, 15, 'the rest follow as tokens refill');
    const burst = Array.from({ length: 12 }, () => b.request('submit_sm', {}).catch((e: { code: string }) => e.code));
    const codes = await Promise.race([Promise.all(burst), sleep(50).then(() => 'pending')]);
    assert.equal(codes, 'pending');
    clock.advance(2000);
    const results = await Promise.all(burst);
    assert.ok(results.includes('THROTTLED'));
    await b.stop();
    await sim.close();
  });

  it('TLS: every reconnect attempt is TLS again (a new session each time)', async () => {
    const sim = new SmscSimulator({ tls: { cert: readFileSync(path.join(FIXTURES, 'server.crt')), key: readFileSync(path.join(FIXTURES, 'server.key')) } });
    const port = await sim.listen();
    const { bind, server } = bindConfig(port, { tls: { ca_path: 'server.crt', servername: 'localhost' } });
    const b = new OutboundBind('acme', { ...bind, tls: { ...(bind.tls as object), ca_path: path.join(FIXTURES, 'server.crt') } as typeof bind.tls }, {
      clock: realClock,
      logger: silentLogger,
      server,
      reconnectBaseMs: 20,
    });
    b.start();
    await until(() => b.state === 'bound');
    const first = b.sessionId;
    sim.dropAll();
    await until(() => b.state !== 'bound');
    await until(() => b.state === 'bound');
    assert.notEqual(b.sessionId, first);
    assert.equal(sim.accepted, 2, 'both connections were TLS handshakes the TLS server accepted');
    assert.equal((await b.request('submit_sm', { short_message: Buffer.from('x') })).command_status, 0);
    await b.stop();
    await sim.close();
  });
});

/**
 * An upstream that accepts TCP and refuses every bind (ESME_RBINDFAIL) for
 * minutes, against a real OutboundBind on a manual clock over real loopback
 * sockets: the reconnect delay ramps to the 60 s cap and stays there,
 * jittered, one connection at a time, each closed by us; when the upstream
 * takes binds again, the bind is up within one capped delay.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { RECONNECT_CAP_MS } from '../../src/util/backoff';
import { OutboundBind } from '../../src/binds/outbound-bind';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { ManualClock } from '../../src/util/clock';
import { onFrames, rawPdu, sleep, until } from '../helpers/harness';

const ESME_RBINDFAIL = 0x0d;


/**
 * An upstream that answers bind_* with ESME_RBINDFAIL (a bare header) and
 * leaves the close to the client, until `accept` is set; answers unbind and
 * enquire_link. Each connection's open and close is stamped on `now`.
 */
class RefusingSmsc {
  accept = false;
  readonly conns: { openedAt: number; closedAt?: number; openAtOnce: number }[] = [];
  private open = 0;
  private readonly server = net.createServer((s) => this.onConnection(s));

  constructor(private readonly now: () => number) {}

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  private onConnection(s: net.Socket): void {
    const c: (typeof this.conns)[number] = { openedAt: this.now(), openAtOnce: ++this.open };
    this.conns.push(c);
    onFrames(s, (id, seq) => {
      if (id === 0x01 || id === 0x02 || id === 0x09) {
        const body = this.accept ? Buffer.from('smsc\0', 'latin1') : Buffer.alloc(0);
        s.write(rawPdu(0x80000000 | id, seq, body, { status: this.accept ? 0 : ESME_RBINDFAIL }));
      } else if (id === 0x06 || id === 0x15) s.write(rawPdu(0x80000000 | id, seq));
    });
    s.on('error', () => {});
    s.on('close', () => {
      c.closedAt = this.now();
      this.open--;
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

function bindConfig(port: number): { bind: ReturnType<typeof parseConfig>['tenants'][number]['binds'][number]; server: ReturnType<typeof parseConfig>['server'] } {
  const cfg = parseConfig(
    stringify({ server: { port: 0, session_init_timer_ms: 2000 }, tenants: [{ id: 'acme', binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme', password: 'pw' }] }] }),
    { file: 't.yaml', env: {} },
  );
  return { bind: cfg.tenants[0]!.binds[0]!, server: cfg.server };
}

describe('an upstream that refuses every bind for minutes', () => {
  it('the reconnect delay doubles to the 60 s cap and holds there (each within [30 s, 60 s], never above), one connection at a time, each closed by us; binds within one capped delay once accepted', async (t) => {
    const clock = new ManualClock();
    const smsc = new RefusingSmsc(() => clock.now());
    const port = await smsc.listen();
    const { bind, server } = bindConfig(port);
    // The production defaults: base 1 s, Math.random jitter.
    const b = new OutboundBind('acme', bind, { clock, logger: silentLogger, server });
    const retries: number[] = [];
    const reasons = new Set<string>();
    b.on('state', (e) => {
      if (e.state !== 'backoff') return;
      retries.push(e.retryInMs!);
      reasons.add(String(e.reason));
    });
    const SIMULATED_MS = 12 * 60_000;
    // 1 ms: the clock stops on each attempt's due time, so the gaps measured are the delays taken.
    const TICK_MS = 1;
    let attempts = 0;
    b.start();
    try {
      // Time moves only between attempts; each attempt (connect, bind, refusal, close) runs on real sockets while it stands still.
      const attempt = async (): Promise<void> => {
        attempts++;
        await until(() => b.state === 'backoff' || b.state === 'bound', 2000, `attempt ${attempts} answered`);
        await until(() => smsc.conns.length === attempts && smsc.conns.at(-1)!.closedAt !== undefined, 2000, `attempt ${attempts}: one connection, closed by the bind`);
      };
      while (clock.now() < SIMULATED_MS) {
        if (b.state === 'connecting' || b.state === 'binding') await attempt();
        clock.advance(TICK_MS);
      }
      // Nothing connects while the clock stands still.
      await sleep(50);
      assert.equal(smsc.conns.length, attempts, 'no attempt without a timer');

      const opened = smsc.conns.map((c) => c.openedAt);
      const gaps = opened.slice(1).map((t, i) => t - opened[i]!);
      assert.deepEqual(gaps, retries.slice(0, gaps.length), 'each attempt comes exactly its announced delay after the last');
      const steps = retries.map((_, i) => Math.min(RECONNECT_CAP_MS, 1000 * 2 ** i));
      for (const [i, d] of retries.entries()) assert.ok(d >= steps[i]! / 2 && d <= steps[i]!, `delay ${i + 1}: ${d} ms, in [${steps[i]! / 2}, ${steps[i]}]`);
      assert.ok(Math.max(...retries) <= RECONNECT_CAP_MS, 'never above 60 s');
      // From the 7th failure on the step is the cap: every delay in its jitter range, for the rest of the 12 minutes.
      const capped = retries.slice(6);
      assert.ok(capped.length >= 10, `${capped.length} delays at the cap`);
      assert.ok(capped.every((d) => d >= RECONNECT_CAP_MS / 2 && d <= RECONNECT_CAP_MS), `capped delays ${JSON.stringify(capped)}`);
      assert.ok(new Set(capped).size > 1, 'jittered, not a fixed 60 s');
      // Ten draws in [30 s, 60 s] all at or under 32 s would mean the step stopped doubling before the cap.
      assert.ok(Math.max(...capped) > 32_000, 'the step reached 60 s');
      t.diagnostic(`${attempts} refused attempts over ${SIMULATED_MS / 60_000} simulated minutes; delays (ms): ${JSON.stringify(retries)}`);
      assert.ok(smsc.conns.every((c) => c.openAtOnce === 1), 'never two connections open at once');
      assert.equal(b.failures, attempts, 'refused binds never reset the backoff');
      assert.deepEqual([...reasons], ['bind refused: ESME_RBINDFAIL']);

      // The upstream takes binds again: up within one capped delay.
      smsc.accept = true;
      const from = clock.now();
      const deadline = from + RECONNECT_CAP_MS + TICK_MS;
      while (b.state !== 'bound' && clock.now() <= deadline) {
        if (b.state === 'connecting' || b.state === 'binding') await until(() => b.state !== 'connecting' && b.state !== 'binding', 2000, 'the bind answered');
        else clock.advance(TICK_MS);
      }
      assert.equal(b.state, 'bound', `bound ${clock.now() - from} ms after the upstream took binds again`);
    } finally {
      await b.stop();
      await smsc.close();
    }
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { journalFileOf } from '../cache/forward-sqlite';
import type { InboundRequest, SmppSession } from '../sessions/smpp-session';
import { EsmeClient } from './esme-client';

/**
 * `sluice soak`: the gateway under mixed load for a while, every part a real
 * process — the shipped store-and-forward gateway (two upstream simulators,
 * one dropping its connection every few hundred messages), the echo demo
 * tenant, and a hostile tenant whose policy loops and allocates — with the
 * gateway policy reloaded every half minute. It samples the gateway's RSS,
 * heap, handles and journal size, and at the end fails on a growth trend
 * or on any message answered ESME_ROK whose receipt never came.
 */

export interface SoakOptions {
  minutes: number;
  /** Gateway submits per second (the echo and hostile tenants take a fraction of it). */
  rate: number;
  print: (line: string) => void;
}

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/sluice.js');

const HOSTILE = `smpp.onBind((b) => b.accept());
let n = 0;
const keep = [];
smpp.onPdu('submit_sm', (pdu) => {
  n++;
  if (n % 97 === 0) for (;;) {}
  if (n % 13 === 0) keep.push(new Array(20000).fill(n));
  if (keep.length > 200) keep.length = 0;
  return pdu.reply({ message_id: 'h' + n });
});`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function child(args: string[], cwd: string): ChildProcess {
  return spawn(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
}

async function waitFor(c: ChildProcess, text: string, ms = 20_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no "${text}" within ${ms} ms`)), ms);
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(t);
        resolve();
      }
      if (out.length > 1 << 16) out = out.slice(-4096);
    });
  });
}

/** A load loop on one ESME: `rate` submits/s with receipts, reconnecting when the gateway drops it. */
class Load {
  readonly acked = new Set<string>();
  readonly receipts = new Set<string>();
  refused = 0;
  private stopped = false;
  private client: EsmeClient | undefined;

  constructor(
    private readonly port: number,
    private readonly systemId: string,
    private readonly password: string,
    private readonly rate: number,
  ) {}

  private async session(): Promise<EsmeClient> {
    while (!this.client || this.client.session.closed) {
      try {
        const c = await EsmeClient.connect({
          port: this.port,
          onRequest: (pdu: InboundRequest, s: SmppSession) => {
            const m = /id:(\S+)/.exec(Buffer.from((pdu.fields.short_message as Buffer | undefined) ?? []).toString('latin1'));
            if (m) this.receipts.add(m[1]!);
            s.respond(pdu, 0, { message_id: '' });
          },
        });
        if ((await c.bind(this.systemId, this.password)).command_status === 0) this.client = c;
        else c.close();
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    return this.client;
  }

  async run(): Promise<void> {
    const start = performance.now();
    let sent = 0;
    const inFlight = new Set<Promise<void>>();
    while (!this.stopped) {
      const wait = start + (sent / this.rate) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (inFlight.size >= 32) await Promise.race(inFlight);
      const c = await this.session();
      sent++;
      const p = c
        .submit({ source_addr: '4412345', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(`soak ${sent}`) })
        .then(
          (r) => {
            if (r.command_status === 0) this.acked.add(String(r.fields.message_id));
            else this.refused++;
          },
          () => void this.refused++,
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  }

  stop(): void {
    this.stopped = true;
  }

  close(): void {
    this.client?.close();
  }
}

/** One sample of the gateway process, read from its /metrics and its journal file. */
interface Sample {
  t: number;
  rss: number;
  heap: number;
  handles: number;
  store: number;
}

async function sample(adminPort: number, storeFile: string, t0: number): Promise<Sample | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: 'Bearer soak' } })).text();
    const metric = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    const size = (f: string): number => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    return {
      t: (Date.now() - t0) / 1000,
      rss: metric('process_resident_memory_bytes'),
      heap: metric('nodejs_heap_size_used_bytes'),
      handles: metric('nodejs_active_handles_total'),
      // The journal is its own file beside the cache's (docs/design.md, "The journal on SQLite").
      store: size(journalFileOf(storeFile)) + size(`${journalFileOf(storeFile)}-wal`),
    };
  } catch {
    return undefined;
  }
}

const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Run the soak; resolves true when nothing was lost and nothing grew. */
export async function soak(o: SoakOptions): Promise<boolean> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-soak-'));
  const procs: ChildProcess[] = [];
  const loads: Load[] = [];
  try {
    mkdirSync(path.join(dir, 'policies'));
    copyFileSync(path.join(ROOT, 'policies/gateway.ts'), path.join(dir, 'policies/gateway.ts'));
    copyFileSync(path.join(ROOT, 'policies/echo.ts'), path.join(dir, 'policies/echo.ts'));
    writeFileSync(path.join(dir, 'policies/hostile.ts'), HOSTILE);
    const [port, adminPort, simA, simB] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const storeFile = path.join(dir, 'data/gateway.sqlite');
    writeFileSync(
      path.join(dir, 'soak.yaml'),
      stringify({
        server: { bind_address: '127.0.0.1', port },
        cache: { url: `sqlite://${storeFile}` },
        sandbox: { processes: 2 },
        admin: { listen: `127.0.0.1:${adminPort}`, token: 'soak' },
        log: { level: 'warn' },
        tenants: [
          {
            id: 'acme',
            policy: 'policies/gateway.ts',
            system_ids: ['acme-app'],
            settings: { esmes: { 'acme-app': 'acme-pw' }, mo_default: 'acme-app' },
            binds: [
              { name: 'a', host: '127.0.0.1', port: simA, system_id: 'acme', window: 64, response_timer_ms: 4000 },
              { name: 'b', host: '127.0.0.1', port: simB, system_id: 'acme', window: 64, response_timer_ms: 4000 },
            ],
            routing: { default_chain: ['bind:a', 'bind:b', 'queue'] },
            queue: { retry_ms: 200, retry_max_ms: 2000 },
          },
          { id: 'demo', policy: 'policies/echo.ts', system_ids: ['demo'] },
          { id: 'hostile', policy: 'policies/hostile.ts', system_ids: ['hostile'], limits: { handler_timeout_ms: 20, memory_mb: 32 } },
        ],
      }),
    );
    for (const [p, flags] of [
      [simA, ['--dlr-delay-ms', '50', '--resend-ms', '500', '--resend-max', '100', '--drop-every', '700']],
      [simB, ['--dlr-delay-ms', '50', '--resend-ms', '500', '--resend-max', '100']],
    ] as const) {
      const c = child(['sim', '--port', String(p), ...flags], dir);
      procs.push(c);
      await waitFor(c, 'listening');
    }
    const gw = child(['start', '-c', 'soak.yaml'], dir);
    procs.push(gw);
    await waitFor(gw, 'sluice started').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    const acme = new Load(port, 'acme-app', 'acme-pw', o.rate);
    loads.push(acme, new Load(port, 'demo', 'demo', Math.max(1, o.rate / 4)), new Load(port, 'hostile', 'x', Math.max(1, o.rate / 10)));
    const runs = loads.map((l) => l.run());
    const t0 = Date.now();
    const end = t0 + o.minutes * 60_000;
    const samples: Sample[] = [];
    o.print(`sluice soak — ${o.minutes} min at ${o.rate} submit/s on the gateway (+ echo and a hostile tenant), a reload every 30 s, one upstream dropping its connection every 700 messages`);
    o.print('     t   rss        heap       handles  journal     acked   receipts');
    let nextReload = t0 + 30_000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, end - Date.now()))));
      if (Date.now() >= nextReload) {
        appendFileSync(path.join(dir, 'policies/gateway.ts'), `\n// reload ${nextReload}\n`);
        nextReload += 30_000;
      }
      const s = await sample(adminPort, storeFile, t0);
      if (!s) continue;
      samples.push(s);
      o.print(`${s.t.toFixed(0).padStart(6)}s ${mb(s.rss).padEnd(10)} ${mb(s.heap).padEnd(10)} ${String(s.handles).padEnd(8)} ${mb(s.store).padEnd(11)} ${String(acme.acked.size).padEnd(7)} ${acme.receipts.size}`);
    }
    for (const l of loads) l.stop();
    await Promise.all(runs);
    // Every receipt still due gets a minute.
    const settle = Date.now() + 60_000;
    while ([...acme.acked].some((id) => !acme.receipts.has(id)) && Date.now() < settle) await new Promise((r) => setTimeout(r, 500));
    const lost = [...acme.acked].filter((id) => !acme.receipts.has(id)).length;
    // Growth: the last third of the samples against the middle third (the first is warm-up).
    const third = Math.floor(samples.length / 3);
    const mid = samples.slice(third, 2 * third);
    const last = samples.slice(2 * third);
    let grew = false;
    if (mid.length > 0 && last.length > 0) {
      for (const k of ['rss', 'heap', 'handles'] as const) {
        const a = mean(mid.map((x) => x[k]));
        const b = mean(last.map((x) => x[k]));
        const limit = k === 'handles' ? a * 1.2 + 5 : a * 1.2 + 16 * 1048576;
        if (b > limit) {
          grew = true;
          o.print(`  growth: ${k} ${k === 'handles' ? a.toFixed(0) : mb(a)} → ${k === 'handles' ? b.toFixed(0) : mb(b)} from the middle third of the run to the last`);
        }
      }
    }
    const first = samples[0];
    const final = samples[samples.length - 1];
    o.print(
      `  gateway: ${acme.acked.size} messages answered ESME_ROK, ${lost} without their receipt (lost), ${acme.refused} refused or failed; ` +
        `RSS ${first ? mb(first.rss) : '?'} → ${final ? mb(final.rss) : '?'}, journal ${final ? mb(final.store) : '?'}; ` +
        `echo ${loads[1]!.acked.size} answered, hostile ${loads[2]!.acked.size} answered and ${loads[2]!.refused} refused (its own limits)`,
    );
    const ok = lost === 0 && !grew && acme.acked.size > 0;
    o.print(ok ? '  soak: ok' : '  soak: FAILED');
    return ok;
  } finally {
    for (const l of loads) l.close();
    for (const c of procs) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

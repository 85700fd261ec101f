/** Real gateways, upstreams and ESMEs for the fault tests (test/gateway/faults.e2e.test.ts): starting them, driving traffic, tallying answers, reading child processes. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { EsmeClient } from '../../src/tools/esme-client';
import { freePort, onFrames, rawPdu, sleep } from './harness';
import { exampleGatewayDir, SluiceProcess } from './sluice-process';

export const REPO = path.resolve(__dirname, '../../..');
export const ESME_RSYSERR = 0x08;
export const ESME_RBINDFAIL = 0x0d;
export const ESME_RSUBMITFAIL = 0x45;
export const ESME_RTHROTTLED = 0x58;
export const now = (): number => performance.now();

export const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


/** Resolves with `p`, or rejects after `ms` saying `what` did not happen: nothing in a fault test may hang. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export interface Gw {
  dir: string;
  port: number;
  proc: SluiceProcess;
}

export interface BindSpec {
  name: string;
  port: number;
  [k: string]: unknown;
}

/**
 * `sluice start` on a config of our own, modelled on config/example-gateway.yaml:
 * tenant acme with policies/gateway.ts (ESME acme-app / acme-pw), the given
 * binds to 127.0.0.1, one routing chain for every destination.
 */
export async function gateway(t: TestContext, o: { binds: BindSpec[]; chain: string[]; server?: Record<string, unknown>; limits?: Record<string, unknown>; log?: string }): Promise<Gw> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-faults-'));
  dirs.push(dir);
  mkdirSync(path.join(dir, 'policies'));
  copyFileSync(path.join(REPO, 'policies/gateway.ts'), path.join(dir, 'policies/gateway.ts'));
  const port = await freePort();
  const doc = {
    server: { bind_address: '127.0.0.1', port, ...o.server },
    cache: { url: 'sqlite://data/gateway.sqlite' },
    sandbox: { processes: 1 },
    admin: { listen: `127.0.0.1:${await freePort()}` },
    log: { level: o.log ?? 'info' },
    tenants: [
      {
        id: 'acme',
        policy: 'policies/gateway.ts',
        system_ids: ['acme-app'],
        limits: { memory_mb: 64, cpu_ms_per_s: 250, handler_timeout_ms: 50, handler_deadline_ms: 5000, ...o.limits },
        settings: { esmes: { 'acme-app': 'acme-pw' }, mo_default: 'acme-app' },
        binds: o.binds.map((b) => ({ host: '127.0.0.1', system_id: 'acme', password: 'secret', receipt_id: 'auto', ...b })),
        routing: { default_chain: o.chain, rules: [] },
        queue: { retry_ms: 500, retry_max_ms: 5000, expiry_ms: 3_600_000 },
      },
    ],
  };
  writeFileSync(path.join(dir, 'gateway.yaml'), stringify(doc));
  const proc = SluiceProcess.start('gateway.yaml', dir);
  t.after(() => proc.stop('SIGKILL'));
  await proc.logged('listening', 0, () => true, 20_000);
  return { dir, port, proc };
}

/** `sluice start -c config/example-gateway.yaml` (copies in a temp dir), its two binds to `aggPorts`. */
export async function exampleGateway(t: TestContext, aggPorts: [number, number]): Promise<Gw> {
  const dir = exampleGatewayDir('sluice-faults-');
  dirs.push(dir);
  const port = await freePort();
  const proc = SluiceProcess.start('config/example-gateway.yaml', dir, {
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_PORT: String(port),
    SLUICE_ADMIN_LISTEN: `127.0.0.1:${await freePort()}`,
    AGG_PORT: String(aggPorts[0]),
    AGG2_PORT: String(aggPorts[1]),
  });
  t.after(() => proc.stop('SIGKILL'));
  await proc.logged('listening', 0, () => true, 20_000);
  return { dir, port, proc };
}

/** Until the gateway logged `bind` as bound (from log line `from` on). */
export const bound = (g: SluiceProcess, bind: string, from = 0, ms = 20_000): Promise<unknown> => g.logged('bind state', from, (l) => l.bind === bind && l.state === 'bound', ms);

export const alive = (g: SluiceProcess): boolean => g.child.exitCode === null && g.child.signalCode === null;

/** An ESME on its own connection, window and response timer as given, bound as acme-app. */
export async function esmeClient(port: number, window: number, responseTimeoutMs: number): Promise<EsmeClient> {
  const c = await EsmeClient.connect({ port, window, responseTimeoutMs });
  assert.equal((await c.bind('acme-app', 'acme-pw')).command_status, 0);
  return c;
}

export const submitFields = (text: string, rd = 0): Record<string, unknown> => ({ source_addr: '4412345', destination_addr: '31612345678', registered_delivery: rd, short_message: Buffer.from(text) });

/** One submit as the ESME saw it: when it went, when and how it was answered (a status, or the client's error code). */
export interface Shot {
  text: string;
  sentAt: number;
  answeredAt?: number;
  status?: number | string;
  id?: string;
}

/**
 * Load from one ESME connection: `window` submits in flight at a time, each
 * worker pausing `pauseMs` between its submits, until `count` are sent or
 * `stop()` holds. Resolves with every submit once each is answered.
 */
export async function drive(
  submit: (text: string) => Promise<{ command_status: number; fields: Record<string, unknown> }>,
  prefix: string,
  o: { count: number; window: number; pauseMs?: number; stop?: () => boolean; onAnswer?: (answered: number) => void },
  shots: Shot[] = [],
): Promise<Shot[]> {
  let next = 0;
  let answered = 0;
  const worker = async (): Promise<void> => {
    while (next < o.count && !o.stop?.()) {
      const s: Shot = { text: `${prefix}${next++}`, sentAt: now() };
      shots.push(s);
      try {
        const r = await submit(s.text);
        s.status = r.command_status;
        if (r.command_status === 0) s.id = String(r.fields.message_id);
      } catch (err) {
        s.status = (err as { code?: string }).code ?? 'error';
      }
      s.answeredAt = now();
      o.onAnswer?.(++answered);
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  };
  await Promise.all(Array.from({ length: o.window }, worker));
  return shots;
}

export const tally = (shots: readonly Shot[]): Record<string, number> => {
  const m: Record<string, number> = {};
  for (const s of shots) {
    const k = typeof s.status === 'number' ? `0x${s.status.toString(16)}` : String(s.status);
    m[k] = (m[k] ?? 0) + 1;
  }
  return m;
};

/** An upstream that accepts TCP and answers every bind_* with ESME_RBINDFAIL (a header, no body), leaving the close to the client; every connection's times recorded. */
export class RefusingSmsc {
  readonly conns: { openedAt: number; refusedAt?: number; closedAt?: number; openAtOnce: number }[] = [];
  private open = 0;
  private readonly server = net.createServer((s) => this.onConnection(s));

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  private onConnection(s: net.Socket): void {
    const c: (typeof this.conns)[number] = { openedAt: now(), openAtOnce: ++this.open };
    this.conns.push(c);
    onFrames(s, (id, seq) => {
      if (id === 0x01 || id === 0x02 || id === 0x09) {
        c.refusedAt = now();
        s.write(rawPdu(0x80000000 | id, seq, Buffer.alloc(0), { status: ESME_RBINDFAIL }));
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      c.closedAt = now();
      this.open--;
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Pids of `pid`'s child processes, oldest first, with the CPU time each has used (clock ticks). */
export function children(pid: number): { pid: number; cpu: number; cmd: string }[] {
  const out: { pid: number; cpu: number; start: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    let cmd: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    // Fields after the command name (which may hold spaces): state, ppid, …; utime and stime are fields 14 and 15, starttime 22.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) !== pid) continue;
    out.push({ pid: Number(d), cpu: Number(f[11]) + Number(f[12]), start: Number(f[19]), cmd });
  }
  return out.sort((a, b) => a.start - b.start || a.pid - b.pid);
}

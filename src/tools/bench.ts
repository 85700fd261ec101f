import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { InboundRequest, SmppSession } from '../sessions/smpp-session';
import { EsmeClient } from './esme-client';

export interface LoadOptions {
  host?: string;
  port: number;
  systemId: string;
  password: string;
  /** ESME sessions to open. */
  esmes: number;
  /** submit_sm in flight per session. */
  window: number;
  /** Stop after this many submits in all… */
  count?: number;
  /** …or after this long (ms). */
  durationMs?: number;
  /** Ask for delivery receipts and time them. */
  dlr?: boolean;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  dlrs: number;
  dlrP50?: number;
  dlrP99?: number;
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

const MAX_SAMPLES = 5_000_000;

/** Keep `window` submit_sm in flight on each of `esmes` sessions; measure rate and latency. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const durationMs = o.durationMs ?? (o.count ? Infinity : 5000);
  const count = Math.min(o.count ?? Infinity, MAX_SAMPLES);
  const lat = new Float64Array(Math.min(count, MAX_SAMPLES));
  const sentAt = new Map<string, number>();
  const dlrAt = new Map<string, number>();
  let sent = 0;
  let done = 0;
  let ok = 0;
  const onRequest = (pdu: InboundRequest, s: SmppSession): void => {
    s.respond(pdu, 0, { message_id: '' });
    const m = /id:(\S+)/.exec(Buffer.from((pdu.fields.short_message as Buffer) ?? []).toString('latin1'));
    // The receipt can overtake our handling of the submit's response: pair them up at the end.
    if (m && dlrAt.size < MAX_SAMPLES) dlrAt.set(m[1]!, performance.now());
  };
  const clients: EsmeClient[] = [];
  for (let i = 0; i < o.esmes; i++) {
    const c = await EsmeClient.connect({ host: o.host, port: o.port, window: o.window, onRequest });
    const r = await c.bind(o.systemId, o.password);
    if (r.command_status !== 0) throw new Error(`bind refused with status 0x${r.command_status.toString(16)}`);
    clients.push(c);
  }
  const fields = {
    source_addr: '1000',
    destination_addr: '31600000000',
    short_message: Buffer.from('Sluice bench message'),
    registered_delivery: o.dlr ? 1 : 0,
  };
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (c: EsmeClient): Promise<void> => {
    while (sent < count && performance.now() < deadline) {
      sent++;
      const t0 = performance.now();
      const r = await c.submit(fields);
      const t1 = performance.now();
      if (done < lat.length) lat[done] = t1 - t0;
      done++;
      if (r.command_status === 0) {
        ok++;
        if (o.dlr && typeof r.fields.message_id === 'string') sentAt.set(r.fields.message_id, t0);
      }
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: o.window }, () => worker(c))));
  const seconds = (performance.now() - start) / 1000;
  if (o.dlr) {
    const wait = performance.now() + 2000;
    while (dlrAt.size < sentAt.size && performance.now() < wait) await new Promise((r) => setTimeout(r, 10));
  }
  for (const c of clients) await c.unbind().catch(() => c.close());
  const sorted = lat.subarray(0, Math.min(done, lat.length)).sort();
  const dlrLat: number[] = [];
  for (const [id, t] of dlrAt) {
    const t0 = sentAt.get(id);
    if (t0 !== undefined) dlrLat.push(t - t0);
  }
  const dl = Float64Array.from(dlrLat).sort();
  const result: LoadResult = { sent: done, ok, failed: done - ok, seconds, perSecond: done / seconds, p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99), dlrs: dl.length };
  if (dl.length) {
    result.dlrP50 = pct(dl, 50);
    result.dlrP99 = pct(dl, 99);
  }
  return result;
}

export function formatLoad(label: string, r: LoadResult): string {
  const dlr = r.dlrs ? `  dlr p50 ${r.dlrP50!.toFixed(3)} ms p99 ${r.dlrP99!.toFixed(3)} ms (${r.dlrs})` : '';
  return `${label.padEnd(28)} ${r.perSecond.toFixed(0).padStart(7)} submit_sm/s  p50 ${r.p50.toFixed(3)} ms  p90 ${r.p90.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  (${r.sent} sent, ${r.failed} failed)${dlr}`;
}

interface ServerChild {
  child: ChildProcess;
  port: number;
  rss(): Promise<number>;
  stop(): void;
}

function startServer(kind: 'raw' | 'sluice'): Promise<ServerChild> {
  const child = fork(path.join(__dirname, 'bench-server.js'), [kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m: { port: number }) =>
      resolve({
        child,
        port: m.port,
        rss: () =>
          new Promise((r) => {
            child.once('message', (x: { rss: number }) => r(x.rss));
            child.send('rss');
          }),
        stop: () => child.kill(),
      }),
    );
  });
}

export interface CompareOptions {
  durationMs: number;
  idleSessions: number;
  print: (line: string) => void;
}

/**
 * `npm run bench`: the Sluice gateway with an in-process echo handler
 * against a bare npm `smpp` echo server, each in its own process, driven by
 * the same load generator in the same run, at window 1 and 64; then the RSS
 * cost of idle bound sessions.
 */
export async function compare(o: CompareOptions): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  const cases: { window: number; esmes: number }[] = [
    { window: 1, esmes: 1 },
    { window: 64, esmes: 1 },
    { window: 64, esmes: 4 },
  ];
  o.print(`Sluice bench — ${o.durationMs} ms per case, load generator in this process, each server in its own process`);
  for (const c of cases) {
    const results: Record<string, LoadResult> = {};
    for (const kind of ['raw', 'sluice'] as const) {
      const srv = await startServer(kind);
      try {
        await runLoad({ port: srv.port, systemId: 'bench', password: 'bench', esmes: c.esmes, window: c.window, durationMs: Math.min(500, o.durationMs) });
        results[kind] = await runLoad({ port: srv.port, systemId: 'bench', password: 'bench', esmes: c.esmes, window: c.window, durationMs: o.durationMs });
      } finally {
        srv.stop();
      }
      o.print(formatLoad(`${kind === 'raw' ? 'npm smpp echo' : 'sluice echo'} w=${c.window} esmes=${c.esmes}`, results[kind]!));
    }
    const ratio = results.sluice!.perSecond / results.raw!.perSecond;
    const key = `w${c.window}x${c.esmes}`;
    figures[`${key}.raw`] = results.raw!.perSecond;
    figures[`${key}.sluice`] = results.sluice!.perSecond;
    figures[`${key}.ratio`] = ratio;
    figures[`${key}.sluice_p50_ms`] = results.sluice!.p50;
    o.print(`  → throughput ratio sluice/raw at window ${c.window}, ${c.esmes} ESME(s): ${ratio.toFixed(2)}×   sluice p50 ${results.sluice!.p50.toFixed(3)} ms vs raw ${results.raw!.p50.toFixed(3)} ms`);
  }

  const srv = await startServer('sluice');
  try {
    const dlr = await runLoad({ port: srv.port, systemId: 'bench', password: 'bench', esmes: 1, window: 64, durationMs: Math.min(2000, o.durationMs), dlr: true });
    o.print(formatLoad('sluice echo + DLR w=64', dlr));
    if (dlr.dlrP50 !== undefined) figures['dlr.p50_ms'] = dlr.dlrP50;
  } finally {
    srv.stop();
  }
  // Idle sessions in a fresh gateway process, so earlier load does not hide their cost.
  const idleSrv = await startServer('sluice');
  try {
    const base = await idleSrv.rss();
    const idle: EsmeClient[] = [];
    for (let i = 0; i < o.idleSessions; i++) {
      const c = await EsmeClient.connect({ port: idleSrv.port, window: 1 });
      await c.bind('bench', 'bench');
      idle.push(c);
    }
    await new Promise((r) => setTimeout(r, 500));
    const loaded = await idleSrv.rss();
    const mb = (loaded - base) / 1048576;
    figures['idle.sessions'] = o.idleSessions;
    figures['idle.rss_mb'] = mb;
    o.print(`${o.idleSessions} idle bound ESME sessions: +${mb.toFixed(1)} MB RSS in the gateway (${((loaded - base) / o.idleSessions / 1024).toFixed(1)} KB each; process total ${(loaded / 1048576).toFixed(1)} MB)`);
    for (const c of idle) c.close();
  } finally {
    idleSrv.stop();
  }
  return figures;
}

// One file on purpose: every case of `sluice bench --compare` (throughput, the store, the gateway path,
// noisy neighbour, reload, tenancy) shares the load generator, the server children and the CPU
// accounting of one run, so the ratios are taken within it.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheStore } from '../cache';
import { sqliteForward } from '../cache/forward-sqlite';
import { ForwardStore, MSG_SENT, type MsgRow } from '../cache/forward-store';
import type { TenantStats } from '../sandbox-protocol/messages';
import type { InboundRequest, SmppSession } from '../sessions/smpp-session';
import { ESME_ROK, statusLabel, statusName, statusValue } from '../wire/status';
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
  /** Offer at most this many submit_sm per second in all (default: as fast as answers come). */
  maxRate?: number;
  /** With `dlr`: how long to wait after the last submit for the receipts still due (default 2000 ms). */
  dlrWaitMs?: number;
}

export interface LoadResult {
  /** submit_sm answered, whatever the status. */
  sent: number;
  /** Answered ESME_ROK: accepted. */
  ok: number;
  /** Answered any other status: refused (`sent - ok`). */
  failed: number;
  /** The refused ones per status, by name (`ESME_RTHROTTLED`; `0x…` for a value without one). */
  refused: Record<string, number>;
  seconds: number;
  /** Accepted (ESME_ROK) submit_sm per second: a refusal is not throughput. */
  perSecond: number;
  /** Latency percentiles (ms) of the accepted submits; NaN when none was. */
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

/**
 * Keep `window` submit_sm in flight on each of `esmes` sessions; measure the
 * rate and latency of those accepted (ESME_ROK), and count the refused ones
 * per status apart. A refused bind throws, naming its status.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const durationMs = o.durationMs ?? (o.count ? Infinity : 5000);
  const count = Math.min(o.count ?? Infinity, MAX_SAMPLES);
  const lat = new Float64Array(Math.min(count, MAX_SAMPLES));
  const sentAt = new Map<string, number>();
  const dlrAt = new Map<string, number>();
  let sent = 0;
  let done = 0;
  let ok = 0;
  const refused = new Map<number, number>();
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
    if (r.command_status !== ESME_ROK) {
      for (const x of clients) x.close();
      c.close();
      throw new Error(`bind as "${o.systemId}" refused: ${statusLabel(r.command_status)}`);
    }
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
      if (o.maxRate) {
        const wait = start + (sent / o.maxRate) * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      sent++;
      const t0 = performance.now();
      const r = await c.submit(fields);
      const t1 = performance.now();
      done++;
      if (r.command_status === ESME_ROK) {
        if (ok < lat.length) lat[ok] = t1 - t0;
        ok++;
        if (o.dlr && typeof r.fields.message_id === 'string') sentAt.set(r.fields.message_id, t0);
      } else {
        refused.set(r.command_status, (refused.get(r.command_status) ?? 0) + 1);
      }
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: o.window }, () => worker(c))));
  const seconds = (performance.now() - start) / 1000;
  if (o.dlr) {
    const wait = performance.now() + (o.dlrWaitMs ?? 2000);
    while (dlrAt.size < sentAt.size && performance.now() < wait) await new Promise((r) => setTimeout(r, 10));
  }
  for (const c of clients) await c.unbind().catch(() => c.close());
  const sorted = lat.subarray(0, Math.min(ok, lat.length)).sort();
  const dlrLat: number[] = [];
  for (const [id, t] of dlrAt) {
    const t0 = sentAt.get(id);
    if (t0 !== undefined) dlrLat.push(t - t0);
  }
  const dl = Float64Array.from(dlrLat).sort();
  const byName: Record<string, number> = {};
  for (const [status, n] of [...refused].sort((a, b) => b[1] - a[1])) byName[statusName(status)] = n;
  const result: LoadResult = {
    sent: done,
    ok,
    failed: done - ok,
    refused: byName,
    seconds,
    perSecond: ok / seconds,
    p50: pct(sorted, 50),
    p90: pct(sorted, 90),
    p99: pct(sorted, 99),
    dlrs: dl.length,
  };
  if (dl.length) {
    result.dlrP50 = pct(dl, 50);
    result.dlrP99 = pct(dl, 99);
  }
  return result;
}

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const count = (n: number): string => COUNT.format(n);

/** Refusals per status, most first: `ESME_RTHROTTLED 157,859, ESME_RSYSERR 3` (a value without a name says so). */
export function formatRefused(refused: Readonly<Record<string, number>>): string {
  return Object.entries(refused)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name.startsWith('0x') ? statusLabel(statusValue(name)) : name} ${count(n)}`)
    .join(', ');
}

/** Add up the refusals of several runs. */
export function addRefused(runs: readonly LoadResult[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const r of runs) for (const [name, n] of Object.entries(r.refused)) sum[name] = (sum[name] ?? 0) + n;
  return sum;
}

/** One run on one line: the accepted rate, the refusals by status, the latency of the accepted, receipts. */
export function formatLoad(label: string, r: LoadResult): string {
  const refused = r.failed ? `refused: ${formatRefused(r.refused)}` : 'none refused';
  const latency = r.ok ? `p50 ${r.p50.toFixed(3)} ms  p90 ${r.p90.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms` : 'none accepted';
  const dlr = r.dlrs ? `  dlr p50 ${r.dlrP50!.toFixed(3)} ms p99 ${r.dlrP99!.toFixed(3)} ms (${count(r.dlrs)})` : '';
  return `${label.padEnd(28)} ${count(r.perSecond).padStart(7)} submit_sm/s accepted (ESME_ROK); ${refused}  ${latency}  (${count(r.sent)} sent in ${r.seconds.toFixed(3)} s)${dlr}`;
}

/**
 * CPU time (user + system, every thread) a process has used, in ms, from
 * Linux's /proc; undefined where there is no /proc. Clock ticks are taken as
 * the usual 100 per second.
 */
function procCpuMs(pid: number): number | undefined {
  const f = procStat(pid);
  return f ? (Number(f[11]) + Number(f[12])) * 10 : undefined;
}

/** The fields of /proc/<pid>/stat after the command name (state, ppid, …); undefined if it cannot be read. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Kernels without that file: look for processes whose parent is `pid`.
    try {
      return readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .filter((c) => Number(procStat(c)?.[1]) === pid);
    } catch {
      return [];
    }
  }
}

/** CPU ms of a server process and, apart, of its children (the sandbox processes); undefined without /proc. */
interface CpuSample {
  server: number;
  children: number;
}

interface ServerChild {
  child: ChildProcess;
  port: number;
  startMs: number;
  ask<T>(cmd: Record<string, unknown>): Promise<T>;
  cpu(): CpuSample | undefined;
  stop(): void;
}

function startServer(kind: string): Promise<ServerChild> {
  const child = fork(path.join(__dirname, 'bench-server.js'), [kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench server ${kind} exited with ${code}`)));
    child.once('message', (m: { port: number; startMs: number }) =>
      resolve({
        child,
        port: m.port,
        startMs: m.startMs,
        ask: <T>(cmd: Record<string, unknown>) =>
          new Promise<T>((r) => {
            child.once('message', (x: T) => r(x));
            child.send(cmd);
          }),
        cpu: () => {
          const server = procCpuMs(child.pid!);
          if (server === undefined) return undefined;
          return { server, children: childPids(child.pid!).reduce((a, c) => a + (procCpuMs(c) ?? 0), 0) };
        },
        stop: () => {
          child.removeAllListeners('exit');
          child.kill();
        },
      }),
    );
  });
}

/**
 * One round of load, and the CPU µs per submit_sm it cost each of `servers`
 * (process and children apart) and this load generator; no CPU figures
 * without /proc or without submits.
 */
async function roundWithCpu(
  servers: ServerChild[],
  load: LoadOptions,
  /** Run after the load and before the CPU is read again (work the round left, such as receipts still on their way). */
  settle?: () => Promise<void>,
): Promise<{ result: LoadResult; perSubmit?: { servers: CpuSample[]; load: number } }> {
  const before = servers.map((s) => s.cpu());
  const load0 = process.cpuUsage();
  const result = await runLoad(load);
  await settle?.();
  const used = process.cpuUsage(load0);
  const after = servers.map((s) => s.cpu());
  if (result.sent === 0 || [...before, ...after].some((x) => x === undefined)) return { result };
  const per = (ms: number): number => (ms * 1000) / result.sent;
  return {
    result,
    perSubmit: {
      servers: servers.map((_, i) => ({ server: per(after[i]!.server - before[i]!.server), children: per(after[i]!.children - before[i]!.children) })),
      load: (used.user + used.system) / result.sent,
    },
  };
}

export interface CompareOptions {
  /** Per throughput case, split over `rounds` turns of the servers. */
  durationMs: number;
  /** Rounds per throughput case (default 5, as the CLI's). */
  rounds?: number;
  idleSessions: number;
  tenants: number;
  /** Sandbox processes of the shipped gateway in the gateway case (default 2, as config/example-gateway.yaml). */
  gatewayProcesses?: number;
  /** Run one case only: `gateway` (the shipped gateway vs a bare relay). */
  only?: 'gateway';
  print: (line: string) => void;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** A policy of about `lines` lines, for timing reloads. */
function policyOfLines(lines: number, tag: string): string {
  const out = ['smpp.onBind((bind) => bind.accept());', `const TAG = '${tag}';`];
  for (let i = 0; out.length < lines - 4; i++) out.push(`function route${i}(dest: string): string { return dest.startsWith('${i % 90}') ? 'bind-${i}' : TAG; }`);
  out.push("smpp.onPdu('submit_sm', (pdu) => {", '  const r = route0(String(pdu.destination_addr));', "  return pdu.reply({ message_id: r + '-' + smpp.newMessageId() });", '});');
  return out.join('\n');
}

/**
 * `npm run bench`, every figure measured in this one run:
 *  1. throughput and latency at window 1 and 64 — a bare npm `smpp` echo
 *     server (the baseline), Sluice with an in-process echo handler,
 *     Sluice with the same echo logic as a sandboxed tenant policy (with
 *     inline entries, the default, and without), and that policy awaiting
 *     one cache read per message; at window 1 also the bare echo behind a
 *     pass-through process hop (the floor for an out-of-process sandbox);
 *  2. forwarding: each submit_sm through a sandboxed policy and an outbound
 *     bind to a simulated SMSC; durable writes/s of the SQLite cache vs the
 *     group-committed journal; the shipped store-and-forward gateway vs a
 *     bare npm `smpp` relay, receipts on, and at window 1 vs the floor of
 *     its design (./floor-relay.ts); delivery-receipt round trip;
 *  3. noisy neighbour: a quiet tenant's p99 alone, and while another tenant
 *     spins at its CPU limits;
 *  4. reload: new source of a 100-line policy → serving;
 *  5. tenancy: N configured tenants' start time and RSS, a cold start, an
 *     active isolate's cost;
 *  6. RSS of idle bound ESME sessions.
 * Each server runs in its own process; the load generator runs in this one.
 */
export async function compare(o: CompareOptions): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  const cases: { window: number; esmes: number }[] = [
    { window: 1, esmes: 1 },
    { window: 64, esmes: 1 },
    { window: 64, esmes: 4 },
  ];
  // 'sandbox-queued': the same policy with every entry on its isolate's own thread (sandbox.inline_entry_ms: 0).
  // 'sandbox-await': the same echo awaiting one cache read per submit_sm, a host call per message as real policies make.
  const KINDS = ['raw', 'inproc', 'sandbox', 'sandbox-queued', 'sandbox-await'] as const;
  // At window 1 also 'raw-hop': the bare echo behind a pass-through process hop, the least a sandbox process adds.
  const labels: Record<string, string> = {
    raw: 'npm smpp echo',
    'raw-hop': 'npm smpp echo behind a process hop',
    inproc: 'sluice in-process echo',
    sandbox: 'sluice sandboxed echo',
    'sandbox-queued': 'sluice sandboxed, inline off',
    'sandbox-await': 'sluice sandboxed + cache.get',
  };
  const rounds = Math.max(1, o.rounds ?? 5);
  const slice = Math.max(500, Math.round(o.durationMs / rounds));
  o.print(`Sluice bench — each case ${rounds} rounds of ${slice} ms, the servers taking turns (a shared machine drifts; ratios are taken within a round); each server in its own process, the load generator in this one`);
  if (o.only === 'gateway') {
    await gatewayCase(o, figures, rounds, slice);
    return figures;
  }
  for (const c of cases) {
    // Servers stay up across rounds; each round measures raw, in-process and sandboxed back to back.
    const servers: Record<string, ServerChild> = {};
    const kinds: string[] = c.window === 1 ? [...KINDS, 'raw-hop'] : [...KINDS];
    const runs: Record<string, LoadResult[]> = Object.fromEntries(kinds.map((k) => [k, []]));
    // CPU µs per submit_sm of each run: the server process, its sandbox processes, this load generator.
    const cpu: Record<string, { server: number; children: number; load: number }[]> = Object.fromEntries(kinds.map((k) => [k, []]));
    try {
      for (const kind of kinds) {
        servers[kind] = await startServer(kind);
        await runLoad({ port: servers[kind].port, systemId: 'bench', password: 'bench', esmes: c.esmes, window: c.window, durationMs: Math.min(500, o.durationMs) });
      }
      for (let r = 0; r < rounds; r++) {
        for (const kind of kinds) {
          const { result, perSubmit } = await roundWithCpu([servers[kind]!], { port: servers[kind]!.port, systemId: 'bench', password: 'bench', esmes: c.esmes, window: c.window, durationMs: slice });
          runs[kind]!.push(result);
          if (perSubmit) cpu[kind]!.push({ ...perSubmit.servers[0]!, load: perSubmit.load });
        }
      }
      // A sandboxed echo whose entries left the process's thread mid-case (an entry over inline_entry_ms of CPU) ran this case partly without them: say so.
      for (const kind of ['sandbox', 'sandbox-await'] as const) {
        const st = await servers[kind]!.ask<{ stats?: { tenants: TenantStats[] } }>({ cmd: 'stats' });
        const t = st.stats?.tenants.find((x) => x.tenant === 'bench');
        if (t && !t.inline) o.print(`  note: ${labels[kind]}: its entries were not inline at the end of this case (${t.inlineOffences} inline offences)`);
      }
    } finally {
      for (const s of Object.values(servers)) s.stop();
    }
    const byRate = (xs: LoadResult[]): LoadResult => [...xs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(xs.length / 2)]!;
    const ratio = (a: string, b: string): number => median(runs[a]!.map((x, i) => x.perSecond / runs[b]![i]!.perSecond));
    for (const kind of kinds) o.print(formatLoad(`${labels[kind]} w=${c.window} x${c.esmes}`, byRate(runs[kind]!)));
    const key = `w${c.window}x${c.esmes}`;
    const raw = byRate(runs.raw!);
    const inp = byRate(runs.inproc!);
    const sbx = byRate(runs.sandbox!);
    const p50 = (kind: string): number => median(runs[kind]!.map((x) => x.p50));
    Object.assign(figures, {
      [`${key}.raw_per_s`]: raw.perSecond,
      [`${key}.inproc_per_s`]: inp.perSecond,
      [`${key}.sandbox_per_s`]: sbx.perSecond,
      [`${key}.inproc_vs_raw`]: ratio('inproc', 'raw'),
      [`${key}.sandbox_vs_raw`]: ratio('sandbox', 'raw'),
      [`${key}.sandbox_vs_inproc`]: ratio('sandbox', 'inproc'),
      [`${key}.raw_p50_ms`]: p50('raw'),
      [`${key}.inproc_p50_ms`]: p50('inproc'),
      [`${key}.sandbox_p50_ms`]: p50('sandbox'),
      [`${key}.sandbox_queued_vs_raw`]: ratio('sandbox-queued', 'raw'),
      [`${key}.sandbox_queued_p50_ms`]: p50('sandbox-queued'),
      [`${key}.sandbox_await_per_s`]: byRate(runs['sandbox-await']!).perSecond,
      [`${key}.sandbox_await_vs_raw`]: ratio('sandbox-await', 'raw'),
      [`${key}.sandbox_await_p50_ms`]: p50('sandbox-await'),
    });
    const each = runs.sandbox!.map((x, i) => (x.perSecond / runs.raw![i]!.perSecond).toFixed(2)).join(' ');
    o.print(
      `  → window ${c.window}, ${c.esmes} ESME(s), median of ${rounds} rounds: in-process/raw ${ratio('inproc', 'raw').toFixed(2)}×, sandbox/raw ${ratio('sandbox', 'raw').toFixed(2)}× (rounds: ${each}), ` +
        `sandbox/in-process ${ratio('sandbox', 'inproc').toFixed(2)}×; p50 raw ${p50('raw').toFixed(3)} / in-process ${p50('inproc').toFixed(3)} / sandbox ${p50('sandbox').toFixed(3)} ms`,
    );
    if (runs['raw-hop']) {
      Object.assign(figures, { [`${key}.raw_hop_vs_raw`]: ratio('raw-hop', 'raw'), [`${key}.raw_hop_p50_ms`]: p50('raw-hop') });
      o.print(
        `  → the bare echo behind one pass-through process hop (what keeping policies out of the process that holds the sockets costs before any work): ` +
          `p50 ${p50('raw-hop').toFixed(3)} ms, ${ratio('raw-hop', 'raw').toFixed(2)}× raw's rate; the sandboxed echo's p50 is ${(p50('sandbox') - p50('raw-hop')).toFixed(3)} ms above it`,
      );
    }
    o.print(`  → every entry on the isolate's own thread (inline_entry_ms 0): sandbox/raw ${ratio('sandbox-queued', 'raw').toFixed(2)}×, p50 ${p50('sandbox-queued').toFixed(3)} ms`);
    o.print(`  → awaiting one cache.get per submit_sm: sandbox/raw ${ratio('sandbox-await', 'raw').toFixed(2)}×, p50 ${p50('sandbox-await').toFixed(3)} ms`);
    if (cpu.raw!.length && cpu.inproc!.length && cpu.sandbox!.length) {
      const m = (kind: string, k: 'server' | 'children' | 'load'): number => median(cpu[kind]!.map((x) => x[k]));
      Object.assign(figures, {
        [`${key}.raw_cpu_us`]: m('raw', 'server'),
        [`${key}.inproc_cpu_us`]: m('inproc', 'server'),
        [`${key}.sandbox_core_cpu_us`]: m('sandbox', 'server'),
        [`${key}.sandbox_sandbox_cpu_us`]: m('sandbox', 'children'),
        [`${key}.load_cpu_us`]: m('raw', 'load'),
      });
      o.print(
        `  CPU per submit_sm, median of rounds (steadier than rates on a shared machine): npm smpp echo ${m('raw', 'server').toFixed(1)} µs; ` +
          `in-process ${m('inproc', 'server').toFixed(1)} µs; sandboxed ${m('sandbox', 'server').toFixed(1)} µs core + ${m('sandbox', 'children').toFixed(1)} µs sandbox process; ` +
          `load generator ${m('raw', 'load').toFixed(1)} µs`,
      );
    }
  }

  {
    // Each submit_sm through a sandboxed policy and an outbound bind to an upstream SMSC and back: the gateway's own work.
    const sim = await startServer('sim');
    let fwd: ServerChild | undefined;
    try {
      fwd = await startServer(`forward:${sim.port}`);
      const load = { port: fwd.port, systemId: 'bench', password: 'bench', esmes: 1, window: 64 };
      await runLoad({ ...load, durationMs: Math.min(500, o.durationMs) });
      const runs: LoadResult[] = [];
      const cpu: { core: number; sandbox: number; sim: number; load: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        const { result, perSubmit } = await roundWithCpu([fwd, sim], { ...load, durationMs: slice });
        runs.push(result);
        if (perSubmit) {
          const [gateway, smsc] = perSubmit.servers;
          cpu.push({ core: gateway!.server, sandbox: gateway!.children, sim: smsc!.server, load: perSubmit.load });
        }
      }
      const mid = [...runs].sort((a, b) => a.perSecond - b.perSecond)[runs.length >> 1]!;
      o.print(formatLoad('sluice forwarding upstream w=64 x1', mid));
      Object.assign(figures, { 'forward.w64x1_per_s': mid.perSecond, 'forward.w64x1_p50_ms': median(runs.map((x) => x.p50)) });
      if (cpu.length) {
        const m = (k: 'core' | 'sandbox' | 'sim' | 'load'): number => median(cpu.map((x) => x[k]));
        Object.assign(figures, { 'forward.core_cpu_us': m('core'), 'forward.sandbox_cpu_us': m('sandbox') });
        o.print(
          `  → each submit_sm through a sandboxed policy, submitVia an outbound bind to a simulated SMSC (its own process) and back, median of ${rounds} rounds: ` +
            `CPU per message ${m('core').toFixed(1)} µs core + ${m('sandbox').toFixed(1)} µs sandbox process; the SMSC ${m('sim').toFixed(1)} µs, the load generator ${m('load').toFixed(1)} µs`,
        );
      }
    } finally {
      fwd?.stop();
      sim.stop();
    }
  }

  await storeCase(o, figures);
  await gatewayCase(o, figures, rounds, slice);

  {
    const srv = await startServer('inproc');
    try {
      const dlr = await runLoad({ port: srv.port, systemId: 'bench', password: 'bench', esmes: 1, window: 64, durationMs: Math.min(2000, o.durationMs), dlr: true });
      o.print(formatLoad('sluice in-process echo + DLR w=64', dlr));
      if (dlr.dlrP50 !== undefined) figures['dlr.p50_ms'] = dlr.dlrP50;
      if (dlr.dlrP99 !== undefined) figures['dlr.p99_ms'] = dlr.dlrP99;
    } finally {
      srv.stop();
    }
  }

  {
    const srv = await startServer('noisy');
    try {
      // Alone and with the noise in turns, like the throughput cases: one p99 moves with the machine.
      const quiet = { port: srv.port, systemId: 'quiet', password: 'x', esmes: 1, window: 4, durationMs: slice };
      await runLoad({ ...quiet, durationMs: 500 });
      const alone: LoadResult[] = [];
      const withNoise: LoadResult[] = [];
      const noise: LoadResult[] = [];
      for (let r = 0; r < rounds; r++) {
        alone.push(await runLoad(quiet));
        // Offered well above what its CPU budget lets it handle (each handler spins ~45 ms).
        const noisy = runLoad({ port: srv.port, systemId: 'noisy', password: 'x', esmes: 1, window: 16, durationMs: slice + 500, maxRate: 1000 });
        await new Promise((res) => setTimeout(res, 300));
        withNoise.push(await runLoad(quiet));
        noise.push(await noisy);
        // Its last spinning calls drain before the next quiet-alone run.
        await new Promise((res) => setTimeout(res, 300));
      }
      const each = alone.map((a, i) => withNoise[i]!.p99 / a.p99);
      const ratio = median(each);
      const p99Alone = median(alone.map((x) => x.p99));
      const p99Noise = median(withNoise.map((x) => x.p99));
      o.print(formatLoad('quiet tenant alone w=4', alone[alone.length >> 1]!));
      o.print(formatLoad('quiet tenant, noisy spinning', withNoise[withNoise.length >> 1]!));
      const n = { sent: 0, ok: 0, failed: 0 };
      for (const x of noise) {
        n.sent += x.sent;
        n.ok += x.ok;
        n.failed += x.failed;
      }
      const why = n.failed ? `; refused over its limits: ${formatRefused(addRefused(noise))}` : '';
      o.print(`  noisy tenant (offered 1000/s, spinning ~45 ms per call): ${count(n.sent)} submits, ${count(n.ok)} answered ESME_ROK, ${count(n.failed)} refused${why}`);
      o.print(`  → noisy neighbour, median of ${rounds} rounds: quiet p99 ${p99Noise.toFixed(3)} ms vs ${p99Alone.toFixed(3)} ms alone = ${ratio.toFixed(2)}× (rounds: ${each.map((x) => x.toFixed(2)).join(' ')})`);
      Object.assign(figures, { 'noisy.quiet_p99_alone_ms': p99Alone, 'noisy.quiet_p99_with_noise_ms': p99Noise, 'noisy.p99_ratio': ratio, 'noisy.noisy_refused': n.failed });
    } finally {
      srv.stop();
    }
  }

  {
    const srv = await startServer('sandbox');
    try {
      // First use starts the isolate; time replacements of a live one.
      await runLoad({ port: srv.port, systemId: 'bench', password: 'bench', esmes: 1, window: 1, count: 10 });
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await srv.ask<{ reloadMs: number; ok: boolean }>({ cmd: 'reload', tenant: 'bench', source: policyOfLines(100, `v${i}`) });
        if (!r.ok) throw new Error('reload failed');
        times.push(r.reloadMs);
      }
      o.print(`reload of a 100-line policy, new source → serving: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (20 reloads)`);
      figures['reload.median_ms'] = median(times);
      figures['reload.max_ms'] = Math.max(...times);
    } finally {
      srv.stop();
    }
  }

  if (o.tenants > 0) {
    const srv = await startServer(`tenants:${o.tenants}`);
    try {
      const idle = await srv.ask<{ rss: number; sandboxRss: number }>({ cmd: 'rss' });
      o.print(
        `${o.tenants} configured tenants: started in ${srv.startMs.toFixed(0)} ms; RSS core ${(idle.rss / 1048576).toFixed(1)} MB + sandbox processes ${(idle.sandboxRss / 1048576).toFixed(1)} MB = ${((idle.rss + idle.sandboxRss) / 1048576).toFixed(1)} MB, no traffic`,
      );
      // A cold start is the first bind of an idle tenant: compile, new isolate, top level, handler.
      const cold: number[] = [];
      const warm: number[] = [];
      const active = Math.min(200, o.tenants);
      const clients: EsmeClient[] = [];
      for (let i = 0; i < active; i++) {
        const c = await EsmeClient.connect({ port: srv.port, window: 1 });
        const t0 = performance.now();
        const r = await c.bind(`t${i}`, 'x');
        cold.push(performance.now() - t0);
        if (r.command_status !== ESME_ROK) throw new Error(`bind t${i} refused: ${statusLabel(r.command_status)}`);
        const t1 = performance.now();
        await c.submit({ short_message: Buffer.from('x') });
        warm.push(performance.now() - t1);
        clients.push(c);
      }
      const busy = await srv.ask<{ rss: number; sandboxRss: number }>({ cmd: 'rss' });
      const stats = await srv.ask<{ stats: { tenants: { heapUsed: number; state: string }[] } }>({ cmd: 'stats' });
      const live = stats.stats.tenants.filter((t) => t.state === 'ready');
      const heapPer = live.reduce((a, t) => a + t.heapUsed, 0) / Math.max(1, live.length) / 1048576;
      const rssPer = (busy.sandboxRss - idle.sandboxRss) / active / 1048576;
      o.print(`cold start (first bind of an idle tenant): median ${median(cold).toFixed(2)} ms, p90 ${[...cold].sort((a, b) => a - b)[Math.floor(cold.length * 0.9)]!.toFixed(2)} ms; a warm submit ${median(warm).toFixed(2)} ms`);
      o.print(`active isolate cost: ${rssPer.toFixed(2)} MB RSS each (${active} tenants activated), V8 heap ${heapPer.toFixed(2)} MB each`);
      Object.assign(figures, {
        'tenancy.tenants': o.tenants,
        'tenancy.start_ms': srv.startMs,
        'tenancy.idle_rss_mb': (idle.rss + idle.sandboxRss) / 1048576,
        'tenancy.cold_start_median_ms': median(cold),
        'tenancy.active_isolate_rss_mb': rssPer,
        'tenancy.active_isolate_heap_mb': heapPer,
      });
      for (const c of clients) c.close();
    } finally {
      srv.stop();
    }
  }

  // Idle sessions in a fresh gateway process, so earlier load does not hide their cost.
  const idleSrv = await startServer('inproc');
  try {
    const base = (await idleSrv.ask<{ rss: number }>({ cmd: 'rss' })).rss;
    const idle: EsmeClient[] = [];
    for (let i = 0; i < o.idleSessions; i++) {
      const c = await EsmeClient.connect({ port: idleSrv.port, window: 1 });
      await c.bind('bench', 'bench');
      idle.push(c);
    }
    await new Promise((r) => setTimeout(r, 500));
    const loaded = (await idleSrv.ask<{ rss: number }>({ cmd: 'rss' })).rss;
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

/** Stop a server child and wait (up to 5 s) for it to be gone. */
async function halt(s: ServerChild): Promise<void> {
  const c = s.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  // stop() drops the child's 'exit' listeners: listen after it (the event comes later).
  s.stop();
  const gone = once(c, 'exit').catch(() => undefined);
  const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** `op` with `inFlight` calls outstanding, for `ms`: calls completed and seconds taken. */
async function saturate(inFlight: number, ms: number, op: (i: number) => Promise<unknown>): Promise<{ n: number; seconds: number }> {
  let next = 0;
  let n = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await op(next++);
        n++;
      }
    }),
  );
  return { n, seconds: (performance.now() - t0) / 1000 };
}

/** A journal row as the forwarder writes one for a message an upstream accepted (data ≈300 bytes). */
function benchMsgRow(i: number): MsgRow {
  const now = Date.now();
  const id = `${now.toString(16)}${i.toString(16).padStart(8, '0')}`;
  const uid = `${(0x5f3a0000 + i).toString(16)}-aggregator-${i}`;
  const data = {
    sys: 'acme-app',
    sid: 'sess-7f3e9a1c2b4d5e6f',
    id,
    cmd: 'submit_sm',
    src: 'ACME',
    dst: `3161234${String(i % 10000).padStart(4, '0')}`,
    rd: 1,
    at: now,
    exp: now + 86_400_000,
    n: 1,
    bind: 'aggregator-eu',
    uid,
    stat: 'ENROUTE',
    note: 'x'.repeat(64),
  };
  return { key: `acme/${id}`, tenant: 'acme', up: `acme/aggregator-eu/${uid}`, state: MSG_SENT, due: 0, expires: now + 259_200_000, created: now, route: null, data: JSON.stringify(data) };
}

/** Durable writes per second of one tenant on SQLite: a cache.set per write (the old DLR correlation) vs the group-committed journal. */
async function storeCase(o: CompareOptions, figures: Record<string, number>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-store-'));
  const ms = Math.min(2000, o.durationMs);
  try {
    const store = await CacheStore.open(`sqlite://${path.join(dir, 'a.sqlite')}`);
    let old: { n: number; seconds: number };
    try {
      const cache = store.forTenant('t', { maxBytes: 1 << 30, maxValueBytes: 1 << 16 });
      const value = JSON.stringify({ session: 'sess-0123456789', systemId: 'acme-app', ourId: '7f3e9a1c2b4d' });
      old = await saturate(64, ms, (i) => cache.set(`dlr:${i}`, value, 3_600_000));
    } finally {
      await store.close();
    }
    const journal = new ForwardStore(await sqliteForward(path.join(dir, 'b.sqlite')));
    let fresh: { n: number; seconds: number };
    let bytes = 0;
    try {
      fresh = await saturate(64, ms, (i) => {
        const row = benchMsgRow(i);
        bytes += row.data.length;
        return journal.write([{ t: 'put', row }]);
      });
    } finally {
      await journal.close();
    }
    const oldRate = old.n / old.seconds;
    const newRate = fresh.n / fresh.seconds;
    const perCommit = journal.stats.ops / Math.max(1, journal.stats.commits);
    o.print(`store: durable writes/s per tenant, SQLite, 64 in flight, ${(ms / 1000).toFixed(1)} s each:`);
    o.print(`  cache.set (the old per-DLR correlation)       ${oldRate.toFixed(0).padStart(7)} writes/s  (${old.n} sets; each its own autocommits: usage counter + value, 1 set per 2 commits)`);
    o.print(
      `  forward journal (group commit, ${(bytes / Math.max(1, fresh.n)).toFixed(0)} B rows)  ${newRate.toFixed(0).padStart(7)} writes/s  (${fresh.n} puts in ${journal.stats.commits} commits, ${perCommit.toFixed(1)} ops per commit)`,
    );
    o.print(`  → journal/cache.set ${(newRate / oldRate).toFixed(1)}×`);
    Object.assign(figures, { store_cache_set_per_s: oldRate, store_journal_per_s: newRate, store_ratio: newRate / oldRate, store_journal_ops_per_commit: perCommit });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a `sim:` bench server counts (SimStats). */
interface SimCounters {
  submits: number;
  dlrsSent: number;
  dlrsAcked: number;
}

interface GatewayRun {
  result: LoadResult;
  /** CPU µs per message of each process: [server, its children] per server child, and this load generator. */
  cpu?: { servers: CpuSample[]; load: number };
  /** Journal ops and commits in the run (the gateway only). */
  ops?: number;
  commits?: number;
  /** Messages for the ESME held in the store instead of sent (the gateway only). */
  held?: number;
}

/**
 * The shipped store-and-forward gateway (policies/gateway.ts over a SQLite
 * journal, two binds to two simulated SMSCs) against a bare npm `smpp`
 * relay to its own simulated SMSC, delivery receipts on, at window 1, 64
 * and 64 paced to half the gateway's rate; at window 1 also the floor
 * relay (./floor-relay.ts) to a simulated SMSC of its own; each process its own.
 */
async function gatewayCase(o: CompareOptions, figures: Record<string, number>, rounds: number, slice: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-gw-'));
  const procs: ServerChild[] = [];
  const start = async (kind: string): Promise<ServerChild> => {
    const s = await startServer(kind);
    procs.push(s);
    return s;
  };
  const processes = o.gatewayProcesses ?? 2;
  // Six runs a round: three rounds keep this case near a minute at the default duration.
  rounds = Math.min(rounds, 3);
  try {
    const sim1 = await start('sim:0');
    const sim2 = await start('sim:0');
    const sim3 = await start('sim:0');
    const gw = await start(`gateway:${JSON.stringify({ ports: [sim1.port, sim2.port], dir, processes })}`);
    const relay = await start(`relay:${sim3.port}`);
    // Window 1 only: the relay plus what the design cannot do without (./floor-relay.ts).
    const sim4 = await start('sim:0');
    const floor = await start(`floor:${JSON.stringify({ port: sim4.port, dir })}`);
    const journal = async (): Promise<{ ops: number; commits: number; held: number }> => (await gw.ask<{ journal: { ops: number; commits: number; held: number } }>({ cmd: 'journal' })).journal;
    type Target = 'gateway' | 'relay' | 'floor';
    const target: Record<Target, { port: number; procs: ServerChild[]; sims: ServerChild[] }> = {
      gateway: { port: gw.port, procs: [gw, sim1, sim2], sims: [sim1, sim2] },
      relay: { port: relay.port, procs: [relay, sim3], sims: [sim3] },
      floor: { port: floor.port, procs: [floor, sim4], sims: [sim4] },
    };
    // Receipts the sims still have to hand over (a backlog, when receipts fall behind submits) are
    // the round's work too: wait until they are answered or stop moving (at most 5 s more) before the
    // CPU is read, so they count here and do not spill into the next round.
    const settle = (sims: ServerChild[]) => async (): Promise<void> => {
      const state = async (): Promise<{ open: number; done: number }> => {
        const st = await Promise.all(sims.map(async (x) => (await x.ask<{ sim: SimCounters }>({ cmd: 'journal' })).sim));
        return { open: st.reduce((a, x) => a + x.dlrsSent - x.dlrsAcked, 0), done: st.reduce((a, x) => a + x.dlrsAcked, 0) };
      };
      const end = performance.now() + 5000;
      let last = await state();
      while (last.open > 0 && performance.now() < end) {
        await new Promise((r) => setTimeout(r, 250));
        const now = await state();
        if (now.done === last.done) break;
        last = now;
      }
    };
    const run = async (t: Target, window: number, durationMs: number, maxRate?: number): Promise<GatewayRun> => {
      const j0 = t === 'gateway' ? await journal() : undefined;
      const load: LoadOptions = { port: target[t].port, systemId: 'acme-app', password: 'acme-pw', esmes: 1, window, durationMs, dlr: true };
      if (maxRate) load.maxRate = maxRate;
      const { result, perSubmit } = await roundWithCpu(target[t].procs, load, settle(target[t].sims));
      const out: GatewayRun = { result };
      if (perSubmit) out.cpu = perSubmit;
      if (j0) {
        const j1 = await journal();
        out.ops = j1.ops - j0.ops;
        out.commits = j1.commits - j0.commits;
        out.held = j1.held - j0.held;
      }
      return out;
    };
    // The gateway's rate still climbs for seconds after start (JIT of the core, the policy and the sandbox channel): warm both up first.
    for (const t of ['gateway', 'relay'] as const) {
      await run(t, 64, Math.min(2000, o.durationMs));
      await run(t, 1, Math.min(300, o.durationMs));
    }
    await run('floor', 1, Math.min(1000, o.durationMs));
    const keys = ['w1', 'w64', 'half'] as const;
    const runs: Record<string, GatewayRun[]> = {};
    for (const k of keys) for (const t of ['gateway', 'relay']) runs[`${t}.${k}`] = [];
    runs['floor.w1'] = [];
    for (let r = 0; r < rounds; r++) {
      for (const t of ['gateway', 'relay', 'floor'] as const) runs[`${t}.w1`]!.push(await run(t, 1, slice));
      for (const t of ['gateway', 'relay'] as const) runs[`${t}.w64`]!.push(await run(t, 64, slice));
      // Both offered the same rate, half what the gateway managed at window 64 this round.
      const half = runs['gateway.w64']![r]!.result.perSecond / 2;
      for (const t of ['gateway', 'relay'] as const) runs[`${t}.half`]!.push(await run(t, 64, slice, half));
    }
    const mid = (xs: GatewayRun[]): LoadResult => [...xs].sort((a, b) => a.result.perSecond - b.result.perSecond)[xs.length >> 1]!.result;
    const med = (xs: GatewayRun[], f: (x: GatewayRun) => number | undefined): number => median(xs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
    const procs0 = processes === 1 ? '1 sandbox process' : `${processes} sandbox processes`;
    o.print(`gateway path: the shipped gateway (policies/gateway.ts, SQLite journal, ${procs0}, binds to 2 sims) vs a bare npm smpp relay (1 upstream session to its own sim); receipts on, sims --dlr-delay-ms 0`);
    for (const k of keys) {
      const g = runs[`gateway.${k}`]!;
      const rl = runs[`relay.${k}`]!;
      const label = k === 'half' ? 'w=64 half rate' : `w=${k.slice(1)}`;
      o.print(formatLoad(`shipped gateway ${label}`, mid(g)));
      o.print(formatLoad(`npm smpp relay ${label}`, mid(rl)));
      const each = g.map((x, i) => x.result.perSecond / rl[i]!.result.perSecond);
      const ratio = median(each);
      const rp = (xs: GatewayRun[], p: 'dlrP50' | 'dlrP99'): number => med(xs, (x) => x.result[p]);
      const writes = med(g, (x) => (x.ops !== undefined ? x.ops / x.result.sent : undefined));
      const commits = med(g, (x) => (x.commits !== undefined ? x.commits / x.result.sent : undefined));
      const held = g.reduce((a, x) => a + (x.held ?? 0), 0);
      const suffix = k === 'half' ? '_half_rate' : `_${k}`;
      const name = k === 'half' ? `window 64 at half the gateway's rate (${(mid(g).perSecond).toFixed(0)}/s offered to both)` : `window ${k.slice(1)}`;
      o.print(
        `  → ${name}, median of ${rounds} rounds: gateway/relay ${ratio.toFixed(2)}× (rounds: ${each.map((x) => x.toFixed(2)).join(' ')}); ` +
          `submit p50/p99 gateway ${med(g, (x) => x.result.p50).toFixed(3)}/${med(g, (x) => x.result.p99).toFixed(3)} ms, relay ${med(rl, (x) => x.result.p50).toFixed(3)}/${med(rl, (x) => x.result.p99).toFixed(3)} ms; ` +
          `receipt round trip p50/p99 gateway ${rp(g, 'dlrP50').toFixed(3)}/${rp(g, 'dlrP99').toFixed(3)} ms, relay ${rp(rl, 'dlrP50').toFixed(3)}/${rp(rl, 'dlrP99').toFixed(3)} ms; ` +
          `journal ${writes.toFixed(2)} writes per message in ${commits.toFixed(3)} commits per message (${(writes / commits).toFixed(1)} writes per commit); ` +
          `receipts held in the store instead of sent, all rounds: ${held}`,
      );
      Object.assign(figures, {
        [`gateway${suffix}_per_s`]: mid(g).perSecond,
        [`relay${suffix}_per_s`]: mid(rl).perSecond,
        [`gateway_relay_ratio${suffix}`]: ratio,
        [`gateway${suffix}_p50_ms`]: med(g, (x) => x.result.p50),
        [`gateway${suffix}_p99_ms`]: med(g, (x) => x.result.p99),
        [`relay${suffix}_p50_ms`]: med(rl, (x) => x.result.p50),
        [`relay${suffix}_p99_ms`]: med(rl, (x) => x.result.p99),
        [`gateway_receipt_p50${suffix}_ms`]: rp(g, 'dlrP50'),
        [`gateway_receipt_p99${suffix}_ms`]: rp(g, 'dlrP99'),
        [`relay_receipt_p50${suffix}_ms`]: rp(rl, 'dlrP50'),
        [`relay_receipt_p99${suffix}_ms`]: rp(rl, 'dlrP99'),
        [`gateway_store_writes_per_msg${suffix}`]: writes,
        [`gateway_store_commits_per_msg${suffix}`]: commits,
        [`gateway_held${suffix}`]: held,
      });
      if (k === 'w64') Object.assign(figures, { gateway_store_writes_per_msg: writes, gateway_store_commits_per_msg: commits });
      if (k === 'w1') {
        const fl = runs['floor.w1']!;
        const floorRelay = median(fl.map((x, i) => x.result.perSecond / rl[i]!.result.perSecond));
        const gatewayFloor = median(g.map((x, i) => x.result.perSecond / fl[i]!.result.perSecond));
        o.print(formatLoad('floor relay w=1', mid(fl)));
        o.print(
          `  → window 1 floor (the relay plus one process hop per submit and each state of a message committed to the journal, nothing of Sluice; docs/design.md, "Window 1 and its floor"): ` +
            `floor/relay ${floorRelay.toFixed(2)}×, gateway/floor ${gatewayFloor.toFixed(2)}×; submit p50 floor ${med(fl, (x) => x.result.p50).toFixed(3)} ms`,
        );
        Object.assign(figures, { floor_w1_per_s: mid(fl).perSecond, floor_relay_ratio_w1: floorRelay, gateway_floor_ratio_w1: gatewayFloor, floor_w1_p50_ms: med(fl, (x) => x.result.p50) });
      }
      const failed = [...g, ...rl].reduce((a, x) => a + x.result.failed, 0);
      if (failed) o.print(`  note: ${count(failed)} submits were refused in these runs (not in the rates): ${formatRefused(addRefused([...g, ...rl].map((x) => x.result)))}`);
      const late = (xs: GatewayRun[]): number => med(xs, (x) => (x.result.ok ? 1 - x.result.dlrs / x.result.ok : undefined));
      Object.assign(figures, { [`gateway_receipts_late${suffix}`]: late(g), [`relay_receipts_late${suffix}`]: late(rl) });
      if (late(g) > 0.001 || late(rl) > 0.001)
        o.print(
          `  note: receipts not at the ESME within 2 s of the last submit (median of rounds): gateway ${(late(g) * 100).toFixed(1)}%, relay ${(late(rl) * 100).toFixed(1)}% — ` +
            `receipts fell behind submits and queued at the sims (each keeps to its bind's window of 64); those are not in the receipt percentiles`,
        );
      if (g.every((x) => x.cpu) && rl.every((x) => x.cpu)) {
        const c = (xs: GatewayRun[], f: (x: { servers: CpuSample[]; load: number }) => number): number => med(xs, (x) => f(x.cpu!));
        const cpu = {
          core: c(g, (x) => x.servers[0]!.server),
          sandbox: c(g, (x) => x.servers[0]!.children),
          sim1: c(g, (x) => x.servers[1]!.server),
          sim2: c(g, (x) => x.servers[2]!.server),
          gwLoad: c(g, (x) => x.load),
          relay: c(rl, (x) => x.servers[0]!.server),
          relaySim: c(rl, (x) => x.servers[1]!.server),
          relayLoad: c(rl, (x) => x.load),
        };
        o.print(
          `  CPU per message, median of rounds: gateway core ${cpu.core.toFixed(1)} µs + sandbox processes ${cpu.sandbox.toFixed(1)} µs, its sims ${cpu.sim1.toFixed(1)} + ${cpu.sim2.toFixed(1)} µs, load generator ${cpu.gwLoad.toFixed(1)} µs; ` +
            `relay ${cpu.relay.toFixed(1)} µs, its sim ${cpu.relaySim.toFixed(1)} µs, load generator ${cpu.relayLoad.toFixed(1)} µs; gateway (core + sandbox) / relay ${((cpu.core + cpu.sandbox) / cpu.relay).toFixed(1)}×`,
        );
        Object.assign(figures, {
          [`gateway${suffix}_core_cpu_us`]: cpu.core,
          [`gateway${suffix}_sandbox_cpu_us`]: cpu.sandbox,
          [`gateway${suffix}_sims_cpu_us`]: cpu.sim1 + cpu.sim2,
          [`gateway${suffix}_load_cpu_us`]: cpu.gwLoad,
          [`relay${suffix}_cpu_us`]: cpu.relay,
          [`relay${suffix}_sim_cpu_us`]: cpu.relaySim,
          [`relay${suffix}_load_cpu_us`]: cpu.relayLoad,
        });
      }
    }
    figures.gateway_sandbox_processes = processes;
    // An entry over inline_entry_ms (a GC pause is enough) sends the tenant's entries to the isolate's own thread for a while: say so.
    const st = await gw.ask<{ stats?: { tenants: TenantStats[] } }>({ cmd: 'stats' });
    const t = st.stats?.tenants.find((x) => x.tenant === 'acme');
    if (t) {
      figures.gateway_inline_offences = t.inlineOffences;
      if (!t.inline || t.inlineOffences > 0)
        o.print(`  note: the gateway tenant's policy entries ${t.inline ? 'were inline at the end' : 'were NOT inline at the end'} of this case (${t.inlineOffences} inline offences, ${t.throttled} throttled, ${t.timeouts} timeouts)`);
    }
  } finally {
    await Promise.all(procs.map(halt));
    rmSync(dir, { recursive: true, force: true });
  }
}

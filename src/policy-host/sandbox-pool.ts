// One file on purpose: the supervision of the sandbox processes and the PolicyHost seam share one in-flight table (per
// process, per tenant, per frame) that a crash or restart answers from. Host calls are read in
// sandbox-protocol/host-calls.ts, strikes counted in util/strikes.ts.
import { isDeepStrictEqual } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { CacheStore, TenantCache } from '../cache';
import type { TenantConfig } from '../config/schema';
import type { BindDecision, BindRequest, PduOutcome, PolicyHost, SessionEvent, SessionInfo } from '../dispatch/policy-host';
import { SluiceError } from '../errors';
import { forwardAnswer, type ForwardResult } from '../forward/messages';
import type { Gateway } from '../gateway';
import type { PolicyPdu } from '../pdu/model';
import { PolicyTimers } from '../tenants/policy-timers';
import { TokenBucket } from '../throttle/token-bucket';
import { realClock, type Clock } from '../util/clock';
import { ESME_RINVSYSID, ESME_RSYSERR, ESME_RTHROTTLED } from '../wire/status';
import type { Socket } from 'node:net';
import { Channel } from '../sandbox-protocol/channel';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import { publicConfig } from '../sandbox-protocol/boot';
import { policyError, readHostCall, runHostCall, type HostCall, type HostCallHandlers } from '../sandbox-protocol/host-calls';
import type { BootInfo, FromSandbox, SandboxOutcome, TenantStats, ToSandbox } from '../sandbox-protocol/messages';
import { doubling } from '../util/backoff';
import { STRIKE_DEFAULTS, Strikes } from '../util/strikes';

/**
 * The core's side of the sandbox: it never loads isolated-vm itself. Tenants
 * are spread over `sandbox.processes` supervised child processes; this class
 * forwards every bind, PDU, session event and timer to the right one, serves
 * the policies' host calls (send helpers, cache, timers, logs) strictly
 * within their own tenant, and when a sandbox process dies answers its
 * in-flight calls ESME_RSYSERR, restarts it and penalises the tenant that
 * was running. A PDU whose policy had already forwarded it (`smpp.forward`)
 * is answered with that forward's result instead, as the policy's
 * `return smpp.forward(pdu)` would have: the message may be on its way.
 */

/** How long a stats request waits for a sandbox process's answer. */
const STATS_TIMEOUT_MS = 2000;

export interface SandboxPoolOptions {
  processes: number;
  /** `sandbox.inline_entry_ms`: longest a policy entry may run on its sandbox process's own thread; 0 or absent: never. */
  inlineEntryMs?: number;
  tenants: readonly TenantConfig[];
  logger: Logger;
  cache: CacheStore;
  clock?: Clock;
  /** Resolve tenants' relative policy paths against this directory. */
  cwd?: string;
  idleEvictMs?: number;
  /** Sandbox process crashes within 10 minutes that quarantine a tenant. */
  quarantineAfter?: number;
  /** First penalty delay after a crash; doubles per crash. */
  penaltyBaseMs?: number;
}

interface Proc {
  index: number;
  child: ChildProcess | undefined;
  out: Channel<FromSandbox, ToSandbox> | undefined;
  ready: Promise<void>;
  /** dispatch id → call, for crash handling */
  inFlight: Map<number, InFlight>;
  /** PDU dispatches in flight (given as frames) by sequence number, chained through `sameSeq`: how a forward finds the dispatch of its PDU. */
  bySeq: Map<number, InFlight>;
  restarts: number;
  /** Restarts since the pool started (restarts is reset after a minute up; this is not). */
  restartsTotal: number;
  /** The tenant the sandbox named in a `fatal` message before it died. */
  fatal?: string;
  /** Tenants with a load (compile + top level) running, by request id. */
  loading: Map<number, string>;
  /** Host calls in flight per tenant: a tenant waiting on the host is not running. */
  hostWaits: Map<string, number>;
  /** Set while the process is being replaced. */
  restarting?: Promise<void>;
}

interface InFlight {
  /** Its dispatch id (the key of `inFlight`). */
  id: number;
  tenant: string;
  startedAt: number;
  resolve: (o: SandboxOutcome) => void;
  /** A PDU given as its frame: that frame, its sequence number and the session it came on (a forward of it carries both). */
  frame: Uint8Array | undefined;
  seq: number;
  sessionId: string | undefined;
  /** The next PDU dispatch in flight with the same sequence number (another session's, mostly). */
  sameSeq: InFlight | undefined;
  /** The policy forwarded this PDU: what its last forward answers it with (undefined: the forward failed). */
  forwarded: Promise<PduOutcome | undefined> | undefined;
}

/** A failed dispatch that a forward of its PDU answers instead: its policy was lost with the forward under way, not a policy that threw or refused. */
const LOST: ReadonlySet<string> = new Set(['crash', 'memory']);

/** The sequence number in an SMPP frame's header. */
function frameSeq(frame: Uint8Array): number {
  return ((frame[12]! << 24) | (frame[13]! << 16) | (frame[14]! << 8) | frame[15]!) >>> 0;
}

interface TenantEntry {
  config: TenantConfig;
  proc: number;
  source?: string;
  filename: string;
  loadError?: PolicyDiagnostic[];
  /** Sandbox process crashes laid to this tenant. */
  strikes: Strikes;
  penaltyUntil: number;
  /** Until then the tenant is over its CPU budget: its message PDUs get ESME_RTHROTTLED here. */
  throttledUntil: number;
  /** clock.now() when its sandbox last said it was over its CPU budget; 0: never. */
  throttledAt: number;
  cpuThrottled: number;
  quarantined: boolean;
  /** Running totals for the metrics: sandbox crashes laid to it, quarantines, versions swapped in and refused. */
  totals: TenantTotals;
  cache: TenantCache;
  logBucket: TokenBucket;
  logger: Logger;
}


/** A tenant's running totals in the pool (they only grow; the metrics read them). */
export interface TenantTotals {
  crashes: number;
  quarantines: number;
  /** New versions started and swapped in (file change, upload, rollback, config reload). */
  reloads: number;
  /** New versions that did not start: the previous one kept serving. */
  reloadFailures: number;
}

function policyFilename(config: TenantConfig): string {
  return config.policy ? path.basename(config.policy) : `${config.id}.policy`;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** What the core knows of a tenant's sandbox (the admin API and the status page show it). */
export interface TenantPoolState {
  quarantined: boolean;
  penalised: boolean;
  /** Strikes within the strike window. */
  crashes: number;
  /** PDUs refused in the core for the CPU budget. */
  cpuThrottled: number;
  /** How long ago its sandbox last said it was over its CPU budget; null: never. */
  throttledAgoMs: number | null;
  loadError?: PolicyDiagnostic[];
}

export class SandboxPool implements PolicyHost {
  private readonly procs: Proc[] = [];
  private readonly tenants = new Map<string, TenantEntry>();
  /** Uploaded sources that serve instead of tenants' files (see `pin`). */
  private readonly pinned = new Map<string, string>();
  private gateway: Gateway | undefined;
  private nextId = 0;
  private readonly loads = new Map<number, (r: { ok: true; version: number; hash: string } | { ok: false; errors: PolicyDiagnostic[] }) => void>();
  private readonly statsWaiters = new Map<number, (s: { tenants: TenantStats[]; rss: number }) => void>();
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly timers: PolicyTimers;
  private stopped = false;

  constructor(private readonly opts: SandboxPoolOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ component: 'sandbox' });
    this.timers = new PolicyTimers(this.clock, (tenant, name, payload) => void this.call(tenant, 'timer', { name, payload }));
    for (let i = 0; i < Math.max(1, opts.processes); i++) this.procs.push({ index: i, child: undefined, out: undefined, ready: Promise.resolve(), inFlight: new Map(), bySeq: new Map(), restarts: 0, restartsTotal: 0, loading: new Map(), hostWaits: new Map() });
    for (const t of opts.tenants) this.addTenant(t);
  }

  /** The gateway whose send paths policies use. */
  attach(gateway: Gateway): void {
    this.gateway = gateway;
  }

  private addTenant(config: TenantConfig): void {
    const entry: TenantEntry = {
      config,
      proc: fnv(config.id) % this.procs.length,
      filename: policyFilename(config),
      strikes: new Strikes({ ...STRIKE_DEFAULTS, baseMs: this.opts.penaltyBaseMs ?? STRIKE_DEFAULTS.baseMs, quarantineAfter: this.opts.quarantineAfter ?? STRIKE_DEFAULTS.quarantineAfter }),
      penaltyUntil: 0,
      throttledUntil: 0,
      throttledAt: 0,
      cpuThrottled: 0,
      quarantined: false,
      totals: { crashes: 0, quarantines: 0, reloads: 0, reloadFailures: 0 },
      cache: this.opts.cache.forTenant(config.id, { maxBytes: config.limits.max_cache_mb * 1048576, maxValueBytes: config.limits.max_value_kb * 1024 }),
      logBucket: new TokenBucket(config.limits.max_log_per_s, this.clock),
      logger: this.opts.logger.child({ tenant: config.id, source: 'policy' }),
    };
    this.tenants.set(config.id, entry);
  }

  /**
   * A config reload's tenant list. A removed tenant leaves its sandbox
   * process (its calls in flight are answered as unavailable; its cache data
   * stays). A new one registers as at start: its isolate starts on first
   * use. A changed one takes its new limits and config views with its policy
   * (re-read if its file changed) started in a fresh isolate and swapped in,
   * as any reload; if that fails, its old version keeps serving. Unchanged
   * tenants are not touched. Resolves with the tenants whose policy failed.
   */
  async applyTenants(next: readonly TenantConfig[]): Promise<{ tenant: string; errors: PolicyDiagnostic[] }[]> {
    const ids = new Set(next.map((t) => t.id));
    for (const [id, t] of [...this.tenants]) {
      if (ids.has(id)) continue;
      this.tenants.delete(id);
      this.timers.clearTenant(id);
      const p = this.procs[t.proc]!;
      this.send(p, { t: 'remove', tenant: id });
      for (const [callId, f] of [...p.inFlight]) {
        if (f.tenant !== id) continue;
        this.take(p, callId);
        f.resolve({ kind: 'error', reason: 'unavailable', message: 'tenant removed by a config reload' });
      }
    }
    const loads: Promise<{ tenant: string; errors: PolicyDiagnostic[] } | undefined>[] = [];
    const failed = (tenant: string, r: { ok: true } | { ok: false; errors: PolicyDiagnostic[] }): { tenant: string; errors: PolicyDiagnostic[] } | undefined =>
      r.ok ? undefined : { tenant, errors: r.errors };
    for (const cfg of next) {
      const t = this.tenants.get(cfg.id);
      if (!t) {
        this.addTenant(cfg);
        const added = this.tenants.get(cfg.id)!;
        if (this.readSource(added)) loads.push(this.register(added, false).then((r) => failed(cfg.id, r)));
        else if (added.loadError) loads.push(Promise.resolve({ tenant: cfg.id, errors: added.loadError }));
        continue;
      }
      if (isDeepStrictEqual(t.config, cfg)) continue;
      const before = t.config;
      t.config = cfg;
      if (!isDeepStrictEqual(before.limits, cfg.limits)) {
        t.cache = this.opts.cache.forTenant(cfg.id, { maxBytes: cfg.limits.max_cache_mb * 1048576, maxValueBytes: cfg.limits.max_value_kb * 1024 });
        t.logBucket = new TokenBucket(cfg.limits.max_log_per_s, this.clock);
      }
      if (before.policy !== cfg.policy) {
        // The old version keeps serving if the new file cannot be read.
        const previous = { source: t.source, filename: t.filename };
        t.filename = policyFilename(cfg);
        if (!this.readSource(t)) {
          t.source = previous.source;
          t.filename = previous.filename;
          loads.push(Promise.resolve({ tenant: cfg.id, errors: t.loadError ?? [{ file: t.filename, line: 0, column: 0, message: 'tenant has no policy file; its previous version keeps serving' }] }));
          continue;
        }
      }
      if (t.source === undefined) continue;
      // As an upload does, a version started with the new config lifts a quarantine (new limits, a new chance).
      loads.push(
        this.register(t, true).then((r) => {
          if (r.ok) this.activated(t, r);
          return failed(cfg.id, r);
        }),
      );
    }
    return (await Promise.all(loads)).filter((x): x is { tenant: string; errors: PolicyDiagnostic[] } => x !== undefined);
  }

  /**
   * An uploaded version serves `tenant` instead of its file: from now on a
   * registration (at start, a new or changed tenant in a config reload) takes
   * `source`. It does not load anything itself; `reload` does.
   */
  pin(tenant: string, source: string): void {
    this.pinned.set(tenant, source);
  }

  /** The tenant's file serves again at its next registration. */
  unpin(tenant: string): void {
    this.pinned.delete(tenant);
  }

  /** Read a tenant's pinned source, else its policy file, into `source`; false (with `loadError` set and logged) when it has neither or the file cannot be read. */
  private readSource(t: TenantEntry): boolean {
    const pinned = this.pinned.get(t.config.id);
    if (pinned !== undefined) {
      t.source = pinned;
      return true;
    }
    const file = this.policyPath(t);
    if (!file) return false;
    try {
      t.source = readFileSync(file, 'utf8');
      return true;
    } catch (err) {
      t.loadError = [{ file: t.filename, line: 0, column: 0, message: `cannot read policy: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }];
      this.log.error({ tenant: t.config.id, policy: t.config.policy }, 'cannot read policy file');
      return false;
    }
  }

  private policyPath(t: TenantEntry): string | undefined {
    return t.config.policy ? path.resolve(this.opts.cwd ?? process.cwd(), t.config.policy) : undefined;
  }

  /** Start the sandbox processes and register every tenant's policy (isolates start lazily). */
  async start(): Promise<void> {
    for (const p of this.procs) this.spawn(p);
    await Promise.all(this.procs.map((p) => p.ready));
    const loads: Promise<unknown>[] = [];
    for (const t of this.tenants.values()) if (this.readSource(t)) loads.push(this.register(t, false));
    await Promise.all(loads);
  }

  private spawn(p: Proc): void {
    const entry = path.join(__dirname, '..', 'sandbox-process', 'main.js');
    const child = spawn(process.execPath, ['--no-node-snapshot', entry, String(this.opts.idleEvictMs ?? 600_000), String(this.opts.inlineEntryMs ?? 0)], {
      // fd 3 is the channel (a socket pair).
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      // Nothing of the core's environment (tokens, passwords) goes to the sandbox.
      env: { NODE_ENV: process.env.NODE_ENV ?? 'production' },
    });
    p.child = child;
    let ready!: () => void;
    p.ready = new Promise((resolve) => (ready = resolve));
    p.out = new Channel<FromSandbox, ToSandbox>(
      child.stdio[3] as Socket,
      (m) => {
        if (m.t === 'ready') ready();
        for (const tap of this.taps) if (tap.proc === p.index) tap.fn(m);
        this.onMessage(p, m);
      },
      // Never expected (everything sent is plain data); a dispatch dropped here is answered at its deadline.
      (m, err) => this.log.error({ message: m.t, err: err.message }, 'sandbox channel: a message could not be sent'),
    );
    // A channel that breaks (a frame that does not decode) means a sandbox that cannot be trusted to go on: replace it.
    (child.stdio[3] as Socket).on('close', () => {
      if (p.child === child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    // 'close', not 'exit': after the channel too has ended, so what the process
    // wrote just before it died (a sentry's `fatal` naming the tenant) is read first.
    child.on('close', (code, signal) => this.onExit(p, child, code, signal));
    child.on('error', (err) => this.log.error({ proc: p.index, err: err.message }, 'sandbox process error'));
  }

  private readonly taps = new Set<{ proc: number; fn: (m: FromSandbox) => void }>();

  /** Every message the sandbox process hosting `tenant` sends from now on (tests watch what crosses). */
  watch(tenant: string, fn: (m: FromSandbox) => void): () => void {
    const t = this.tenants.get(tenant);
    if (!t) throw new SluiceError('UNKNOWN_TENANT');
    const tap = { proc: t.proc, fn };
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  private send(p: Proc, m: ToSandbox): boolean {
    const out = p.out;
    if (!p.child || !out || !out.open) return false;
    out.send(m);
    return true;
  }

  private register(t: TenantEntry, activate: boolean): Promise<{ ok: true; version: number; hash: string } | { ok: false; errors: PolicyDiagnostic[] }> {
    const reqId = ++this.nextId;
    const boot: BootInfo = { tenant: t.config.id, config: publicConfig(t.config), routing: t.config.routing, settings: t.config.settings };
    const proc = this.procs[t.proc]!;
    return new Promise((resolve) => {
      this.loads.set(reqId, resolve);
      if (activate) proc.loading.set(reqId, t.config.id);
      const sent = this.send(proc, { t: 'register', reqId, tenant: t.config.id, source: t.source ?? '', filename: t.filename, limits: t.config.limits, boot, activate });
      if (!sent) {
        this.loads.delete(reqId);
        proc.loading.delete(reqId);
        resolve({ ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: 'sandbox process unavailable' }] });
      }
    }).then((r) => {
      const result = r as { ok: true; version: number; hash: string } | { ok: false; errors: PolicyDiagnostic[] };
      if (activate) {
        if (result.ok) t.totals.reloads++;
        else t.totals.reloadFailures++;
      }
      if (!result.ok) {
        this.rejected(t, result.errors);
      } else {
        t.loadError = undefined;
      }
      return result;
    });
  }

  /**
   * Replace a tenant's policy: compiled and started in a fresh isolate under
   * the limits, swapped in only if that succeeds. The old version keeps
   * serving otherwise, and the errors (line:column in the tenant's source)
   * come back.
   */
  async reload(tenant: string, source?: string): Promise<{ ok: true; version: number; hash: string } | { ok: false; errors: PolicyDiagnostic[] }> {
    const t = this.tenants.get(tenant);
    if (!t) throw new SluiceError('UNKNOWN_TENANT');
    let text = source;
    if (text === undefined) {
      const file = this.policyPath(t);
      if (!file) return { ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: 'tenant has no policy file' }] };
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        return { ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: `cannot read policy: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }] };
      }
    }
    const previous = t.source;
    t.source = text;
    const r = await this.register(t, true);
    if (!r.ok) {
      // The old version keeps serving; so must the source we re-register after a crash.
      t.source = previous;
      return r;
    }
    this.activated(t, r);
    return r;
  }

  /** A version started and swapped in: the tenant's quarantine and crash penalties are behind it. */
  private activated(t: TenantEntry, r: { version: number; hash: string }): void {
    t.quarantined = false;
    t.strikes.reset();
    t.penaltyUntil = 0;
    this.log.info({ tenant: t.config.id, version: r.version, hash: r.hash }, 'policy version active');
  }

  private onMessage(p: Proc, m: FromSandbox): void {
    switch (m.t) {
      case 'outcome': {
        const f = this.take(p, m.id);
        if (!f) return;
        // The isolate was lost (memory limit, stopped) with a forward of this PDU under way.
        if (f.forwarded && m.outcome.kind === 'error' && LOST.has(m.outcome.reason)) this.answerForwarded(f, m.outcome);
        else f.resolve(m.outcome);
        return;
      }
      case 'loaded': {
        p.loading.delete(m.reqId);
        const r = this.loads.get(m.reqId);
        this.loads.delete(m.reqId);
        r?.(m.result);
        return;
      }
      case 'compileFailed': {
        const t = this.tenants.get(m.tenant);
        if (t) this.rejected(t, m.errors);
        return;
      }
      case 'fatal':
        p.fatal = m.tenant;
        return;
      case 'hostCall': {
        p.hostWaits.set(m.tenant, (p.hostWaits.get(m.tenant) ?? 0) + 1);
        // The result goes to the process that asked: a replacement numbers its host calls afresh from 1.
        const out = p.out;
        const call = this.hostCall(m.tenant, m.op, m.args);
        if (m.op === 'forward') this.noteForward(p, m.tenant, m.args, call);
        void call
          .finally(() => {
            if (p.out !== out) return;
            const n = (p.hostWaits.get(m.tenant) ?? 1) - 1;
            if (n > 0) p.hostWaits.set(m.tenant, n);
            else p.hostWaits.delete(m.tenant);
          })
          .then(
          (value) => p.out === out && this.send(p, { t: 'hostResult', id: m.id, ok: true, value }),
          (err: unknown) => {
            if (!(err instanceof SluiceError)) this.log.warn({ tenant: m.tenant, op: m.op, err: (err as Error)?.message }, 'host call failed');
            if (p.out === out) this.send(p, { t: 'hostResult', id: m.id, ok: false, value: policyError(err) });
          },
        );
        return;
      }
      case 'log':
        this.policyLog(m.tenant, m.level, m.msg, m.fields);
        return;
      case 'stats': {
        const w = this.statsWaiters.get(m.reqId);
        this.statsWaiters.delete(m.reqId);
        w?.({ tenants: m.tenants, rss: m.rss });
        return;
      }
      case 'ready':
        return;
    }
  }

  private policyLog(tenant: string, level: string, msg: string, fields: unknown): void {
    const t = this.tenants.get(tenant);
    if (!t || !t.logBucket.tryTake()) return;
    const lvl = level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? level : 'info';
    t.logger[lvl]({ policy_fields: fields }, String(msg).slice(0, 2048));
  }

  /** A version of the tenant's policy did not load (at registration, ahead of use, or on a reload): its load errors, logged. */
  private rejected(t: TenantEntry, errors: PolicyDiagnostic[]): void {
    t.loadError = errors;
    this.log.error({ tenant: t.config.id, errors }, 'policy rejected');
  }

  /** A policy's call into the host, always within its own tenant: read at the boundary, then one typed handler per op. */
  private hostCall(tenant: string, op: string, args: unknown): Promise<unknown> {
    const t = this.tenants.get(tenant);
    if (!t) return Promise.reject(new SluiceError('UNKNOWN_TENANT'));
    let call: HostCall;
    try {
      call = readHostCall(op, args);
    } catch (err) {
      return Promise.reject(err);
    }
    return runHostCall(this.handlers, tenant, call);
  }

  private readonly handlers: HostCallHandlers = {
    sendVia: async (tenant, a) => {
      if (!this.gateway) throw new SluiceError('BIND_DOWN', 'gateway not running');
      return this.gateway.sendVia(tenant, a.bind, a.command, a.fields);
    },
    sendTo: async (tenant, a) => {
      if (!this.gateway) throw new SluiceError('UNKNOWN_SESSION', 'gateway not running');
      return this.gateway.sendTo(tenant, a.sessionId, a.command, a.fields);
    },
    cache: async (tenant, a) => {
      const cache = this.tenants.get(tenant)!.cache;
      switch (a.op) {
        case 'get':
          return (await cache.get(a.key)) ?? null;
        case 'set':
          await cache.set(a.key, a.json, a.ttlMs);
          return true;
        case 'delete':
          return cache.delete(a.key);
        case 'has':
          return cache.has(a.key);
      }
    },
    forward: async (tenant, a) => {
      if (!this.gateway) throw new SluiceError('BIND_DOWN', 'gateway not running');
      return this.gateway.forward(tenant, a);
    },
    timer: async (tenant, a) => this.timers.call(tenant, a),
  };

  private onExit(p: Proc, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (p.child !== child) return;
    p.child = undefined;
    p.out?.clear();
    p.out = undefined;
    const now = this.clock.now();
    // Who took the process down: the tenant the sandbox named as it died; else
    // one whose policy was loading; else the tenant whose call has been running
    // longest — not counting tenants that were only waiting on the host.
    let culprit: string | undefined = p.fatal;
    if (!culprit && p.loading.size > 0) culprit = p.loading.values().next().value;
    if (!culprit) {
      let oldest: InFlight | undefined;
      for (const f of p.inFlight.values()) if (!p.hostWaits.has(f.tenant) && (!oldest || f.startedAt < oldest.startedAt)) oldest = f;
      culprit = oldest?.tenant;
    }
    p.fatal = undefined;
    p.loading.clear();
    p.hostWaits.clear();
    const failed = p.inFlight.size;
    let forwarded = 0;
    for (const f of p.inFlight.values()) {
      const crash: SandboxOutcome = { kind: 'error', reason: 'crash', message: 'sandbox process died' };
      if (f.forwarded) {
        forwarded++;
        this.answerForwarded(f, crash);
      } else f.resolve(crash);
    }
    p.inFlight.clear();
    p.bySeq.clear();
    for (const [reqId, r] of this.loads) {
      this.loads.delete(reqId);
      r({ ok: false, errors: [{ file: '', line: 0, column: 0, message: 'sandbox process died while loading' }] });
    }
    if (this.stopped) return;
    this.log.error({ proc: p.index, code, signal, in_flight: failed, answered_by_forward: forwarded, culprit }, 'sandbox process died; restarting');
    if (culprit) this.penalise(culprit, `sandbox process died (${signal ?? code}) while its policy ran`);
    p.restarts++;
    p.restartsTotal++;
    const delay = doubling(50, p.restarts, 5000);
    // Calls that arrive meanwhile wait for the new process (the core's deadline bounds the wait).
    let back!: () => void;
    p.restarting = new Promise<void>((r) => (back = r));
    this.clock.setTimeout(() => {
      if (this.stopped) return back();
      this.spawn(p);
      void p.ready.then(() => {
        for (const t of this.tenants.values()) if (t.proc === p.index && t.source !== undefined) void this.register(t, false);
        for (const t of this.tenants.values()) if (t.proc === p.index) this.pushViews(t.config.id);
        p.restarting = undefined;
        back();
      });
      // A process that stays up a minute resets the restart backoff.
      this.clock.setTimeout(() => {
        if (p.child) p.restarts = 0;
      }, 60_000);
    }, delay);
    void now;
  }

  private penalise(tenant: string, why: string): void {
    const t = this.tenants.get(tenant);
    if (!t) return;
    const now = this.clock.now();
    const v = t.strikes.strike(now);
    t.totals.crashes++;
    if (v.quarantine) {
      if (!t.quarantined) t.totals.quarantines++;
      t.quarantined = true;
      this.log.error({ tenant, crashes: v.count, reason: why }, 'tenant quarantined');
      return;
    }
    t.penaltyUntil = now + v.delayMs;
    this.log.warn({ tenant, reason: why, until_ms: t.penaltyUntil - now }, 'tenant penalised');
  }

  /** Send one call to the tenant's sandbox process; always settles. */
  private call(tenant: string, kind: 'bind' | 'pdu' | 'session' | 'timer', payload: unknown): Promise<SandboxOutcome> {
    return new Promise((resolve) => this.dispatchTo(tenant, kind, payload, resolve));
  }

  /**
   * The same, answered through `done` exactly once: the hot path, no promise
   * per PDU. `frame` and `sessionId`: a PDU given as its frame, which a
   * forward of it is matched to.
   */
  private dispatchTo(tenant: string, kind: 'bind' | 'pdu' | 'session' | 'timer', payload: unknown, done: (o: SandboxOutcome) => void, frame?: Uint8Array, sessionId?: string): void {
    const t = this.tenants.get(tenant);
    if (!t || t.source === undefined) return done({ kind: 'error', reason: 'unavailable', message: 'tenant has no policy' });
    if (t.quarantined) return done({ kind: 'error', reason: 'unavailable', message: 'tenant is quarantined' });
    if (this.clock.now() < t.penaltyUntil) return done({ kind: 'error', reason: 'unavailable', message: 'tenant is penalised after a sandbox crash' });
    const p = this.procs[t.proc]!;
    if (p.restarting) {
      void p.restarting.then(() => (this.stopped ? done({ kind: 'error', reason: 'unavailable', message: 'sandbox stopping' }) : this.dispatchTo(tenant, kind, payload, done, frame, sessionId)));
      return;
    }
    const id = ++this.nextId;
    const tracked = frame !== undefined && frame.byteLength >= 16;
    const f: InFlight = { id, tenant, startedAt: this.clock.now(), resolve: done, frame: tracked ? frame : undefined, seq: tracked ? frameSeq(frame) : 0, sessionId, sameSeq: undefined, forwarded: undefined };
    p.inFlight.set(id, f);
    if (tracked) {
      f.sameSeq = p.bySeq.get(f.seq);
      p.bySeq.set(f.seq, f);
    }
    if (!this.send(p, { t: 'dispatch', id, tenant, kind, payload })) {
      this.take(p, id);
      done({ kind: 'error', reason: 'crash', message: 'sandbox process is not running' });
    }
  }

  /** A call that settles: out of `inFlight` and, for a PDU, out of its sequence number's chain. */
  private take(p: Proc, id: number): InFlight | undefined {
    const f = p.inFlight.get(id);
    if (!f) return undefined;
    p.inFlight.delete(id);
    if (f.frame === undefined) return f;
    const head = p.bySeq.get(f.seq);
    if (head === f) {
      if (f.sameSeq) p.bySeq.set(f.seq, f.sameSeq);
      else p.bySeq.delete(f.seq);
    } else {
      for (let x = head; x; x = x.sameSeq) {
        if (x.sameSeq === f) {
          x.sameSeq = f.sameSeq;
          break;
        }
      }
    }
    f.sameSeq = undefined;
    return f;
  }

  /**
   * A policy forwards a PDU: the dispatch of that PDU still in flight (same
   * tenant, session and frame, so the same sequence number) remembers what
   * the forward will answer it with, in case the policy cannot return it.
   * A PDU forwarded again remembers its last forward. PDUs the policy saw as
   * fields, not frames (the test harness), are not matched.
   */
  private noteForward(p: Proc, tenant: string, args: unknown, call: Promise<unknown>): void {
    const a = args as { frame?: unknown; session?: { sessionId?: unknown }; tail?: unknown } | null | undefined;
    const frame = a?.frame;
    if (!(frame instanceof Uint8Array) || frame.byteLength < 16) return;
    const sessionId = a!.session?.sessionId;
    let match: InFlight | undefined;
    for (let f = p.bySeq.get(frameSeq(frame)); f; f = f.sameSeq) {
      if (f.tenant !== tenant || f.sessionId !== sessionId || Buffer.compare(f.frame!, frame) !== 0) continue;
      // The same frame twice in flight on one session (a peer that reuses a sequence number): one forward each.
      if (!match || (match.forwarded && !f.forwarded)) match = f;
    }
    if (!match) return;
    const forwarded = call.then((r) => forwardAnswer(r as ForwardResult), () => undefined);
    match.forwarded = forwarded;
    // The handler returned this forward itself: its result is the PDU's answer, given now rather
    // than after one more trip to the sandbox and back; the sandbox's own answer, which follows,
    // finds the dispatch settled and is dropped (docs/design.md, "A handler that returns its forward").
    if (a!.tail === true) {
      const id = match.id;
      void forwarded.then((o) => {
        if (o === undefined) return;
        const f = this.take(p, id);
        f?.resolve(o);
      });
    }
  }

  /** A dispatch lost with its sandbox (or isolate) while a forward of its PDU was under way: answered with that forward's result once it has one, else as it failed. The core's handler deadline still bounds the wait. */
  private answerForwarded(f: InFlight, failure: SandboxOutcome): void {
    void f.forwarded!.then((o) => f.resolve(o ?? failure));
  }

  // ---- PolicyHost ------------------------------------------------------------------------

  async bind(tenant: string, req: BindRequest): Promise<BindDecision> {
    const o = await this.call(tenant, 'bind', { req });
    if (o.kind === 'bind') return o.accept ? { accept: true } : { accept: false, status: o.status, reason: o.reason };
    if (o.kind === 'error' && o.reason === 'unavailable' && this.tenants.get(tenant)?.source === undefined) {
      return { accept: false, status: ESME_RINVSYSID, reason: 'tenant has no policy' };
    }
    if (o.kind === 'error') throw new Error(`bind handler: ${o.message}`);
    return { accept: false, status: ESME_RSYSERR, reason: 'bind handler gave no decision' };
  }

  /**
   * A tenant over its CPU budget is refused in the core, before its PDU is
   * even turned into a policy view: a flood of its PDUs must cost its
   * neighbours as little as possible, here and in its sandbox.
   */
  refuse(tenant: string): number | undefined {
    const t = this.tenants.get(tenant);
    if (!t || this.clock.now() >= t.throttledUntil) return undefined;
    t.cpuThrottled++;
    return ESME_RTHROTTLED;
  }

  pdu(tenant: string, pdu: PolicyPdu, session: SessionInfo): Promise<PduOutcome> {
    return new Promise((resolve, reject) => this.pduCall(tenant, { pdu, session }, (err, o) => (err ? reject(err) : resolve(o!))));
  }

  pduFrame(tenant: string, frame: Uint8Array, session: SessionInfo, done: (err: Error | undefined, outcome?: PduOutcome) => void): void {
    this.pduCall(tenant, { frame, session }, done, frame, session.sessionId);
  }

  private pduCall(tenant: string, payload: unknown, done: (err: Error | undefined, outcome?: PduOutcome) => void, frame?: Uint8Array, sessionId?: string): void {
    this.dispatchTo(tenant, 'pdu', payload, (o) => {
      switch (o.kind) {
        case 'default':
        case 'reply':
          // The sandbox's answer is already plain data of this shape.
          return done(undefined, o);
        case 'throttled': {
          const t = this.tenants.get(tenant);
          if (t && o.retryInMs) {
            t.throttledAt = this.clock.now();
            t.throttledUntil = t.throttledAt + Math.min(o.retryInMs, 1000);
          }
          return done(undefined, { kind: 'reply', status: ESME_RTHROTTLED });
        }
        case 'error':
          return done(new Error(`${o.reason}: ${o.message}`));
        default:
          return done(new Error('handler gave no answer'));
      }
    }, frame, sessionId);
  }

  session(tenant: string, event: SessionEvent, session: SessionInfo): void {
    this.pushViews(tenant);
    void this.call(tenant, 'session', { event, session }).then((o) => {
      if (o.kind === 'error' && o.reason !== 'unavailable') this.log.warn({ tenant, event, reason: o.reason, err: o.message }, 'session handler failed');
    });
  }

  /** Push the tenant's current binds and sessions to its sandbox process for smpp.binds()/sessions() (on session events, after a restart or a config reload). */
  pushViews(tenant: string): void {
    const t = this.tenants.get(tenant);
    const g = this.gateway;
    if (!t || !g) return;
    const p = this.procs[t.proc]!;
    this.send(p, { t: 'view', tenant, name: 'binds', value: g.binds(tenant).map((b) => ({ name: b.name, state: b.state })) });
    this.send(p, { t: 'view', tenant, name: 'sessions', value: g.sessions(tenant) });
  }

  /** Per-tenant statistics from every sandbox process, plus their RSS. */
  async stats(): Promise<{ tenants: TenantStats[]; rss: number[] }> {
    const parts = await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<{ tenants: TenantStats[]; rss: number }>((resolve) => {
            const reqId = ++this.nextId;
            // A process that dies (or hangs) before it answers leaves its part empty, not the request open.
            const timer = this.clock.setTimeout(() => {
              this.statsWaiters.delete(reqId);
              resolve({ tenants: [], rss: 0 });
            }, STATS_TIMEOUT_MS);
            this.statsWaiters.set(reqId, (s) => {
              this.clock.clearTimeout(timer);
              resolve(s);
            });
            if (!this.send(p, { t: 'stats', reqId })) {
              this.clock.clearTimeout(timer);
              this.statsWaiters.delete(reqId);
              resolve({ tenants: [], rss: 0 });
            }
          }),
      ),
    );
    return { tenants: parts.flatMap((x) => x.tenants), rss: parts.map((x) => x.rss) };
  }

  /** The policy source now serving (or registered) for a tenant. */
  currentSource(tenant: string): string | undefined {
    return this.tenants.get(tenant)?.source;
  }

  /** The sandbox process hosting a tenant (tests kill it). */
  processOf(tenant: string): ChildProcess | undefined {
    const t = this.tenants.get(tenant);
    return t ? this.procs[t.proc]!.child : undefined;
  }

  tenantState(tenant: string): TenantPoolState | undefined {
    const t = this.tenants.get(tenant);
    if (!t) return undefined;
    const now = this.clock.now();
    const s: TenantPoolState = {
      quarantined: t.quarantined,
      penalised: now < t.penaltyUntil,
      crashes: t.strikes.count(now),
      cpuThrottled: t.cpuThrottled,
      throttledAgoMs: t.throttledAt === 0 ? null : now - t.throttledAt,
    };
    if (t.loadError) s.loadError = t.loadError;
    return s;
  }

  /** A tenant's running totals (crashes, quarantines, reloads), for the metrics. */
  totals(tenant: string): Readonly<TenantTotals> | undefined {
    return this.tenants.get(tenant)?.totals;
  }

  /** Restarts of each sandbox process since the pool started, by process index. */
  processRestarts(): number[] {
    return this.procs.map((p) => p.restartsTotal);
  }

  async close(): Promise<void> {
    this.stopped = true;
    for (const p of this.procs) p.restarting = undefined;
    for (const t of this.tenants.keys()) this.timers.clearTenant(t);
    for (const p of this.procs) {
      const c = p.child;
      p.child = undefined;
      if (c && c.exitCode === null) {
        c.kill('SIGKILL');
      }
      for (const f of p.inFlight.values()) f.resolve({ kind: 'error', reason: 'unavailable', message: 'sandbox stopping' });
      p.inFlight.clear();
      p.bySeq.clear();
    }
  }
}

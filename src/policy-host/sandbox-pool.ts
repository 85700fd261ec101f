// The pool and the PolicyHost seam. Supervision of one sandbox process is sandbox-child.ts, its calls in flight
// in-flight.ts, a tenant's standing pool-tenant.ts, loading policies policy-loader.ts, serving host calls
// host-call-server.ts (docs/design.md, "The process boundary").
import { isDeepStrictEqual } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { CacheStore } from '../cache';
import type { TenantConfig } from '../config/schema';
import type { BindDecision, BindRequest, PduOutcome, PolicyHost, SessionEvent, SessionInfo } from '../dispatch/policy-host';
import { SluiceError } from '../errors';
import type { Gateway } from '../gateway';
import type { PolicyPdu } from '../pdu/model';
import type { FromSandbox, LoadResult, SandboxOutcome, TenantStats } from '../sandbox-protocol/messages';
import { PolicyTimers } from '../tenants/policy-timers';
import { realClock, type Clock } from '../util/clock';
import { ESME_RINVSYSID, ESME_RSYSERR, ESME_RTHROTTLED } from '../wire/status';
import { HostCallServer } from './host-call-server';
import { PolicyLoader, type PolicyFailure } from './policy-loader';
import { placement, PoolTenant, type TenantPoolState, type TenantTotals } from './pool-tenant';
import { SandboxChild, type SandboxChildEvents } from './sandbox-child';

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

export class SandboxPool implements PolicyHost {
  private readonly procs: SandboxChild[] = [];
  private readonly tenants = new Map<string, PoolTenant>();
  private gateway: Gateway | undefined;
  private nextId = 0;
  private readonly statsWaiters = new Map<number, (s: { tenants: TenantStats[]; rss: number }) => void>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loader: PolicyLoader;
  private readonly hostCalls: HostCallServer;
  readonly timers: PolicyTimers;
  private stopped = false;

  constructor(private readonly opts: SandboxPoolOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ component: 'sandbox' });
    this.timers = new PolicyTimers(this.clock, (tenant, name, payload) => void this.call(tenant, 'timer', { name, payload }));
    this.loader = new PolicyLoader({ log: this.log, cwd: opts.cwd, nextId: () => ++this.nextId, childOf: (t) => this.procs[t.proc]! });
    this.hostCalls = new HostCallServer({ gateway: () => this.gateway, tenant: (id) => this.tenants.get(id), timers: this.timers });
    for (let i = 0; i < Math.max(1, opts.processes); i++) {
      this.procs.push(
        new SandboxChild({ index: i, idleEvictMs: opts.idleEvictMs ?? 600_000, inlineEntryMs: opts.inlineEntryMs ?? 0, clock: this.clock, log: this.log, events: this.childEvents(i) }),
      );
    }
    for (const t of opts.tenants) this.addTenant(t);
  }

  /** The gateway whose send paths policies use. */
  attach(gateway: Gateway): void {
    this.gateway = gateway;
  }

  private addTenant(config: TenantConfig): PoolTenant {
    const t = new PoolTenant(config, placement(config.id, this.procs.length), {
      cache: this.opts.cache,
      clock: this.clock,
      logger: this.opts.logger,
      log: this.log,
      quarantineAfter: this.opts.quarantineAfter,
      penaltyBaseMs: this.opts.penaltyBaseMs,
    });
    this.tenants.set(config.id, t);
    return t;
  }

  /** A tenant gone from the config: it leaves its sandbox process (its calls in flight are answered as unavailable; its cache data stays). */
  private removeTenant(id: string): void {
    const t = this.tenants.get(id)!;
    this.tenants.delete(id);
    this.timers.clearTenant(id);
    const p = this.procs[t.proc]!;
    p.send({ t: 'remove', tenant: id });
    p.calls.failTenant(id, { kind: 'error', reason: 'unavailable', message: 'tenant removed by a config reload' });
  }

  /** What each sandbox process reports to the pool. */
  private childEvents(index: number): SandboxChildEvents {
    return {
      loaded: (reqId, result) => this.loader.loaded(reqId, result),
      compileFailed: (tenant, errors) => {
        const t = this.tenants.get(tenant);
        if (t) this.loader.rejected(t, errors);
      },
      hostCall: (tenant, op, args) => this.hostCalls.serve(tenant, op, args),
      log: (tenant, level, msg, fields) => this.tenants.get(tenant)?.policyLog(level, msg, fields),
      stats: (reqId, tenants, rss) => {
        const w = this.statsWaiters.get(reqId);
        this.statsWaiters.delete(reqId);
        w?.({ tenants, rss });
      },
      died: ({ proc, code, signal, failed, forwarded, culprit }) => {
        this.loader.failAll();
        if (this.stopped) return;
        this.log.error({ proc, code, signal, in_flight: failed, answered_by_forward: forwarded, culprit }, 'sandbox process died; restarting');
        if (culprit) this.penalise(culprit, `sandbox process died (${signal ?? code}) while its policy ran`);
      },
      restarted: () => {
        for (const t of this.tenants.values()) if (t.proc === index && t.source !== undefined) void this.loader.register(t, false);
        for (const t of this.tenants.values()) if (t.proc === index) this.pushViews(t.config.id);
      },
    };
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
  async applyTenants(next: readonly TenantConfig[]): Promise<PolicyFailure[]> {
    const ids = new Set(next.map((t) => t.id));
    for (const id of [...this.tenants.keys()]) if (!ids.has(id)) this.removeTenant(id);
    const loads: Promise<PolicyFailure | undefined>[] = [];
    for (const cfg of next) {
      const t = this.tenants.get(cfg.id);
      const load = !t ? this.loader.added(this.addTenant(cfg)) : isDeepStrictEqual(t.config, cfg) ? undefined : this.loader.reconfigured(t, cfg);
      if (load) loads.push(load);
    }
    return (await Promise.all(loads)).filter((x): x is PolicyFailure => x !== undefined);
  }

  /** See PolicyLoader.pin: an uploaded version serves `tenant` instead of its file from its next registration. */
  pin(tenant: string, source: string): void {
    this.loader.pin(tenant, source);
  }

  /** The tenant's file serves again at its next registration. */
  unpin(tenant: string): void {
    this.loader.unpin(tenant);
  }

  /** Start the sandbox processes and register every tenant's policy (isolates start lazily). */
  async start(): Promise<void> {
    for (const p of this.procs) p.spawn();
    await Promise.all(this.procs.map((p) => p.ready));
    const loads: Promise<unknown>[] = [];
    for (const t of this.tenants.values()) if (this.loader.readSource(t)) loads.push(this.loader.register(t, false));
    await Promise.all(loads);
  }

  /** Every message the sandbox process hosting `tenant` sends from now on (tests watch what crosses). */
  watch(tenant: string, fn: (m: FromSandbox) => void): () => void {
    const t = this.tenants.get(tenant);
    if (!t) throw new SluiceError('UNKNOWN_TENANT');
    return this.procs[t.proc]!.tap(fn);
  }

  /**
   * Replace a tenant's policy (from `source`, else its file): started in a
   * fresh isolate and swapped in only if that succeeds (PolicyLoader.reload).
   */
  async reload(tenant: string, source?: string): Promise<LoadResult> {
    const t = this.tenants.get(tenant);
    if (!t) throw new SluiceError('UNKNOWN_TENANT');
    return this.loader.reload(t, source);
  }

  /** A sandbox process died under the tenant (tests call it directly). */
  private penalise(tenant: string, why: string): void {
    this.tenants.get(tenant)?.penalise(why);
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
    const refused = t ? t.unavailable() : 'tenant has no policy';
    if (refused !== undefined) return done({ kind: 'error', reason: 'unavailable', message: refused });
    const p = this.procs[t!.proc]!;
    if (p.restarting) {
      void p.restarting.then(() => (this.stopped ? done({ kind: 'error', reason: 'unavailable', message: 'sandbox stopping' }) : this.dispatchTo(tenant, kind, payload, done, frame, sessionId)));
      return;
    }
    p.dispatch(++this.nextId, tenant, kind, payload, done, frame, sessionId);
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
    return this.tenants.get(tenant)?.refuse() ? ESME_RTHROTTLED : undefined;
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
        case 'throttled':
          this.tenants.get(tenant)?.throttled(o.retryInMs);
          return done(undefined, { kind: 'reply', status: ESME_RTHROTTLED });
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
    p.send({ t: 'view', tenant, name: 'binds', value: g.binds(tenant).map((b) => ({ name: b.name, state: b.state })) });
    p.send({ t: 'view', tenant, name: 'sessions', value: g.sessions(tenant) });
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
            if (!p.send({ t: 'stats', reqId })) {
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
    return t ? this.procs[t.proc]!.process : undefined;
  }

  tenantState(tenant: string): TenantPoolState | undefined {
    return this.tenants.get(tenant)?.state();
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
    for (const p of this.procs) p.stop();
    for (const t of this.tenants.keys()) this.timers.clearTenant(t);
    for (const p of this.procs) p.kill({ kind: 'error', reason: 'unavailable', message: 'sandbox stopping' });
  }
}

// Over 400 lines on purpose: a tenant's version lifecycle (start, swap, retire, kill, evict) is one state machine
// over `live`, `starting` and `retired`; the rest of what it did is in the files listed below.
// One tenant's versions and isolates: which serves, starting, retiring, killed, evicted. Its dispatches and host calls
// are tenant-dispatch.ts (batched entries entry-batches.ts); its budgets cpu-budget.ts, policy-log-gate.ts and
// inline-standing.ts; a version's compile and answers compiled-version.ts; the isolate itself policy-isolate.ts;
// strikes util/strikes.ts.
import type { TenantLimits } from '../config/schema';
import { realClock, type Clock } from '../util/clock';
import { STRIKE_DEFAULTS, Strikes } from '../util/strikes';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import type { BootInfo, LoadResult, RuntimeState, SandboxOutcome, TenantStats } from '../sandbox-protocol/messages';
import { compileVersion, loadDiagnostic, outcomeOf, type Version } from './compiled-version';
import { CpuBudget } from './cpu-budget';
import { InlineStanding } from './inline-standing';
import { NotCompiled } from './isolate-failures';
import { PolicyIsolate, type IsolateLimits } from './policy-isolate';
import { PolicyLogGate } from './policy-log-gate';
import { TenantDispatch, type RuntimeCounts } from './tenant-dispatch';

/**
 * One tenant's policy inside a sandbox process: its current version, the
 * isolate running it (created on first use, evicted when idle), its limits
 * (per-call CPU timeout, CPU budget, memory, pending calls), and atomic
 * reload. Whatever the policy does, every dispatch settles with an outcome.
 */

/** The host side of a tenant's policy: the send helpers, cache, timers, logs and views. */
export interface RuntimeHost {
  /** Resolves with plain data or rejects with `{ code, message }` (our own codes and messages only). */
  call(tenant: string, op: string, args: unknown): Promise<unknown>;
  log(tenant: string, level: string, msg: string, fields?: unknown): void;
  view(tenant: string, name: string): unknown;
  /** This tenant's policy made an isolate unrecoverable (see IsolateHooks.fatal): the process should report it and go. */
  fatal?(tenant: string, message: string): void;
  /** A registered version did not compile (found ahead of use, or at first use): the core shows it as the tenant's load errors. */
  compileFailed?(tenant: string, errors: PolicyDiagnostic[]): void;
}

export interface RuntimeOptions {
  clock?: Clock;
  /** Dispose an isolate idle this long (its cache and sessions are untouched). */
  idleEvictMs?: number;
  /** First delay before a killed isolate is recreated; doubles per kill. */
  restartBaseMs?: number;
  /** Kills within `strikeWindowMs` that quarantine the tenant. */
  quarantineAfter?: number;
  strikeWindowMs?: number;
  /**
   * Longest an entry may run inline, on this process's own thread, ms
   * (`sandbox.inline_entry_ms`); 0 or absent: never. Inline entries need a
   * watch from another thread (`startSentry`): only sandbox processes run them.
   */
  inlineEntryMs?: number;
  /** First time a tenant's entries stay off this thread after an inline one ran long; doubles per offence, to an hour. */
  inlineBarBaseMs?: number;
}

export class TenantRuntime {
  private version: Version | undefined;
  private deferred: { source: string; filename: string } | undefined;
  private versionCounter = 0;
  private live: PolicyIsolate | undefined;
  private starting: Promise<PolicyIsolate | undefined> | undefined;
  private readonly retired = new Set<PolicyIsolate>();
  private state: RuntimeState = 'idle';
  private loadError: string | undefined;
  private readonly clock: Clock;
  /** Isolate kills: a restart delay each, quarantine after too many (util/strikes.ts). */
  private readonly strikes: Strikes;
  private retryAt = 0;
  private lastUsed: number;
  private readonly cpu: CpuBudget;
  private readonly logs: PolicyLogGate;
  private readonly inline: InlineStanding;
  private readonly dispatches: TenantDispatch;
  private readonly counts: RuntimeCounts = { calls: 0, errors: 0, timeouts: 0, memoryKills: 0, throttled: 0 };

  constructor(
    readonly tenant: string,
    private limits: TenantLimits,
    private boot: BootInfo,
    private readonly host: RuntimeHost,
    private readonly opts: RuntimeOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.strikes = new Strikes({
      ...STRIKE_DEFAULTS,
      baseMs: opts.restartBaseMs ?? STRIKE_DEFAULTS.baseMs,
      windowMs: opts.strikeWindowMs ?? STRIKE_DEFAULTS.windowMs,
      quarantineAfter: opts.quarantineAfter ?? STRIKE_DEFAULTS.quarantineAfter,
    });
    this.lastUsed = this.clock.now();
    const log = (level: string, msg: string, fields?: unknown): void => this.host.log(this.tenant, level, msg, fields);
    this.cpu = new CpuBudget(limits.cpu_ms_per_s, this.clock);
    this.logs = new PolicyLogGate(limits.max_log_per_s, this.clock, log);
    this.inline = new InlineStanding(this.clock, opts, log);
    this.dispatches = new TenantDispatch(
      {
        clock: this.clock,
        limits: () => this.limits,
        inlineEntryMs: opts.inlineEntryMs,
        live: () => this.live,
        cpu: this.cpu,
        counts: this.counts,
        hostCall: (op, args) => this.host.call(this.tenant, op, args),
        killed: (iso, why) => this.onKilled(iso, why),
        settled: () => {
          if (this.retired.size > 0) this.reap();
        },
      },
      limits.handler_deadline_ms,
    );
  }

  private isolateLimits(): IsolateLimits {
    const l = this.limits;
    return {
      memoryMb: l.memory_mb,
      timeoutMs: l.handler_timeout_ms,
      startupMs: Math.max(l.handler_timeout_ms * 10, 500),
      maxDataBytes: Math.max(l.max_value_kb * 1024 * 2, 64 * 1024),
      maxLogPerSec: l.max_log_per_s,
      maxLogBytes: 2048,
      maxPending: l.max_pending,
      inlineEntryMs: this.opts.inlineEntryMs ?? 0,
    };
  }

  /** Limits and config views change with a config reload; a running isolate keeps its memory limit until replaced. */
  reconfigure(limits: TenantLimits, boot: BootInfo): void {
    this.limits = limits;
    this.boot = boot;
    this.cpu.setRate(limits.cpu_ms_per_s);
    this.logs.setRate(limits.max_log_per_s);
  }

  /**
   * Compile a new version. With `activate`, also start it in a fresh isolate
   * under the limits and swap it in atomically; in-flight calls finish on the
   * old isolate. On any failure the old version keeps serving.
   */
  async load(source: string, filename: string, activate: boolean): Promise<LoadResult> {
    if (!activate) {
      // Registration at start: compile on first use, so 10,000 tenants cost nothing until they get traffic.
      this.deferred = { source, filename };
      this.version = undefined;
      if (this.state === 'failed' || this.state === 'quarantined') this.state = 'idle';
      this.loadError = undefined;
      return { ok: true, version: 0, hash: '' };
    }
    const compiled = this.compile(source, filename);
    if (!compiled.ok) return compiled;
    const version = compiled.version;
    let iso: PolicyIsolate;
    try {
      iso = await this.createIsolate(version);
    } catch (err) {
      return { ok: false, errors: [loadDiagnostic(err, version)] };
    }
    const old = this.live;
    this.versionCounter = version.number;
    this.version = version;
    this.deferred = undefined;
    this.live = iso;
    this.state = 'ready';
    this.loadError = undefined;
    this.strikes.reset();
    if (old) this.retire(old);
    return { ok: true, version: version.number, hash: version.hash };
  }

  /**
   * Compile a registered version ahead of its first use, so a version that
   * does not compile is known (and shown) at start, not when its first ESME
   * binds. The isolate still starts on first use. True when it compiled, or
   * there was nothing to compile.
   */
  precompile(): boolean {
    return this.deferred ? this.compileDeferred() : true;
  }

  /** Compile a deferred registration; false (with loadError set) when it does not compile. */
  private compileDeferred(): boolean {
    const d = this.deferred;
    if (!d) return !!this.version;
    this.deferred = undefined;
    const compiled = this.compile(d.source, d.filename);
    if (!compiled.ok) {
      const e = compiled.errors[0]!;
      this.state = 'failed';
      this.loadError = `${e.file}:${e.line}:${e.column}: ${e.message}`;
      this.host.log(this.tenant, 'error', 'policy does not compile', { errors: compiled.errors });
      this.host.compileFailed?.(this.tenant, compiled.errors);
      return false;
    }
    this.version = compiled.version;
    this.versionCounter = compiled.version.number;
    return true;
  }

  /** Compile under max_script_kb into the next version (numbered, not yet counted). */
  private compile(source: string, filename: string): { ok: true; version: Version } | { ok: false; errors: PolicyDiagnostic[] } {
    return compileVersion(source, filename, this.versionCounter + 1, this.limits.max_script_kb * 1024);
  }

  /** Start an isolate for a version, or for one a thunk compiles while the isolate's context and prelude start. */
  private createIsolate(source: Version | (() => Version)): Promise<PolicyIsolate> {
    let iso: PolicyIsolate | undefined;
    let v = typeof source === 'function' ? undefined : source;
    const hooks = {
      // Results come only from entries, after the policy's top level ran: `v` is known by then.
      result: (id: number, outcome: unknown) => this.dispatches.settle(id, outcomeOf(outcome as SandboxOutcome, v!)),
      call: (id: number, call: { op: string; origin: number; args: unknown }) => this.dispatches.call(iso!, id, call),
      log: (e: { level: string; msg: string; fields?: unknown; dropped?: number }) => this.logs.line(e),
      view: (name: string) => JSON.stringify(this.host.view(this.tenant, name) ?? []),
      fatal: (message: string) => this.onFatal(iso, message),
      mayInline: () => iso === this.live && this.inline.allows(this.limits.handler_timeout_ms),
      demoted: (ms: number, why: string) => this.inline.demoted(ms, why),
      tolerate: (ms: number) => this.inline.tolerate(ms),
    };
    const js = v ? v.js : (): string => (v = (source as () => Version)()).js;
    const filename = v ? v.filename : this.deferred!.filename;
    return PolicyIsolate.create(js, filename, this.isolateLimits(), this.boot, hooks).then((i) => {
      iso = i;
      this.dispatches.opened(i);
      return i;
    });
  }

  private retire(iso: PolicyIsolate): void {
    this.retired.add(iso);
    this.reap();
  }

  /** Dispose retired isolates once nothing is in flight on them. */
  private reap(): void {
    for (const iso of this.retired) {
      if (iso.inFlight === 0 && !this.dispatches.busy(iso)) {
        this.retired.delete(iso);
        this.dispatches.closed(iso);
        iso.dispose();
      }
    }
  }

  /** The isolate to use now, creating it if needed; undefined while unavailable. */
  private async current(): Promise<PolicyIsolate | undefined> {
    if (this.live && !this.live.isDisposed) return this.live;
    if (this.state === 'quarantined' || this.state === 'failed') return undefined;
    if (!this.version && !this.deferred) return undefined;
    if (this.state === 'backoff' && this.clock.now() < this.retryAt) return undefined;
    if (!this.starting) {
      let v = this.version;
      this.state = 'starting';
      // A registration not compiled yet (a cold start) compiles while the isolate starts.
      const source =
        v ??
        ((): Version => {
          if (!this.compileDeferred() || !this.version) throw new NotCompiled();
          return (v = this.version);
        });
      this.starting = this.createIsolate(source).then(
        (iso) => {
          this.starting = undefined;
          if (this.version !== v) {
            iso.dispose();
            return this.current();
          }
          this.live = iso;
          this.state = 'ready';
          return iso;
        },
        (err: unknown) => {
          this.starting = undefined;
          // compileDeferred has set the state, the error and the log line.
          if (err instanceof NotCompiled) return undefined;
          this.state = 'failed';
          this.loadError = v ? loadDiagnostic(err, v).message : (err as Error).message;
          this.host.log(this.tenant, 'error', 'policy failed to start', { error: this.loadError });
          return undefined;
        },
      );
    }
    return this.starting;
  }

  /** Run one handler. Always settles; never throws. */
  dispatch(kind: 'bind' | 'pdu' | 'session' | 'timer', payload: unknown): Promise<SandboxOutcome> {
    return new Promise((resolve) => this.submit(kind, payload, resolve));
  }

  /**
   * Run one handler; `done` gets its outcome, exactly once. The sandbox's
   * hot path: no promise per PDU while the isolate is up.
   */
  submit(kind: 'bind' | 'pdu' | 'session' | 'timer', payload: unknown, done: (o: SandboxOutcome) => void): void {
    this.lastUsed = this.clock.now();
    this.counts.calls++;
    const live = this.live;
    if (live && !live.isDisposed) {
      this.dispatches.start(live, kind, payload, done);
      return;
    }
    void this.current().then((iso) => {
      if (iso) {
        this.dispatches.start(iso, kind, payload, done);
        return;
      }
      this.counts.errors++;
      done({ kind: 'error', reason: 'unavailable', message: `policy is ${this.state}${this.loadError ? `: ${this.loadError}` : ''}` });
    });
  }

  /** An isolate died (memory limit or watchdog): fail its calls, recreate after a backoff, quarantine if it keeps happening. */
  private onKilled(iso: PolicyIsolate, why: string): void {
    this.dispatches.failOn(iso, { kind: 'error', reason: 'memory', message: why });
    iso.dispose();
    this.retired.delete(iso);
    this.dispatches.closed(iso);
    if (this.live !== iso) return;
    this.live = undefined;
    this.counts.memoryKills++;
    this.strike(why);
  }

  /**
   * isolated-vm lost one of this tenant's isolates for good. It is left alone
   * (never disposed: its thread holds it), its calls fail, the tenant is
   * quarantined here, and the host is told so the process can report whose
   * it was and exit.
   */
  private onFatal(iso: PolicyIsolate | undefined, message: string): void {
    this.dispatches.failOn(iso, { kind: 'error', reason: 'crash', message: 'policy isolate lost (catastrophic out-of-memory)' });
    if (!iso || this.live === iso) this.live = undefined;
    if (iso) {
      this.retired.delete(iso);
      this.dispatches.closed(iso);
    }
    this.counts.memoryKills++;
    this.state = 'quarantined';
    this.loadError = 'quarantined: its policy caused a catastrophic out-of-memory error';
    this.host.fatal?.(this.tenant, message);
  }

  /** Count a kill against the tenant (also called when its sandbox process died under it). */
  strike(why: string): void {
    const now = this.clock.now();
    const v = this.strikes.strike(now);
    if (v.quarantine) {
      this.state = 'quarantined';
      this.loadError = `quarantined after ${v.count} kills (last: ${why})`;
      this.host.log(this.tenant, 'error', 'policy quarantined', { reason: why, kills: v.count });
      return;
    }
    this.state = 'backoff';
    this.retryAt = now + v.delayMs;
    this.host.log(this.tenant, 'warn', 'policy isolate killed; restarting after backoff', { reason: why, retry_in_ms: Math.round(this.retryAt - now) });
  }

  /** Dispose the isolate if it has been idle `idleEvictMs`. Returns true when it did. */
  evictIfIdle(): boolean {
    const idle = this.opts.idleEvictMs ?? 600_000;
    if (!this.live || this.dispatches.size > 0 || this.live.inFlight > 0) return false;
    if (this.clock.now() - this.lastUsed < idle) return false;
    this.cpu.charge(this.live);
    this.live.dispose();
    this.dispatches.closed(this.live);
    this.live = undefined;
    this.cpu.restart();
    this.state = 'idle';
    return true;
  }

  get hasIsolate(): boolean {
    return !!this.live && !this.live.isDisposed;
  }

  /** Stats with the heap read synchronously (in-process use: the harness, tests). */
  stats(): TenantStats {
    return this.statsWith(this.live && !this.live.isDisposed ? this.live.heap() : undefined);
  }

  /** Stats without holding this thread while the isolate is busy (sandbox processes). */
  async statsAsync(): Promise<TenantStats> {
    return this.statsWith(this.live && !this.live.isDisposed ? await this.live.heapAsync() : undefined);
  }

  private statsWith(h: { used: number; limit: number } | undefined): TenantStats {
    if (this.live && !this.live.isDisposed) this.cpu.charge(this.live);
    const heap = h ?? { used: 0, limit: this.limits.memory_mb * 1048576 };
    const s: TenantStats = {
      tenant: this.tenant,
      state: this.state,
      version: this.version?.number ?? 0,
      cpuMs: Math.round(this.cpu.totalMs * 1000) / 1000,
      heapUsed: heap.used,
      heapLimit: heap.limit,
      ...this.counts,
      inline: !!this.live && !this.live.isDisposed && this.live.isInline,
      inlineOffences: this.inline.inlineOffences,
    };
    if (this.version) s.hash = this.version.hash;
    if (this.loadError) s.loadError = this.loadError;
    return s;
  }

  dispose(): void {
    this.logs.dispose();
    this.dispatches.dispose();
    this.live?.dispose();
    for (const iso of this.retired) iso.dispose();
    this.retired.clear();
    this.live = undefined;
  }
}

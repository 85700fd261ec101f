// One file on purpose: one tenant's versions, isolate lifecycle, limits and batched entries share the table of pending
// calls that every kill, reload and timeout settles. The isolate itself is policy-isolate.ts,
// strikes util/strikes.ts, buckets throttle/token-bucket.ts.
import type { TenantLimits } from '../config/schema';
import { TokenBucket } from '../throttle/token-bucket';
import { doubling } from '../util/backoff';
import { realClock, type Clock, type TimerHandle } from '../util/clock';
import { KeyedDeadlines } from '../util/deadline';
import { STRIKE_DEFAULTS, Strikes } from '../util/strikes';
import { compilePolicy, mapStack, type LineMapper, type PolicyDiagnostic } from '../policy-compiler/compile';
import { policyError } from '../sandbox-protocol/host-calls';
import type { BootInfo, LoadResult, RuntimeState, SandboxOutcome, TenantStats } from '../sandbox-protocol/messages';
import { EntryError, NotCompiled, PolicyLoadError } from './isolate-failures';
import { PolicyIsolate, type IsolateLimits } from './policy-isolate';

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



interface Version {
  number: number;
  hash: string;
  js: string;
  filename: string;
  mapper: LineMapper;
}

interface Pending {
  done: (o: SandboxOutcome) => void;
  isolate: PolicyIsolate;
}

const MESSAGE_KINDS = new Set(['pdu']);

/** A PDU that came on one of the tenant's outbound binds (from its upstream SMSC). */
function fromUpstream(payload: unknown): boolean {
  const session = (payload as { session?: { kind?: unknown } } | undefined)?.session;
  return session?.kind === 'bind';
}
/**
 * Tenants allowed a longer handler_timeout_ms never run inline: one inline
 * entry that spins holds every other tenant of the process for that long,
 * once, before the tenant is barred.
 */
export const INLINE_MAX_TIMEOUT_MS = 100;
/** One slow (not failed) inline entry per this long passes without a demotion; see `tolerateSlow`. */
export const SLOW_GRACE_MS = 3_600_000;
/**
 * PDUs per isolate entry at most. On the isolate's thread smaller entries let
 * results leave while the isolate works on the next (measured: 16 beat 64 at
 * window 64, one ESME); an inline entry has no such overlap, so fewer and
 * larger ones cost less (measured: 64 beat 16 by 2-5% at window 64).
 */
const MAX_BATCH = 16;
const MAX_INLINE_BATCH = 64;

export class TenantRuntime {
  private version: Version | undefined;
  private deferred: { source: string; filename: string } | undefined;
  private versionCounter = 0;
  private live: PolicyIsolate | undefined;
  private starting: Promise<PolicyIsolate | undefined> | undefined;
  private readonly retired = new Set<PolicyIsolate>();
  private state: RuntimeState = 'idle';
  private loadError: string | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly callOrigin = new Map<PolicyIsolate, Map<number, number>>();
  /** handler_deadline_ms per dispatch, by id; a settled id is simply no longer pending. */
  private readonly deadlines: KeyedDeadlines;
  private readonly clock: Clock;
  /** Isolate kills: a restart delay each, quarantine after too many (util/strikes.ts). */
  private readonly strikes: Strikes;
  private retryAt = 0;
  private lastUsed: number;
  /** The CPU budget: ms of CPU, earned at cpu_ms_per_s up to one second's worth, spent as the policy runs. */
  private readonly cpuBudget: TokenBucket;
  private cpuSeen = 0;
  private cpuTotal = 0;
  /** Log lines: a backstop behind the prelude's own limit, so it allows twice the burst (lines the prelude passed fairly are not dropped a second time). */
  private readonly logBucket: TokenBucket;
  private logsDropped = 0;
  private dropReport: TimerHandle | undefined;
  private batch: { iso: PolicyIsolate; items: [number, string, unknown][] } | undefined;
  /** Host call results waiting to enter together, with the dispatch each call came from. */
  private resolves: { iso: PolicyIsolate; items: [number, boolean, unknown][]; origins: (number | undefined)[] } | undefined;
  /** Until then, one PDU per entry (a batch timed out). */
  private singleUntil = 0;
  /** Isolate CPU per call, ms (moving average). */
  private cpuPerCall = 0;
  private callsSinceSample = 0;
  private readonly counts = { calls: 0, errors: 0, timeouts: 0, memoryKills: 0, throttled: 0 };
  /** Inline entries that ran long or failed, and until when (clock ms) this tenant's entries stay off the process's thread. */
  private inlineOffences = 0;
  private inlineBarredUntil = 0;
  /** When (clock ms) a slow inline entry last passed as a one-off. */
  private slowToleratedAt = -Infinity;

  constructor(
    readonly tenant: string,
    private limits: TenantLimits,
    private boot: BootInfo,
    private readonly host: RuntimeHost,
    private readonly opts: RuntimeOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.deadlines = new KeyedDeadlines(
      limits.handler_deadline_ms + 100,
      this.clock,
      (id) => this.pending.has(id),
      (id) => this.settle(id, { kind: 'error', reason: 'deadline', message: 'handler missed handler_deadline_ms' }),
    );
    this.strikes = new Strikes({
      ...STRIKE_DEFAULTS,
      baseMs: opts.restartBaseMs ?? STRIKE_DEFAULTS.baseMs,
      windowMs: opts.strikeWindowMs ?? STRIKE_DEFAULTS.windowMs,
      quarantineAfter: opts.quarantineAfter ?? STRIKE_DEFAULTS.quarantineAfter,
    });
    this.lastUsed = this.clock.now();
    this.cpuBudget = new TokenBucket(limits.cpu_ms_per_s, this.clock);
    this.logBucket = new TokenBucket(limits.max_log_per_s, this.clock, 2 * limits.max_log_per_s);
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
    this.cpuBudget.setRate(limits.cpu_ms_per_s);
    this.logBucket.setRate(limits.max_log_per_s, 2 * limits.max_log_per_s);
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
      return { ok: false, errors: [this.diagnostic(err, version)] };
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
    const c = compilePolicy(source, filename, { maxBytes: this.limits.max_script_kb * 1024 });
    if (!c.ok) return { ok: false, errors: c.errors };
    return { ok: true, version: { number: this.versionCounter + 1, hash: c.hash, js: c.js, filename, mapper: c.sourceMap } };
  }

  private diagnostic(err: unknown, v: Version): PolicyDiagnostic {
    if (err instanceof PolicyLoadError && err.line !== undefined) {
      const pos = v.mapper.toSource(err.line, err.column ?? 1);
      return { file: v.filename, line: pos.line, column: pos.column, message: err.message };
    }
    return { file: v.filename, line: 0, column: 0, message: (err as Error).message };
  }

  /** Start an isolate for a version, or for one a thunk compiles while the isolate's context and prelude start. */
  private createIsolate(source: Version | (() => Version)): Promise<PolicyIsolate> {
    let iso: PolicyIsolate | undefined;
    let v = typeof source === 'function' ? undefined : source;
    const hooks = {
      // Results come only from entries, after the policy's top level ran: `v` is known by then.
      result: (id: number, outcome: unknown) => this.onResult(id, outcome as SandboxOutcome, v!),
      call: (id: number, call: { op: string; origin: number; args: unknown }) => this.onCall(iso!, id, call),
      log: (e: { level: string; msg: string; fields?: unknown; dropped?: number }) => this.onLog(e),
      view: (name: string) => JSON.stringify(this.host.view(this.tenant, name) ?? []),
      fatal: (message: string) => this.onFatal(iso, message),
      mayInline: () => iso === this.live && this.limits.handler_timeout_ms <= INLINE_MAX_TIMEOUT_MS && this.clock.now() >= this.inlineBarredUntil,
      demoted: (ms: number, why: string) => this.onDemoted(ms, why),
      tolerate: (ms: number) => this.tolerateSlow(ms),
    };
    const js = v ? v.js : (): string => (v = (source as () => Version)()).js;
    const filename = v ? v.filename : this.deferred!.filename;
    return PolicyIsolate.create(js, filename, this.isolateLimits(), this.boot, hooks).then((i) => {
      iso = i;
      this.callOrigin.set(i, new Map());
      return i;
    });
  }

  /**
   * A policy's log line, rate-limited again here: the prelude's own limit runs
   * inside the isolate on intrinsics the policy can tamper with, and every line
   * that gets past this point costs the core an IPC message.
   */
  private onLog(e: { level: string; msg: string; fields?: unknown; dropped?: number }): void {
    const carried = typeof e.dropped === 'number' ? e.dropped : 0;
    if (!this.logBucket.tryTake()) {
      // This line, and the drops the prelude was carrying on it, are reported later.
      this.logsDropped += 1 + carried;
      this.reportDropsLater();
      return;
    }
    const dropped = carried + this.logsDropped;
    this.logsDropped = 0;
    const fields = dropped ? { ...(e.fields as object), logs_dropped: dropped } : e.fields;
    this.host.log(this.tenant, String(e.level), String(e.msg).slice(0, 2049), fields);
  }

  /** Drops are reported within a second even if the policy logs nothing more. */
  private reportDropsLater(): void {
    if (this.dropReport) return;
    this.dropReport = this.clock.setTimeout(() => {
      this.dropReport = undefined;
      if (this.logsDropped === 0) return;
      const n = this.logsDropped;
      this.logsDropped = 0;
      this.host.log(this.tenant, 'warn', 'policy log lines dropped over max_log_per_s', { logs_dropped: n });
    }, 1000);
  }

  private retire(iso: PolicyIsolate): void {
    this.retired.add(iso);
    this.reap();
  }

  /** Dispose retired isolates once nothing is in flight on them. */
  private reap(): void {
    for (const iso of this.retired) {
      let busy = iso.inFlight > 0;
      for (const p of this.pending.values()) if (p.isolate === iso) busy = true;
      if (!busy) {
        this.retired.delete(iso);
        this.callOrigin.delete(iso);
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
          this.loadError = v ? this.diagnostic(err, v).message : (err as Error).message;
          this.host.log(this.tenant, 'error', 'policy failed to start', { error: this.loadError });
          return undefined;
        },
      );
    }
    return this.starting;
  }

  private refillCpu(): void {
    const used = this.live && !this.live.isDisposed ? this.live.cpuMs : this.cpuSeen;
    const delta = Math.max(0, used - this.cpuSeen);
    this.cpuSeen = used;
    this.cpuTotal += delta;
    if (this.callsSinceSample >= 8) {
      this.cpuPerCall = this.cpuPerCall === 0 ? delta / this.callsSinceSample : 0.8 * this.cpuPerCall + (0.2 * delta) / this.callsSinceSample;
      this.callsSinceSample = 0;
    }
    this.cpuBudget.spend(delta);
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
      this.start(live, kind, payload, done);
      return;
    }
    void this.current().then((iso) => {
      if (iso) {
        this.start(iso, kind, payload, done);
        return;
      }
      this.counts.errors++;
      done({ kind: 'error', reason: 'unavailable', message: `policy is ${this.state}${this.loadError ? `: ${this.loadError}` : ''}` });
    });
  }

  private start(iso: PolicyIsolate, kind: string, payload: unknown, done: (o: SandboxOutcome) => void): void {
    if (iso !== this.live) this.cpuSeen = 0;
    this.refillCpu();
    // The budget throttles new work, not obligations: what an upstream sends on our binds (receipts,
    // MO) was accepted by the SMSC already, and one refused may never be sent again.
    if (MESSAGE_KINDS.has(kind) && this.cpuBudget.balance() < 0 && !fromUpstream(payload)) {
      this.counts.throttled++;
      // When the budget is back above zero at this tenant's rate.
      done({ kind: 'throttled', retryInMs: this.cpuBudget.msUntil(0) });
      return;
    }
    const id = ++this.nextId;
    this.deadlines.add(id);
    this.pending.set(id, { done, isolate: iso });
    this.enqueue(iso, id, kind, payload);
  }

  /**
   * Dispatches that arrive together enter the isolate together: one entry
   * (one thread hop, one copy) for up to `batchLimit` PDUs. The limit keeps a
   * batch's expected CPU at a quarter of handler_timeout_ms, from the
   * tenant's measured CPU per call; after a batch times out the tenant goes
   * one PDU per entry for a while, so the timeout lands on the PDU that spun.
   */
  private enqueue(iso: PolicyIsolate, id: number, kind: string, payload: unknown): void {
    if (this.batch && this.batch.iso !== iso) this.flushBatch();
    if (!this.batch) {
      this.batch = { iso, items: [] };
      queueMicrotask(() => this.flushBatch());
    }
    this.batch.items.push([id, kind, payload]);
  }

  /** Handlers per entry: a batch's expected CPU stays at a quarter of handler_timeout_ms (of inline_entry_ms when inline); one after a batch timed out. */
  private batchLimit(): number {
    if (this.clock.now() < this.singleUntil) return 1;
    const perCall = Math.max(this.cpuPerCall, 0.005);
    const inline = this.live?.isInline === true;
    const budget = inline ? Math.min(this.limits.handler_timeout_ms, this.opts.inlineEntryMs!) : this.limits.handler_timeout_ms;
    return Math.max(1, Math.min(inline ? MAX_INLINE_BATCH : MAX_BATCH, Math.floor(budget / 4 / perCall)));
  }

  private flushBatch(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    const limit = this.batchLimit();
    const items = b.items;
    for (let i = 0; i < items.length; ) {
      // A run of PDUs given as raw frames, or of other dispatches, in arrival order.
      const frames = isFrame(items[i]![2]);
      let j = i + 1;
      while (j < items.length && j - i < limit && isFrame(items[j]![2]) === frames) j++;
      const chunk = items.slice(i, j);
      i = j;
      this.callsSinceSample += chunk.length;
      const done = frames ? this.enterFrames(b.iso, chunk) : chunk.length === 1 ? b.iso.dispatch(chunk[0]![0], chunk[0]![1], chunk[0]![2]) : b.iso.dispatchMany(chunk);
      done.catch((err: EntryError) => this.onChunkFailure(b.iso, chunk.map(([id]) => id), err));
    }
  }

  /** PDUs as raw frames: one fresh buffer with all of them goes in, and the isolate builds the views. */
  private enterFrames(iso: PolicyIsolate, chunk: [number, string, unknown][]): Promise<void> {
    let total = 0;
    for (const [, , p] of chunk) total += (p as FramePayload).frame.length;
    const bytes = new Uint8Array(total);
    const meta: number[] = [];
    const sessions: unknown[] = [];
    let off = 0;
    for (const [id, , p] of chunk) {
      const { frame, session } = p as FramePayload;
      bytes.set(frame, off);
      let s = sessions.indexOf(session);
      if (s === -1) s = sessions.push(session) - 1;
      meta.push(id, off, off + frame.length, s);
      off += frame.length;
    }
    return iso.dispatchFrames(bytes, meta, sessions);
  }

  private settle(id: number, outcome: SandboxOutcome): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (outcome.kind === 'error') {
      this.counts.errors++;
      if (outcome.reason === 'timeout') this.counts.timeouts++;
    }
    p.done(outcome);
    if (this.retired.size > 0) this.reap();
  }

  private onResult(id: number, outcome: SandboxOutcome, v: Version): void {
    const raw = outcome as unknown as { kind?: string; stack?: unknown };
    // Bounded here too: the prelude cuts these, but with intrinsics the policy can reach.
    if (raw && raw.kind === 'error' && typeof raw.stack === 'string') {
      const stack = mapStack(raw.stack.slice(0, 4000), v.filename, v.mapper);
      const first = /:(\d+):(\d+)/.exec(stack);
      const where = first ? ` (${v.filename}:${first[1]}:${first[2]})` : '';
      outcome = { kind: 'error', reason: 'throw', message: `${String((raw as { message?: unknown }).message).slice(0, 500)}${where}` };
    } else if (raw && raw.kind === 'error') {
      outcome = { kind: 'error', reason: 'throw', message: String((raw as { message?: unknown }).message).slice(0, 500) };
    } else if (raw && raw.kind === 'bind' && (raw as { reason?: unknown }).reason !== undefined) {
      outcome = { ...(outcome as { kind: 'bind'; accept: boolean; status: number }), reason: String((raw as { reason?: unknown }).reason).slice(0, 200) };
    }
    this.settle(id, isOutcome(outcome) ? outcome : { kind: 'error', reason: 'throw', message: 'handler returned something that is not an answer' });
  }

  private onCall(iso: PolicyIsolate, callId: number, call: { op: string; origin: number; args: unknown }): void {
    const outstanding = this.callOrigin.get(iso);
    // max_pending is enforced here as well: the prelude counts with a Map the
    // policy shares prototypes with, and each call that passes costs the core work.
    if (outstanding && outstanding.size >= this.limits.max_pending) {
      outstanding.set(callId, call.origin);
      this.deliver(iso, callId, false, { code: 'THROTTLED', message: `more than ${this.limits.max_pending} host calls in flight` });
      return;
    }
    outstanding?.set(callId, call.origin);
    this.host.call(this.tenant, call.op, call.args).then(
      (value) => this.deliver(iso, callId, true, value ?? null),
      // Only a code a policy may see, with our own message: never a host error's text (paths, secrets).
      (err: unknown) => this.deliver(iso, callId, false, policyError(err)),
    );
  }

  /**
   * Hand a host call's result to the policy awaiting it. Results that arrive
   * together enter together, like dispatches: with a handler awaiting a cache
   * read per message, one entry per result made the thread hop, not the
   * policy, the cost of every message.
   */
  private deliver(iso: PolicyIsolate, callId: number, ok: boolean, value: unknown): void {
    const origin = this.callOrigin.get(iso)?.get(callId);
    this.callOrigin.get(iso)?.delete(callId);
    if (iso.isDisposed) return;
    if (this.resolves && this.resolves.iso !== iso) this.flushResolves();
    if (!this.resolves) {
      this.resolves = { iso, items: [], origins: [] };
      queueMicrotask(() => this.flushResolves());
    }
    this.resolves.items.push([callId, ok, value]);
    this.resolves.origins.push(origin);
  }

  private flushResolves(): void {
    const r = this.resolves;
    if (!r) return;
    this.resolves = undefined;
    if (r.iso.isDisposed) return;
    const limit = this.batchLimit();
    for (let i = 0; i < r.items.length; i += limit) {
      const chunk = r.items.slice(i, i + limit);
      const origins = r.origins.slice(i, i + limit);
      const entered = chunk.length === 1 ? r.iso.resolve(...chunk[0]!) : r.iso.resolveMany(chunk);
      entered.catch((err: EntryError) => this.onChunkFailure(r.iso, origins, err));
    }
  }

  /**
   * An entry for several handlers (dispatches, or results they awaited)
   * failed: every one of them fails with it, and after a timeout the tenant
   * goes one per entry for a while, so the next timeout lands on the one that spun.
   */
  private onChunkFailure(iso: PolicyIsolate, origins: (number | undefined)[], err: EntryError): void {
    if (err.failure === 'timeout' && origins.length > 1) this.singleUntil = this.clock.now() + 10_000;
    for (const origin of origins) this.onEntryFailure(iso, origin, err);
  }

  private onEntryFailure(iso: PolicyIsolate, origin: number | undefined, err: EntryError): void {
    if (err.failure === 'timeout') {
      if (origin !== undefined) this.settle(origin, { kind: 'error', reason: 'timeout', message: `handler exceeded handler_timeout_ms ${this.limits.handler_timeout_ms}` });
      return;
    }
    if (err.failure === 'memory' || err.failure === 'disposed') {
      this.onKilled(iso, err.failure === 'memory' ? `exceeded memory_mb ${this.limits.memory_mb}` : 'isolate was stopped');
      return;
    }
    if (origin !== undefined) this.settle(origin, { kind: 'error', reason: 'throw', message: err.message });
  }

  /** An isolate died (memory limit or watchdog): fail its calls, recreate after a backoff, quarantine if it keeps happening. */
  private onKilled(iso: PolicyIsolate, why: string): void {
    for (const [id, p] of this.pending) if (p.isolate === iso) this.settle(id, { kind: 'error', reason: 'memory', message: why });
    iso.dispose();
    this.retired.delete(iso);
    this.callOrigin.delete(iso);
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
    for (const [id, p] of this.pending) if (!iso || p.isolate === iso) this.settle(id, { kind: 'error', reason: 'crash', message: 'policy isolate lost (catastrophic out-of-memory)' });
    if (!iso || this.live === iso) this.live = undefined;
    if (iso) {
      this.retired.delete(iso);
      this.callOrigin.delete(iso);
    }
    this.counts.memoryKills++;
    this.state = 'quarantined';
    this.loadError = 'quarantined: its policy caused a catastrophic out-of-memory error';
    this.host.fatal?.(this.tenant, message);
  }

  /**
   * One inline entry an hour may finish over inline_entry_ms without a
   * demotion: on a shared machine a well-behaved entry is sometimes charged
   * a collection of its heap, or time the VM took the core away, and a
   * minute on its own thread for that costs its tenant a tenth of its
   * throughput. A policy that is really slow runs over again within the hour
   * and is demoted then; one that fails (timeout, memory) is at once.
   */
  private tolerateSlow(ms: number): boolean {
    const now = this.clock.now();
    if (now - this.slowToleratedAt < SLOW_GRACE_MS) return false;
    this.slowToleratedAt = now;
    this.host.log(this.tenant, 'info', 'policy entry ran over inline_entry_ms once; its entries stay inline (one such entry an hour)', {
      entry_ms: Math.round(ms * 100) / 100,
      inline_entry_ms: this.opts.inlineEntryMs,
    });
    return true;
  }

  /**
   * An inline entry ran over inline_entry_ms, or failed: every other tenant
   * of this process waited for it. The tenant's entries are back on the
   * isolate's thread, and stay there for a minute, doubling per offence up
   * to an hour, before a new trial (across reloads: the standing is the
   * tenant's, not its version's).
   */
  private onDemoted(ms: number, why: string): void {
    this.inlineOffences++;
    const bar = doubling(this.opts.inlineBarBaseMs ?? 60_000, this.inlineOffences, 3_600_000);
    this.inlineBarredUntil = this.clock.now() + bar;
    this.host.log(this.tenant, 'warn', 'policy entry held the sandbox thread; its entries run on their own thread again', {
      reason: why,
      entry_ms: Math.round(ms * 100) / 100,
      inline_entry_ms: this.opts.inlineEntryMs,
      barred_ms: bar,
    });
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
    if (!this.live || this.pending.size > 0 || this.live.inFlight > 0) return false;
    if (this.clock.now() - this.lastUsed < idle) return false;
    this.refillCpu();
    this.live.dispose();
    this.callOrigin.delete(this.live);
    this.live = undefined;
    this.cpuSeen = 0;
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
    if (this.live && !this.live.isDisposed) this.refillCpu();
    const heap = h ?? { used: 0, limit: this.limits.memory_mb * 1048576 };
    const s: TenantStats = {
      tenant: this.tenant,
      state: this.state,
      version: this.version?.number ?? 0,
      cpuMs: Math.round(this.cpuTotal * 1000) / 1000,
      heapUsed: heap.used,
      heapLimit: heap.limit,
      ...this.counts,
      inline: !!this.live && !this.live.isDisposed && this.live.isInline,
      inlineOffences: this.inlineOffences,
    };
    if (this.version) s.hash = this.version.hash;
    if (this.loadError) s.loadError = this.loadError;
    return s;
  }

  dispose(): void {
    this.clock.clearTimeout(this.dropReport);
    for (const id of [...this.pending.keys()]) this.settle(id, { kind: 'error', reason: 'unavailable', message: 'tenant removed' });
    this.deadlines.clear();
    this.live?.dispose();
    for (const iso of this.retired) iso.dispose();
    this.retired.clear();
    this.live = undefined;
  }
}

/** A PDU dispatched as its raw frame (the sandbox process's normal case); the isolate builds its view. */
interface FramePayload {
  frame: Uint8Array;
  session: unknown;
}

function isFrame(payload: unknown): boolean {
  return (payload as Partial<FramePayload> | undefined)?.frame instanceof Uint8Array;
}

function isOutcome(o: unknown): o is SandboxOutcome {
  if (!o || typeof o !== 'object') return false;
  const k = (o as { kind?: unknown }).kind;
  if (k === 'reply') return typeof (o as { status?: unknown }).status === 'number';
  if (k === 'bind') return typeof (o as { status?: unknown }).status === 'number';
  return k === 'default' || k === 'done' || k === 'error';
}


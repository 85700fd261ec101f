/**
 * The dispatches of one tenant's runtime: each handler started in an
 * isolate unless the tenant's CPU budget is spent, and kept in the pending
 * table until it settles, exactly once — with its answer, when its entry
 * fails (handler_timeout_ms, the policy's own error), at
 * handler_deadline_ms, or when its isolate is killed or lost or the tenant
 * removed — and the host calls its policy makes meanwhile. Which isolate
 * and version serve is the runtime's (tenant-runtime.ts).
 */
import type { TenantLimits } from '../config/schema';
import { policyError } from '../sandbox-protocol/host-calls';
import type { SandboxOutcome } from '../sandbox-protocol/messages';
import type { Clock } from '../util/clock';
import { KeyedDeadlines } from '../util/deadline';
import type { CpuBudget } from './cpu-budget';
import { EntryBatches } from './entry-batches';
import type { EntryError } from './isolate-failures';
import { PendingHostCalls } from './pending-host-calls';
import type { PolicyIsolate } from './policy-isolate';

/** A tenant runtime's counters (its stats). */
export interface RuntimeCounts {
  calls: number;
  errors: number;
  timeouts: number;
  memoryKills: number;
  throttled: number;
}

export interface TenantDispatchDeps {
  clock: Clock;
  /** The tenant's limits as they are now (a config reload changes them). */
  limits(): TenantLimits;
  /** `sandbox.inline_entry_ms`. */
  inlineEntryMs: number | undefined;
  /** The isolate serving now, if any. */
  live(): PolicyIsolate | undefined;
  cpu: CpuBudget;
  counts: RuntimeCounts;
  /** A policy's call into the host: plain data, or a rejection `policyError` reads. */
  hostCall(op: string, args: unknown): Promise<unknown>;
  /** An entry failed because its isolate is gone (memory limit, stopped). */
  killed(iso: PolicyIsolate, why: string): void;
  /** A dispatch settled: retired isolates may go now. */
  settled(): void;
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

export class TenantDispatch {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  /** handler_deadline_ms per dispatch, by id; a settled id is simply no longer pending. */
  private readonly deadlines: KeyedDeadlines;
  private readonly hostCalls = new PendingHostCalls();
  private readonly batches: EntryBatches;

  constructor(
    private readonly deps: TenantDispatchDeps,
    /** handler_deadline_ms (as the runtime started). */
    deadlineMs: number,
  ) {
    this.deadlines = new KeyedDeadlines(
      deadlineMs + 100,
      deps.clock,
      (id) => this.pending.has(id),
      (id) => this.settle(id, { kind: 'error', reason: 'deadline', message: 'handler missed handler_deadline_ms' }),
    );
    this.batches = new EntryBatches(
      deps.clock,
      deps.cpu,
      () => {
        const inline = deps.live()?.isInline === true;
        const timeoutMs = deps.limits().handler_timeout_ms;
        return { inline, budgetMs: inline ? Math.min(timeoutMs, deps.inlineEntryMs!) : timeoutMs };
      },
      (iso, origin, err) => this.entryFailed(iso, origin, err),
    );
  }

  /** Dispatches not settled yet. */
  get size(): number {
    return this.pending.size;
  }

  /** Start a handler in `iso`; `done` gets its outcome, exactly once. */
  start(iso: PolicyIsolate, kind: string, payload: unknown, done: (o: SandboxOutcome) => void): void {
    const { cpu, counts } = this.deps;
    if (iso !== this.deps.live()) cpu.restart();
    cpu.charge(this.deps.live());
    // The budget throttles new work, not obligations: what an upstream sends on our binds (receipts,
    // MO) was accepted by the SMSC already, and one refused may never be sent again.
    if (MESSAGE_KINDS.has(kind) && cpu.overdrawn() && !fromUpstream(payload)) {
      counts.throttled++;
      // When the budget is back above zero at this tenant's rate.
      done({ kind: 'throttled', retryInMs: cpu.msUntilBack() });
      return;
    }
    const id = ++this.nextId;
    this.deadlines.add(id);
    this.pending.set(id, { done, isolate: iso });
    this.batches.dispatch(iso, id, kind, payload);
  }

  settle(id: number, outcome: SandboxOutcome): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (outcome.kind === 'error') {
      this.deps.counts.errors++;
      if (outcome.reason === 'timeout') this.deps.counts.timeouts++;
    }
    p.done(outcome);
    this.deps.settled();
  }

  /** Settle every dispatch pending on `iso` (on any isolate when undefined). */
  failOn(iso: PolicyIsolate | undefined, outcome: SandboxOutcome): void {
    for (const [id, p] of this.pending) if (!iso || p.isolate === iso) this.settle(id, outcome);
  }

  /** Some dispatch is pending on `iso`. */
  busy(iso: PolicyIsolate): boolean {
    for (const p of this.pending.values()) if (p.isolate === iso) return true;
    return false;
  }

  /** A new isolate: its host calls are counted against max_pending. */
  opened(iso: PolicyIsolate): void {
    this.hostCalls.open(iso);
  }

  /** An isolate gone: its host calls are forgotten. */
  closed(iso: PolicyIsolate): void {
    this.hostCalls.close(iso);
  }

  /** The policy in `iso` called the host. */
  call(iso: PolicyIsolate, callId: number, call: { op: string; origin: number; args: unknown }): void {
    const max = this.deps.limits().max_pending;
    if (!this.hostCalls.begin(iso, callId, call.origin, max)) {
      this.deliver(iso, callId, false, { code: 'THROTTLED', message: `more than ${max} host calls in flight` });
      return;
    }
    this.deps.hostCall(call.op, call.args).then(
      (value) => this.deliver(iso, callId, true, value ?? null),
      // Only a code a policy may see, with our own message: never a host error's text (paths, secrets).
      (err: unknown) => this.deliver(iso, callId, false, policyError(err)),
    );
  }

  /** A host call's result, for the policy awaiting it (entering with the others that arrive together). */
  private deliver(iso: PolicyIsolate, callId: number, ok: boolean, value: unknown): void {
    const origin = this.hostCalls.end(iso, callId);
    if (iso.isDisposed) return;
    this.batches.resolve(iso, callId, ok, value, origin);
  }

  private entryFailed(iso: PolicyIsolate, origin: number | undefined, err: EntryError): void {
    const limits = this.deps.limits();
    if (err.failure === 'timeout') {
      if (origin !== undefined) this.settle(origin, { kind: 'error', reason: 'timeout', message: `handler exceeded handler_timeout_ms ${limits.handler_timeout_ms}` });
      return;
    }
    if (err.failure === 'memory' || err.failure === 'disposed') {
      this.deps.killed(iso, err.failure === 'memory' ? `exceeded memory_mb ${limits.memory_mb}` : 'isolate was stopped');
      return;
    }
    if (origin !== undefined) this.settle(origin, { kind: 'error', reason: 'throw', message: err.message });
  }

  /** The tenant is removed: every dispatch settles `unavailable`, and no deadline is left. */
  dispose(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { kind: 'error', reason: 'unavailable', message: 'tenant removed' });
    this.deadlines.clear();
  }
}

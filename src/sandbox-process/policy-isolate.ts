// One file on purpose: one isolate's boot, entries, timeouts and teardown share isolated-vm's handles, which must be
// released in one order (docs/design.md, "Hazards we design around").
import ivm from 'isolated-vm';
import { STATUS } from '../wire/status';
import type { BootInfo } from '../sandbox-protocol/messages';
import { pduBundle } from '../policy-compiler/pdu-bundle';
import { preludeBundle } from '../policy-compiler/prelude-bundle';
import { inlineBegin, inlineEnd } from './sentry';
import { classify, EntryError, firstPosition, NotCompiled, PolicyLoadError, wrapTopLevel } from './isolate-failures';
import { route, type IsolateHooks } from './isolate-hooks';
import { watch } from './isolate-watchdog';
import { entryReturned, replaceSpare, takeIsolate, type EntryRef } from './warm-isolate';

/**
 * One version of one tenant's policy in its own isolate. The only things that
 * cross into the isolate are copies (boot record, dispatch payloads, host call
 * results) and two narrow callbacks the prelude captures and hides; the only
 * things that come out are plain data the prelude rebuilt inside a timed call.
 * No Reference, ExternalCopy, Context or Isolate is ever reachable from tenant
 * code, and no host error text is passed in.
 *
 * Making isolates and the warm spare is warm-isolate.ts; what comes out of
 * one, isolate-hooks.ts; its failures, isolate-failures.ts; the sweep for
 * stuck entries, isolate-watchdog.ts.
 */

export interface IsolateLimits {
  memoryMb: number;
  /** CPU time allowed to each entry into the isolate (handler_timeout_ms). */
  timeoutMs: number;
  /** Time allowed to the policy's top level at load. */
  startupMs: number;
  /** Largest value a policy may hand to the host in one call. */
  maxDataBytes: number;
  maxLogPerSec: number;
  maxLogBytes: number;
  /** Host calls in flight at once (max_pending). */
  maxPending: number;
  /**
   * Longest an entry may take on the sandbox process's own thread (inline),
   * ms; 0 or absent keeps every entry on the isolate's thread. See `enterInline`.
   */
  inlineEntryMs?: number;
}

let preludeSource: string | undefined;
function preludeWithView(): string {
  return (preludeSource ??= `${pduBundle()}\n${preludeBundle()}`);
}

let instances = 0;

/** Entries an isolate makes on its own thread, each under `inlineEntryMs` of CPU, before its entries may run inline. */
export const TRIAL_ENTRIES = 64;
const SETTLED = Promise.resolve();

export class PolicyIsolate {
  private disposed = false;
  /** Entries run on this thread, synchronously (see `enterInline`). */
  private inline = false;
  /** Trial entries still to pass before going inline; 0 once inline or when inline entries are off. */
  private trial: number;
  /** The isolate's CPU time when the last trial entry returned. */
  private trialCpu = 0;
  private entryRef: EntryRef | undefined;
  /** Entries into the isolate not yet returned. */
  inFlight = 0;
  /** When an entry last returned (or one started on an idle isolate): the watchdog's clock. */
  progressAt = 0;
  private lastCpuMs = 0;
  private wrecked = false;

  private constructor(
    readonly isolate: ivm.Isolate,
    private readonly context: ivm.Context,
    readonly limits: IsolateLimits,
    private readonly hooks: IsolateHooks,
    private readonly tenant: string,
  ) {
    this.trial = (limits.inlineEntryMs ?? 0) > 0 ? TRIAL_ENTRIES : 0;
  }

  /**
   * Create an isolate, run the prelude, then the policy's top level under
   * `startupMs`. Throws PolicyLoadError (position in the compiled script;
   * the caller maps it to the tenant's source) if the policy does not start.
   */
  static async create(js: string | (() => string), filename: string, limits: IsolateLimits, boot: BootInfo, hooks: IsolateHooks): Promise<PolicyIsolate> {
    let self: PolicyIsolate | undefined;
    const fresh = takeIsolate(limits.memoryMb, preludeWithView);
    const { isolate, context, relay } = fresh;
    relay.fatal = (message) => {
      self?.wreck();
      hooks.fatal?.(message);
    };
    relay.hooks = hooks;
    const bootRecord = {
      ...boot,
      statusNames: STATUS,
      idPrefix: `${Date.now().toString(36)}${(++instances).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(-10),
      limits: {
        maxDataBytes: limits.maxDataBytes,
        maxLogPerSec: limits.maxLogPerSec,
        maxLogBytes: limits.maxLogBytes,
        maxPending: limits.maxPending,
      },
    };
    // On the isolate's thread, in order: the prelude (already run in a spare
    // made ahead of need), the boot entry, and the policy's compile, queued
    // while this thread compiles a policy given as a thunk. Queued, not
    // synchronous: a synchronous call would hold this thread (every other
    // tenant of the process) for as long as the isolate's thread is busy.
    const bootWith = (ref: EntryRef): Promise<EntryRef> =>
      ref.apply(undefined, [['boot', 0, JSON.stringify(bootRecord)]] as never, { arguments: { copy: true }, timeout: 1000 }).then(() => ref);
    const ready = fresh.ref ? bootWith(fresh.ref) : fresh.entry.then(bootWith);
    let scriptP: Promise<ivm.Script> | undefined;
    try {
      if (typeof js === 'function') js = js();
      scriptP = isolate.compileScript(wrapTopLevel(js), { filename });
      const ref = await ready;
      self = new PolicyIsolate(isolate, context, limits, hooks, boot.tenant);
      self.entryRef = ref;
      let script: ivm.Script;
      try {
        script = await scriptP;
      } catch (err) {
        const pos = firstPosition(String((err as Error).stack ?? err), filename);
        throw new PolicyLoadError(`syntax error: ${(err as Error).message}`, pos?.line, pos?.column);
      }
      try {
        await script.run(context, { timeout: limits.startupMs });
      } catch (err) {
        const e = classify(err);
        if (e.failure === 'timeout') throw new PolicyLoadError(`top-level code ran longer than ${limits.startupMs} ms`);
        if (e.failure === 'memory') throw new PolicyLoadError(`top-level code exceeded memory_mb ${limits.memoryMb}`);
        // What the policy threw arrives as a string (see wrapTopLevel): its first line is the message.
        const text = typeof err === 'string' ? err : String((err as Error).stack ?? '');
        const message = typeof err === 'string' ? err.split('\n')[0]!.replace(/^[A-Za-z]*Error: /, '').slice(0, 500) : e.message;
        const pos = firstPosition(text.slice(0, 4000), filename);
        throw new PolicyLoadError(`top-level code threw: ${message}`, pos?.line, pos?.column);
      } finally {
        script.release();
      }
      self.trialCpu = self.cpuMs;
      return self;
    } catch (err) {
      // Whatever is still queued fails with the isolate; nobody waits for it.
      for (const p of [ready, scriptP]) p?.catch(() => undefined);
      if (!isolate.isDisposed) isolate.dispose();
      if (err instanceof PolicyLoadError || err instanceof NotCompiled) throw err;
      const e = classify(err);
      throw new PolicyLoadError(e.failure === 'memory' ? `exceeded memory_mb ${limits.memoryMb} while starting` : `could not start: ${e.message}`);
    } finally {
      // The start is over, either way: the next one's isolate can be made now.
      replaceSpare(limits.memoryMb, preludeWithView);
    }
  }

  get isDisposed(): boolean {
    return this.disposed || this.wrecked || this.isolate.isDisposed;
  }

  /** After a catastrophic error: never touch the isolate again (its thread holds it forever). */
  private wreck(): void {
    this.wrecked = true;
  }

  /** Total CPU time this isolate has used, in ms (the last known value once it is gone). */
  get cpuMs(): number {
    // isolated-vm disposes an isolate that hits its memory limit on its own
    // thread, so it can go between the check and the read: these throw
    // "Isolate is disposed", which in a stats request or a dispatch would take
    // the whole sandbox process down.
    if (this.isDisposed) return this.lastCpuMs;
    try {
      this.lastCpuMs = Number(this.isolate.cpuTime) / 1e6;
    } catch {
      // gone meanwhile
    }
    return this.lastCpuMs;
  }

  /** Heap in use, read synchronously: this thread waits for whatever runs in the isolate meanwhile (in-process use only). */
  heap(): { used: number; limit: number } {
    try {
      return this.heapOf(this.isDisposed ? undefined : this.isolate.getHeapStatisticsSync());
    } catch {
      return this.heapOf(undefined);
    }
  }

  /**
   * Heap in use, read asynchronously: a sandbox process answering a stats
   * request must not wait, with every tenant it hosts, for a neighbour's
   * entry to end (a spinning one runs for handler_timeout_ms).
   */
  async heapAsync(): Promise<{ used: number; limit: number }> {
    try {
      return this.heapOf(this.isDisposed ? undefined : await this.isolate.getHeapStatistics());
    } catch {
      return this.heapOf(undefined);
    }
  }

  /** Heap in use from V8's statistics (none: the isolate is gone), against the memory limit. */
  private heapOf(h: ivm.HeapStatistics | undefined): { used: number; limit: number } {
    return { used: h ? h.used_heap_size + h.externally_allocated_size : 0, limit: this.limits.memoryMb * 1048576 };
  }

  /** Entries run on this process's thread now (for tests and stats). */
  get isInline(): boolean {
    return this.inline;
  }

  private enter(args: unknown[]): Promise<void> {
    return this.inline ? this.enterInline(args) : this.enterQueued(args);
  }

  /**
   * Enter the isolate on its own thread, under handler_timeout_ms: where
   * every entry starts, and where a tenant's entries stay unless they earn
   * an inline run. Here what V8 cannot interrupt (a GC thrashing towards the
   * limit, one huge allocation) holds only that isolate's thread, not every
   * other tenant of the process (test/sandbox-process/hostile-crash.test.ts). What
   * the policy sent during the entry comes back as its return value.
   */
  private async enterQueued(args: unknown[]): Promise<void> {
    if (this.isDisposed || !this.entryRef) throw new EntryError('disposed', 'isolate is disposed');
    if (this.inFlight++ === 0) this.progressAt = performance.now();
    watch(this);
    let items: unknown;
    try {
      items = await this.entryRef.apply(undefined, [args] as never, { arguments: { copy: true }, result: { copy: true }, timeout: this.limits.timeoutMs });
    } catch (err) {
      throw classify(err);
    } finally {
      this.inFlight--;
      this.progressAt = performance.now();
      entryReturned(this.progressAt);
      if (this.trial > 0) this.judge();
    }
    if (Array.isArray(items)) route(this.hooks, items);
  }

  /**
   * One trial entry returned: it passes if the isolate's CPU since the last
   * one stayed under `inlineEntryMs` (entries of one isolate run one after
   * another, so that is this entry's, or a few queued ones' together). After
   * TRIAL_ENTRIES passes in a row, and with nothing of this isolate queued
   * on its thread, entries go inline.
   */
  private judge(): void {
    const cpu = this.cpuMs;
    const spent = cpu - this.trialCpu;
    this.trialCpu = cpu;
    if (spent > this.limits.inlineEntryMs!) this.trial = TRIAL_ENTRIES;
    else if (this.trial > 1) this.trial--;
    else if (this.inFlight === 0 && !this.isDisposed && this.hooks.mayInline?.()) {
      this.trial = 0;
      this.inline = true;
    }
  }

  /**
   * Enter the isolate on this thread, synchronously: no hop to the isolate's
   * thread and back, which on this path costs more than the policy (about
   * 0.1 ms of a window-1 round trip, a tenth of the throughput at window 64).
   * Only for a tenant whose entries proved short on trial, and only while
   * they stay under `inlineEntryMs` of CPU: one that fails (timeout, memory),
   * or runs longer where the tenant does not let it pass (`hooks.tolerate`),
   * sends its entries back to the isolate's thread and its tenant's standing
   * down. An entry V8 cannot stop (one huge
   * allocation hangs a synchronous call for good) is the sentry's: a second
   * thread that kills the process, naming the tenant, once an inline entry
   * has not returned in twice handler_timeout_ms plus a second (plus 4 ms
   * per MB of memory_mb).
   */
  private enterInline(args: unknown[]): Promise<void> {
    // Settles like an entry on the isolate's thread: whatever fails here rejects, nothing throws to the caller.
    try {
      this.runInline(args);
      return SETTLED;
    } catch (err) {
      return Promise.reject(err instanceof EntryError ? err : classify(err));
    }
  }

  private runInline(args: unknown[]): void {
    if (this.isDisposed || !this.entryRef) throw new EntryError('disposed', 'isolate is disposed');
    const started = this.cpuMs;
    let items: unknown;
    // Past this the sentry ends the process: a timed-out entry returns well within it, and a
    // full collection of a large heap gets 4 ms per MB of memory_mb on top.
    inlineBegin(this.tenant, this.limits.timeoutMs * 2 + 1000 + this.limits.memoryMb * 4);
    try {
      items = this.entryRef.applySync(undefined, [args] as never, { arguments: { copy: true }, result: { copy: true }, timeout: this.limits.timeoutMs });
    } catch (err) {
      const e = classify(err);
      this.demote(this.cpuMs - started, e.failure);
      throw e;
    } finally {
      inlineEnd();
      entryReturned(performance.now());
    }
    // The isolate's CPU, not the wall clock: a VM that takes the core away for a moment is not the tenant's doing.
    const took = this.cpuMs - started;
    if (took > this.limits.inlineEntryMs! && this.hooks.tolerate?.(took) !== true) this.demote(took, 'slow');
    if (Array.isArray(items)) route(this.hooks, items);
  }

  private demote(ms: number, why: string): void {
    this.inline = false;
    this.trial = TRIAL_ENTRIES;
    this.trialCpu = this.cpuMs;
    this.hooks.demoted?.(ms, why);
  }

  /** Start a handler; its outcome arrives later through `hooks.result(id, …)`. */
  dispatch(id: number, kind: string, payload: unknown): Promise<void> {
    return this.enter(['dispatch', id, kind, payload]);
  }

  /** Start several handlers in one entry: `[id, kind, payload]` each. */
  dispatchMany(items: [number, string, unknown][]): Promise<void> {
    return this.enter(['dispatchMany', 0, items]);
  }

  /**
   * Start handlers for PDUs given as raw frames, in one entry: `bytes` holds
   * the frames back to back, `items` is `[id, start, end, session index]` per
   * PDU. The prelude builds each policy view in the isolate.
   */
  dispatchFrames(bytes: Uint8Array, items: number[], sessions: unknown[]): Promise<void> {
    return this.enter(['frames', 0, bytes, [items, sessions]]);
  }

  /** Settle a host call the policy is awaiting. `value` is plain data, or `{ code, message }` when !ok. */
  resolve(callId: number, ok: boolean, value: unknown): Promise<void> {
    return this.enter(['resolve', callId, ok, value]);
  }

  /** Settle several host calls in one entry: `[callId, ok, value]` each. */
  resolveMany(items: [number, boolean, unknown][]): Promise<void> {
    return this.enter(['resolveMany', 0, items]);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.wrecked) return;
    this.entryRef?.release();
    try {
      this.context.release();
    } catch {
      // already gone with the isolate
    }
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}

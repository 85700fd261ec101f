// One file on purpose: one isolate's boot, entries, timeouts and teardown share isolated-vm's handles, which must be
// released in one order (docs/design.md, "Hazards we design around").
import ivm from 'isolated-vm';
import { STATUS } from '../wire/status';
import type { BootInfo } from '../sandbox-protocol/messages';
import { pduBundle } from '../policy-compiler/pdu-bundle';
import { preludeBundle } from '../policy-compiler/prelude-bundle';
import { inlineBegin, inlineEnd } from './sentry';

/**
 * One version of one tenant's policy in its own isolate. The only things that
 * cross into the isolate are copies (boot record, dispatch payloads, host call
 * results) and two narrow callbacks the prelude captures and hides; the only
 * things that come out are plain data the prelude rebuilt inside a timed call.
 * No Reference, ExternalCopy, Context or Isolate is ever reachable from tenant
 * code, and no host error text is passed in.
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

/** What the isolate sends out; called on the sandbox process's main thread. */
export interface IsolateHooks {
  result(id: number, outcome: unknown): void;
  call(id: number, call: { op: string; origin: number; args: unknown }): void;
  log(entry: { level: string; msg: string; fields?: unknown; dropped?: number }): void;
  view(name: string): string;
  /**
   * isolated-vm lost this isolate for good (a V8 out-of-memory no heap limit
   * absorbs). Its thread never returns; the process should say whose it was
   * and exit (isolated-vm's README).
   */
  fatal?(message: string): void;
  /** May this isolate's entries run inline now (its tenant's standing)? Asked when a trial passes. */
  mayInline?(): boolean;
  /** An inline entry ran `ms` or failed: its entries are back on the isolate's thread. */
  demoted?(ms: number, why: string): void;
  /** An inline entry finished but ran `ms`, over `inlineEntryMs`: may it pass as a one-off (true), or demote (false, the default)? */
  tolerate?(ms: number): boolean;
}


/** Why an entry into the isolate failed. */
export type EntryFailure = 'timeout' | 'memory' | 'disposed' | 'error';

export class EntryError extends Error {
  constructor(
    readonly failure: EntryFailure,
    message: string,
  ) {
    super(message);
    this.name = 'EntryError';
  }
}

/** Thrown by a source thunk whose policy did not compile (the caller has the diagnostics already). */
export class NotCompiled extends Error {
  constructor() {
    super('policy does not compile');
    this.name = 'NotCompiled';
  }
}

/** A policy that failed to load: the message and, where known, its position in the tenant's source. */
export class PolicyLoadError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'PolicyLoadError';
  }
}

let preludeSource: string | undefined;
function preludeWithView(): string {
  return (preludeSource ??= `${pduBundle()}\n${preludeBundle()}`);
}

export function classify(err: unknown): EntryError {
  const message = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(message)) return new EntryError('timeout', message);
  if (/memory limit/i.test(message)) return new EntryError('memory', message);
  if (/disposed/i.test(message)) return new EntryError('disposed', message);
  return new EntryError('error', message);
}

/** `policy.ts:12:5` positions from a V8 error, for mapping back to the tenant's source. */
export function firstPosition(text: string, filename: string): { line: number; column: number } | undefined {
  const escaped = filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(text);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : undefined;
}

/**
 * The policy's top level as it runs: in a try whose catch rethrows only a
 * string (the thrown value's stack or text, read inside the timed run), and
 * ending in `void 0`. isolated-vm copies a thrown object — running its
 * getters, or formatting its stack through a getter the policy put on
 * Error.prototype — after the timed part: `throw { get message() { for (;;) {} } }`
 * at top level would otherwise spin forever outside any timeout. Only syntax
 * is used in the catch, nothing a policy can replace. The prefix goes on
 * line 1, which compiled policies keep for their "use strict", so positions
 * hold. (A block also scopes the policy's top-level functions, which nothing
 * outside the policy refers to.)
 */
export function wrapTopLevel(js: string): string {
  const rethrow = 'catch(e){let m;try{m=e!==null&&(typeof e=="object"||typeof e=="function")?`${e.stack===undefined?e.message:e.stack}`:`${e}`}catch(_){m="a value that cannot be read"}throw m}';
  return `"use strict";try{${js}\n;void 0}${rethrow}`;
}

let instances = 0;

/** Where an isolate's callbacks and catastrophic error go; set by whoever takes the isolate. */
interface Relay {
  hooks?: IsolateHooks;
  fatal?: (message: string) => void;
}

type EntryRef = ivm.Reference<(args: [string, number, unknown?, unknown?]) => unknown>;

interface Fresh {
  isolate: ivm.Isolate;
  /** Its heap limit. */
  memoryMb: number;
  /** Its one context: the prelude only, no tenant yet. */
  context: ivm.Context;
  relay: Relay;
  /** Once the prelude has run: its entry function, taken off the global object. */
  entry: Promise<EntryRef>;
  /** The same, once known. */
  ref?: EntryRef;
}

/**
 * A new isolate with the PDU view module and the prelude run in its context,
 * not yet given to a tenant (the `boot` entry does that). The prelude runs on
 * the isolate's own thread: this thread is held only for the isolate and its
 * empty context (~1.5 ms).
 */
function makeIsolate(memoryMb: number): Fresh {
  const relay: Relay = {};
  const isolate = new ivm.Isolate({
    memoryLimit: memoryMb,
    // One allocation larger than any heap limit (`new Array(6e7).fill(0)`) is
    // an out-of-memory V8 cannot survive. Without this handler isolated-vm
    // aborts the process, naming no one; with it, that isolate's thread
    // stops for good and we hear of it here, so the sandbox can say which
    // tenant it was before it exits. It takes an entry on the isolate's own
    // thread to be heard: in an inline entry the thread that stops is this
    // one, and the sentry's watch takes over (see `enterInline`).
    onCatastrophicError: (message: string) => relay.fatal?.(String(message)),
  });
  const context = isolate.createContextSync();
  const jail = context.global;
  // Nothing runs in the isolate yet: these return at once.
  jail.setSync(
    '__sluice_send',
    new ivm.Callback(
      (op: string, _id: number, data: unknown) => {
        if (op === 'batch' && Array.isArray(data) && relay.hooks) route(relay.hooks, data);
      },
      { ignored: true },
    ),
  );
  jail.setSync('__sluice_view', new ivm.Callback((name: string) => (relay.hooks ? relay.hooks.view(String(name)) : '[]')));
  const fresh: Fresh = {
    isolate,
    memoryMb,
    context,
    relay,
    entry: context.eval(preludeWithView(), { filename: '<sluice>', timeout: 1000 }).then(async () => {
      const ref = (await jail.get('__sluice_enter', { reference: true })) as EntryRef;
      await jail.delete('__sluice_enter');
      return (fresh.ref = ref);
    }),
  };
  // A spare disposed unused rejects here; whoever takes the isolate awaits `entry` itself.
  fresh.entry.catch(() => undefined);
  return fresh;
}

/**
 * One isolate made ahead of need for the next cold start: a new isolate and
 * its context hold this thread for ~1.5 ms, and the prelude takes its own
 * thread another 1-2 ms; together a third of a cold start. It is made in a
 * quiet moment after a start is over, for the memory limit last asked for,
 * and holds only our own code (the PDU view module and the prelude, no
 * tenant's name, config or code) until a tenant's start takes it.
 */
const spare = {
  /** Only sandbox processes keep one (they end by exit() or SIGKILL; see `keepSpareIsolate`). */
  enabled: false,
  made: undefined as Fresh | undefined,
  timer: undefined as NodeJS.Timeout | undefined,
};

/**
 * Keep an isolate made ahead of need (on in sandbox processes), or stop and
 * drop the one kept. A process that runs policies in-process (the test
 * harness, tests) has no use for it, and isolated-vm 5 can abort a process
 * that ends by draining its event loop while one of its handles is still
 * awaiting collection: a spare made just before the end makes that likelier.
 */
export function keepSpareIsolate(on: boolean): void {
  spare.enabled = on;
  if (on) return;
  if (spare.timer) clearTimeout(spare.timer);
  spare.timer = undefined;
  const s = spare.made;
  spare.made = undefined;
  if (s && !s.isolate.isDisposed) s.isolate.dispose();
}

/** A spare is made once no entry has returned for this long… */
const SPARE_QUIET_MS = 3;
/** …or this long after the start that took the last one, whatever the traffic. */
const SPARE_LATEST_MS = 100;
/** When an entry into any isolate of this process last returned (performance.now()). */
let lastEntryAt = 0;

/** The isolate made ahead of need, if any: its heap limit and whether its prelude has run. */
export function spareIsolate(): { memoryMb: number; ready: boolean } | undefined {
  const s = spare.made;
  return s && !s.isolate.isDisposed ? { memoryMb: s.memoryMb, ready: s.ref !== undefined } : undefined;
}

function takeIsolate(memoryMb: number): Fresh {
  const s = spare.made;
  spare.made = undefined;
  if (s && s.memoryMb === memoryMb && !s.isolate.isDisposed) return s;
  if (s && !s.isolate.isDisposed) s.isolate.dispose();
  return makeIsolate(memoryMb);
}

/**
 * Make the next spare once a start is over, in a quiet moment: making one
 * holds this thread for ~1.5 ms, which should not land on the first PDUs of
 * the tenant that just started (or on anyone's traffic) when it can wait.
 */
function replaceSpare(memoryMb: number): void {
  if (!spare.enabled) return;
  if (spare.timer) clearTimeout(spare.timer);
  const latest = performance.now() + SPARE_LATEST_MS;
  const attempt = (): void => {
    const now = performance.now();
    if (now - lastEntryAt < SPARE_QUIET_MS && now < latest) {
      spare.timer = setTimeout(attempt, SPARE_QUIET_MS).unref();
      return;
    }
    spare.timer = undefined;
    spare.made ??= makeIsolate(memoryMb);
  };
  spare.timer = setTimeout(attempt, SPARE_QUIET_MS).unref();
}

/** Route what the prelude sent: `[op, id, data]` items (`['reply', id, status, message_id]` for the common answer), from an entry's return value or a late batch. */
function route(hooks: IsolateHooks, items: unknown[]): void {
  for (const item of items) {
    if (!Array.isArray(item)) continue;
    const [op, id, data] = item as [string, number, unknown];
    if (op === 'reply') hooks.result(id, { kind: 'reply', status: data, fields: { message_id: String((item as unknown[])[3]) } });
    else if (op === 'result') hooks.result(id, data);
    else if (op === 'call') hooks.call(id, data as { op: string; origin: number; args: unknown });
    else if (op === 'log') hooks.log(data as { level: string; msg: string });
  }
}

/**
 * The V8 timeout should always fire; this catches what it cannot stop: an
 * isolate with entries in flight that has not finished one for far longer
 * than handler_timeout_ms is disposed. One sweep for every isolate of the
 * process, not a timer per entry (an entry costs tens of µs as it is).
 */
const watchdog = {
  isolates: new Set<PolicyIsolate>(),
  timer: undefined as NodeJS.Timeout | undefined,
  add(iso: PolicyIsolate): void {
    this.isolates.add(iso);
    this.timer ??= setInterval(() => this.sweep(), 250).unref();
  },
  sweep(): void {
    const now = performance.now();
    for (const iso of this.isolates) {
      if (iso.inFlight === 0 || iso.isDisposed) this.isolates.delete(iso);
      else if (now - iso.progressAt > iso.limits.timeoutMs * 20 + 2000) iso.dispose();
    }
    if (this.isolates.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  },
};

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
    const fresh = takeIsolate(limits.memoryMb);
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
      replaceSpare(limits.memoryMb);
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
    watchdog.add(this);
    let items: unknown;
    try {
      items = await this.entryRef.apply(undefined, [args] as never, { arguments: { copy: true }, result: { copy: true }, timeout: this.limits.timeoutMs });
    } catch (err) {
      throw classify(err);
    } finally {
      this.inFlight--;
      this.progressAt = lastEntryAt = performance.now();
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
      lastEntryAt = performance.now();
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

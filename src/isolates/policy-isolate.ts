import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import ivm from 'isolated-vm';
import { STATUS } from '../wire/status';

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
}

/** What the isolate sends out; called on the sandbox process's main thread. */
export interface IsolateHooks {
  result(id: number, outcome: unknown): void;
  call(id: number, call: { op: string; origin: number; args: unknown }): void;
  log(entry: { level: string; msg: string; fields?: unknown; dropped?: number }): void;
  view(name: string): string;
}

export interface BootInfo {
  tenant: string;
  config: unknown;
  routing: unknown;
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

function findUp(rel: string): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const p = path.join(dir, rel);
    try {
      readFileSync(p);
      return p;
    } catch {
      dir = path.dirname(dir);
    }
  }
  throw new Error(`cannot find ${rel} above ${__dirname}`);
}

let preludeSource: string | undefined;
function prelude(): string {
  return (preludeSource ??= readFileSync(findUp('sandbox/prelude.js'), 'utf8'));
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

let instances = 0;

export class PolicyIsolate {
  private disposed = false;
  private entryRef: ivm.Reference<(type: string, id: number, a?: unknown, b?: unknown) => unknown> | undefined;
  /** Entries into the isolate not yet returned. */
  inFlight = 0;

  private constructor(
    readonly isolate: ivm.Isolate,
    private readonly context: ivm.Context,
    readonly limits: IsolateLimits,
  ) {}

  /**
   * Create an isolate, run the prelude, then the policy's top level under
   * `startupMs`. Throws PolicyLoadError (position in the compiled script;
   * the caller maps it to the tenant's source) if the policy does not start.
   */
  static async create(js: string, filename: string, limits: IsolateLimits, boot: BootInfo, hooks: IsolateHooks): Promise<PolicyIsolate> {
    const isolate = new ivm.Isolate({ memoryLimit: limits.memoryMb });
    try {
      const context = await isolate.createContext();
      const jail = context.global;
      await jail.set(
        '__sluice_send',
        new ivm.Callback(
          (op: string, id: number, data: unknown) => {
            if (op === 'result') hooks.result(id, data);
            else if (op === 'call') hooks.call(id, data as { op: string; origin: number; args: unknown });
            else if (op === 'log') hooks.log(data as { level: string; msg: string });
          },
          { ignored: true },
        ),
      );
      await jail.set('__sluice_view', new ivm.Callback((name: string) => hooks.view(String(name))));
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
      await jail.set('__sluice_boot', JSON.stringify(bootRecord));
      const pre = await isolate.compileScript(prelude(), { filename: '<sluice>' });
      await pre.run(context, { timeout: 1000 });
      pre.release();
      const self = new PolicyIsolate(isolate, context, limits);
      self.entryRef = await jail.get('__sluice_enter', { reference: true });
      await jail.delete('__sluice_enter');
      let script: ivm.Script;
      try {
        script = await isolate.compileScript(js, { filename });
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
        const pos = firstPosition(String((err as Error).stack ?? ''), filename);
        throw new PolicyLoadError(`top-level code threw: ${e.message}`, pos?.line, pos?.column);
      } finally {
        script.release();
      }
      return self;
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      if (err instanceof PolicyLoadError) throw err;
      const e = classify(err);
      throw new PolicyLoadError(e.failure === 'memory' ? `exceeded memory_mb ${limits.memoryMb} while starting` : `could not start: ${e.message}`);
    }
  }

  get isDisposed(): boolean {
    return this.disposed || this.isolate.isDisposed;
  }

  /** Total CPU time this isolate has used, in ms. */
  get cpuMs(): number {
    return this.isDisposed ? 0 : Number(this.isolate.cpuTime) / 1e6;
  }

  heap(): { used: number; limit: number } {
    if (this.isDisposed) return { used: 0, limit: this.limits.memoryMb * 1048576 };
    const h = this.isolate.getHeapStatisticsSync();
    return { used: h.used_heap_size + h.externally_allocated_size, limit: this.limits.memoryMb * 1048576 };
  }

  private async enter(args: unknown[]): Promise<void> {
    if (this.isDisposed || !this.entryRef) throw new EntryError('disposed', 'isolate is disposed');
    this.inFlight++;
    // The V8 timeout should always fire; this catches what it cannot stop.
    const watchdog = setTimeout(() => this.dispose(), this.limits.timeoutMs * 20 + 2000);
    try {
      await this.entryRef.apply(undefined, args as never, { arguments: { copy: true }, timeout: this.limits.timeoutMs });
    } catch (err) {
      throw classify(err);
    } finally {
      clearTimeout(watchdog);
      this.inFlight--;
    }
  }

  /** Start a handler; its outcome arrives later through `hooks.result(id, …)`. */
  dispatch(id: number, kind: string, payload: unknown): Promise<void> {
    return this.enter(['dispatch', id, kind, payload]);
  }

  /** Settle a host call the policy is awaiting. `value` is plain data, or `{ code, message }` when !ok. */
  resolve(callId: number, ok: boolean, value: unknown): Promise<void> {
    return this.enter(['resolve', callId, ok, value]);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.entryRef?.release();
    try {
      this.context.release();
    } catch {
      // already gone with the isolate
    }
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}

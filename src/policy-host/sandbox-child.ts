/**
 * One supervised sandbox process, as the core sees it: spawned with nothing
 * of the core's environment, talked to over its channel (fd 3), and replaced
 * when it dies — after a backoff that doubles per restart (50 ms to 5 s) and
 * resets once a replacement stays up a minute. When it dies it answers every
 * call in flight in it (in-flight.ts) and names the tenant it is laid to:
 * the one the sandbox named in a `fatal` message, else one whose policy was
 * loading, else the one whose call had run longest (tenants only waiting on
 * the host do not count). What it cannot answer itself (loads, logs, stats,
 * host calls, the death and the restart) goes to its pool through
 * `SandboxChildEvents`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { SluiceError } from '../errors';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import { Channel } from '../sandbox-protocol/channel';
import { policyError } from '../sandbox-protocol/host-calls';
import type { FromSandbox, LoadResult, SandboxOutcome, TenantStats, ToSandbox } from '../sandbox-protocol/messages';
import { doubling } from '../util/backoff';
import type { Clock } from '../util/clock';
import { InFlightCalls } from './in-flight';

/** What a sandbox process tells its pool. */
export interface SandboxChildEvents {
  /** The answer to a `register` (see `load`). */
  loaded(reqId: number, result: LoadResult): void;
  compileFailed(tenant: string, errors: PolicyDiagnostic[]): void;
  /** Serve a policy's host call; the result goes back to the process that asked. */
  hostCall(tenant: string, op: string, args: unknown): Promise<unknown>;
  log(tenant: string, level: string, msg: string, fields: unknown): void;
  stats(reqId: number, tenants: TenantStats[], rss: number): void;
  /** The process died and its calls in flight are answered (`failed` of them, `forwarded` by the forward of their PDU); `culprit`: the tenant it is laid to. */
  died(death: { proc: number; code: number | null; signal: NodeJS.Signals | null; failed: number; forwarded: number; culprit: string | undefined }): void;
  /** Its replacement is up and empty: register its tenants again. */
  restarted(): void;
}

export interface SandboxChildOptions {
  index: number;
  /** Passed to the process: how long an idle isolate is kept, and `sandbox.inline_entry_ms`. */
  idleEvictMs: number;
  inlineEntryMs: number;
  clock: Clock;
  log: Logger;
  events: SandboxChildEvents;
}

export class SandboxChild {
  readonly index: number;
  /** The dispatches sent to it and not yet answered. */
  readonly calls = new InFlightCalls();
  /** Resolves once the process (the current one) said it is ready. */
  ready: Promise<void> = Promise.resolve();
  /** Set while the process is being replaced: calls wait for it (the core's deadline bounds the wait). */
  restarting?: Promise<void>;
  private child: ChildProcess | undefined;
  private out: Channel<FromSandbox, ToSandbox> | undefined;
  private restarts = 0;
  /** Restarts since the pool started (`restarts` is reset after a minute up; this is not). */
  private restartCount = 0;
  /** The tenant the sandbox named in a `fatal` message before it died. */
  private fatal?: string;
  /** Tenants with a load (compile + top level) running, by request id. */
  private readonly loading = new Map<number, string>();
  /** Host calls in flight per tenant: a tenant waiting on the host is not running. */
  private readonly hostWaits = new Map<string, number>();
  private readonly taps = new Set<(m: FromSandbox) => void>();
  private stopped = false;

  constructor(private readonly opts: SandboxChildOptions) {
    this.index = opts.index;
  }

  /** The running process (tests kill it); undefined while it is replaced or stopped. */
  get process(): ChildProcess | undefined {
    return this.child;
  }

  get restartsTotal(): number {
    return this.restartCount;
  }

  spawn(): void {
    const entry = path.join(__dirname, '..', 'sandbox-process', 'main.js');
    const child = spawn(process.execPath, ['--no-node-snapshot', entry, String(this.opts.idleEvictMs), String(this.opts.inlineEntryMs)], {
      // fd 3 is the channel (a socket pair).
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      // Nothing of the core's environment (tokens, passwords) goes to the sandbox.
      env: { NODE_ENV: process.env.NODE_ENV ?? 'production' },
    });
    this.child = child;
    let ready!: () => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    this.out = new Channel<FromSandbox, ToSandbox>(
      child.stdio[3] as Socket,
      (m) => {
        if (m.t === 'ready') ready();
        for (const tap of this.taps) tap(m);
        this.onMessage(m);
      },
      // Never expected (everything sent is plain data); a dispatch dropped here is answered at its deadline.
      (m, err) => this.opts.log.error({ message: m.t, err: err.message }, 'sandbox channel: a message could not be sent'),
    );
    // A channel that breaks (a frame that does not decode) means a sandbox that cannot be trusted to go on: replace it.
    (child.stdio[3] as Socket).on('close', () => {
      if (this.child === child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    // 'close', not 'exit': after the channel too has ended, so what the process
    // wrote just before it died (a sentry's `fatal` naming the tenant) is read first.
    child.on('close', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (err) => this.opts.log.error({ proc: this.index, err: err.message }, 'sandbox process error'));
  }

  /** Every message the process sends from now on, its replacements' too, until the returned function is called. */
  tap(fn: (m: FromSandbox) => void): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  /** False when there is no process to send to (dead, being replaced). */
  send(m: ToSandbox): boolean {
    const out = this.out;
    if (!this.child || !out || !out.open) return false;
    out.send(m);
    return true;
  }

  /** Send a dispatch; `done` gets its outcome exactly once. `frame`, `sessionId`: a PDU given as its frame (see InFlightCalls.add). */
  dispatch(id: number, tenant: string, kind: 'bind' | 'pdu' | 'session' | 'timer', payload: unknown, done: (o: SandboxOutcome) => void, frame?: Uint8Array, sessionId?: string): void {
    this.calls.add(id, tenant, this.opts.clock.now(), done, frame, sessionId);
    if (!this.send({ t: 'dispatch', id, tenant, kind, payload })) {
      this.calls.take(id);
      done({ kind: 'error', reason: 'crash', message: 'sandbox process is not running' });
    }
  }

  /** Send a registration; one that activates a version is a load in progress (a death meanwhile is laid to its tenant). False when it could not be sent. */
  load(m: Extract<ToSandbox, { t: 'register' }>): boolean {
    if (m.activate) this.loading.set(m.reqId, m.tenant);
    if (this.send(m)) return true;
    this.loading.delete(m.reqId);
    return false;
  }

  private onMessage(m: FromSandbox): void {
    switch (m.t) {
      case 'outcome':
        this.calls.answered(m.id, m.outcome);
        return;
      case 'loaded':
        this.loading.delete(m.reqId);
        this.opts.events.loaded(m.reqId, m.result);
        return;
      case 'compileFailed':
        this.opts.events.compileFailed(m.tenant, m.errors);
        return;
      case 'fatal':
        this.fatal = m.tenant;
        return;
      case 'hostCall':
        this.hostCall(m);
        return;
      case 'log':
        this.opts.events.log(m.tenant, m.level, m.msg, m.fields);
        return;
      case 'stats':
        this.opts.events.stats(m.reqId, m.tenants, m.rss);
        return;
      case 'ready':
        return;
    }
  }

  private hostCall(m: Extract<FromSandbox, { t: 'hostCall' }>): void {
    this.hostWaits.set(m.tenant, (this.hostWaits.get(m.tenant) ?? 0) + 1);
    // The result goes to the process that asked: a replacement numbers its host calls afresh from 1.
    const out = this.out;
    const call = this.opts.events.hostCall(m.tenant, m.op, m.args);
    if (m.op === 'forward') this.calls.noteForward(m.tenant, m.args, call);
    void call
      .finally(() => {
        if (this.out !== out) return;
        const n = (this.hostWaits.get(m.tenant) ?? 1) - 1;
        if (n > 0) this.hostWaits.set(m.tenant, n);
        else this.hostWaits.delete(m.tenant);
      })
      .then(
        (value) => this.out === out && this.send({ t: 'hostResult', id: m.id, ok: true, value }),
        (err: unknown) => {
          if (!(err instanceof SluiceError)) this.opts.log.warn({ tenant: m.tenant, op: m.op, err: (err as Error)?.message }, 'host call failed');
          if (this.out === out) this.send({ t: 'hostResult', id: m.id, ok: false, value: policyError(err) });
        },
      );
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.out?.clear();
    this.out = undefined;
    let culprit: string | undefined = this.fatal;
    if (!culprit && this.loading.size > 0) culprit = this.loading.values().next().value;
    if (!culprit) culprit = this.calls.longestRunning((tenant) => this.hostWaits.has(tenant));
    this.fatal = undefined;
    this.loading.clear();
    this.hostWaits.clear();
    const { failed, forwarded } = this.calls.crashed({ kind: 'error', reason: 'crash', message: 'sandbox process died' });
    this.opts.events.died({ proc: this.index, code, signal, failed, forwarded, culprit });
    if (this.stopped) return;
    this.restartLater();
  }

  private restartLater(): void {
    const clock = this.opts.clock;
    this.restarts++;
    this.restartCount++;
    const delay = doubling(50, this.restarts, 5000);
    let back!: () => void;
    this.restarting = new Promise<void>((r) => (back = r));
    clock.setTimeout(() => {
      if (this.stopped) return back();
      this.spawn();
      void this.ready.then(() => {
        this.opts.events.restarted();
        this.restarting = undefined;
        back();
      });
      // A process that stays up a minute resets the restart backoff.
      clock.setTimeout(() => {
        if (this.child) this.restarts = 0;
      }, 60_000);
    }, delay);
  }

  /** No more restarts: one under way ends at its timer, without a process. */
  stop(): void {
    this.stopped = true;
    this.restarting = undefined;
  }

  /** Kill the process and answer its calls in flight with `outcome`. */
  kill(outcome: SandboxOutcome): void {
    const c = this.child;
    this.child = undefined;
    if (c && c.exitCode === null) c.kill('SIGKILL');
    this.calls.failAll(outcome);
  }
}

// One file on purpose: one outbound bind is one supervised state machine (standby for its lease, connect, bind,
// backoff capped at 60 s, bound, stopped); its states, timers and the lease that gates it change together.
import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import type { LeaseStore } from '../cache/backend';
import type { OutboundBindConfig, ServerConfig } from '../config/schema';
import { SluiceError } from '../errors';
import type { SourceLogLimiter } from '../log/source-limit';
import { SmppSession, type InboundRequest } from '../sessions/smpp-session';
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock, TimerHandle } from '../util/clock';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import { statusName } from '../wire/status';
import { statusMetric, timed, type Telemetry } from '../telemetry';
import { Backoff, RECONNECT_CAP_MS } from '../util/backoff';

/** `standby`: a `single: true` bind waiting for its lease, which another replica holds (or the store cannot be reached). */
export const BIND_STATES = ['stopped', 'standby', 'connecting', 'binding', 'bound', 'backoff'] as const;
export type BindState = (typeof BIND_STATES)[number];

/** Published on every state change of an outbound bind. */
export const bindStateChannel = channel('sluice:bind:state');

export interface BindStateEvent {
  tenant: string;
  bind: string;
  state: BindState;
  previous: BindState;
  reason?: string;
  /** Delay before the next attempt, when state is 'backoff'. */
  retryInMs?: number;
}

export interface OutboundBindDeps {
  clock: Clock;
  logger: Logger;
  server: ServerConfig;
  /** First reconnect delay; doubles per failure up to 60 s. */
  reconnectBaseMs?: number;
  /** A session bound this long counts as healthy: the next failure starts from the base delay again. */
  healthyAfterMs?: number;
  random?: () => number;
  /** Where a `single: true` bind takes its lease; required for one. */
  lease?: BindLease;
  /** Lines the upstream causes (malformed PDUs) go through this limit. */
  logLimiter?: SourceLogLimiter;
  /** Where requests both ways are counted and timed (metrics). */
  telemetry?: Telemetry;
}

/** A `single: true` bind's lease in the shared store (docs/design.md, "Replicas"). */
export interface BindLease {
  readonly store: LeaseStore;
  /** This replica's name in the store. */
  readonly owner: string;
  /** How long a lease lasts unrenewed; the holder renews it every third of this. */
  readonly ttlMs: number;
}

export interface OutboundBindEvents {
  state: [event: BindStateEvent];
  /** A request from the upstream SMSC (deliver_sm, data_sm, alert_notification, …). */
  request: [pdu: InboundRequest, session: SmppSession];
}

const BIND_COMMAND = { transceiver: 'bind_transceiver', transmitter: 'bind_transmitter', receiver: 'bind_receiver' } as const;
const NEVER = 0x7fffffff;

/**
 * One supervised outbound bind: connect, bind (SMPP 3.4, interface_version
 * 0x34), keep alive, and after any loss reconnect with exponential backoff and
 * jitter capped at 60 s. Every attempt builds a new socket and session, over
 * TLS when the bind is configured for it.
 *
 * A `single: true` bind first takes a lease in the shared store and connects
 * only while it holds it; other replicas wait in `standby` and try again
 * every third of the lease's time. The holder renews at that pace. It lets
 * the bind go (unbinds, back to standby) when another replica holds the
 * lease, or when the lease it holds is about to run out unrenewed because
 * the store did not answer: a replica that cannot reach the store never
 * holds the bind past its lease. A stop unbinds, then gives the lease back.
 */
export class OutboundBind extends EventEmitter<OutboundBindEvents> {
  private _state: BindState = 'stopped';
  private session: SmppSession | undefined;
  private timer: TimerHandle | undefined;
  private boundAt = 0;
  private readonly backoff: Backoff;
  private readonly bucket: TokenBucket;
  private readonly log: Logger;
  readonly responseTimeoutMs: number;
  /** This replica holds the bind's lease (single: true only). */
  private holding = false;
  /** Next acquire or renew; and when the lease held runs out unrenewed. */
  private leaseTimer: TimerHandle | undefined;
  private lapseTimer: TimerHandle | undefined;
  /** Bumped by every start and stop: an answer from the store for an older run is ignored. */
  private run = 0;
  /** The failure the bind keeps retrying after, and how often it came again (see logState). */
  private failing: { reason: string; repeats: number } | undefined;
  /** The last store error logged, so an outage is logged once, not at every try. */
  private leaseError: string | undefined;
  /** Connection attempts after a failure or a lost session (metrics). */
  reconnects = 0;
  /** Wall-clock time of the last failed attempt or lost session; 0: none yet. */
  lastFailureAt = 0;
  /** Why the last attempt failed or the last session was lost (the status page shows it); undefined: none yet. */
  lastError: string | undefined;

  constructor(
    readonly tenant: string,
    readonly cfg: OutboundBindConfig,
    private readonly deps: OutboundBindDeps,
  ) {
    super();
    this.log = deps.logger.child({ tenant, bind: cfg.name });
    this.backoff = new Backoff({ baseMs: deps.reconnectBaseMs ?? 1000, maxMs: RECONNECT_CAP_MS, random: deps.random });
    this.bucket = new TokenBucket(cfg.max_msg_per_sec, deps.clock);
    this.responseTimeoutMs = cfg.response_timer_ms ?? deps.server.response_timer_ms;
    if (cfg.single && !deps.lease) throw new Error(`bind ${cfg.name} is single: true but has no lease store`);
  }

  get state(): BindState {
    return this._state;
  }

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /** Consecutive failed attempts since the last healthy session. */
  get failures(): number {
    return this.backoff.failures;
  }

  /** Our requests the upstream has not answered yet (the bind's window in use), and those waiting for a slot. */
  get window(): { inUse: number; queued: number; size: number } {
    return { inUse: this.session?.outstanding ?? 0, queued: this.session?.queued ?? 0, size: this.cfg.window };
  }

  /** Holds its lease now (always false for a bind that is not `single: true`). */
  get leaseHeld(): boolean {
    return this.holding;
  }

  start(): void {
    if (this._state !== 'stopped') return;
    this.run++;
    if (!this.cfg.single) {
      this.connect();
      return;
    }
    this.setState('standby', 'waiting for the lease');
    void this.takeLease(this.run);
  }

  /** Unbind (if bound), stop reconnecting, and give the lease back (if held). */
  async stop(): Promise<void> {
    this.run++;
    for (const t of [this.timer, this.leaseTimer, this.lapseTimer]) this.deps.clock.clearTimeout(t);
    this.timer = this.leaseTimer = this.lapseTimer = undefined;
    const s = this.session;
    const held = this.holding;
    this.holding = false;
    this.setState('stopped', 'stopped');
    if (s && !s.closed) await s.unbindAndClose('bind stopped');
    // After the unbind: the next holder's session never overlaps ours.
    if (held) await this.releaseLease();
  }

  private get leaseKey(): string {
    return `sluice:lease:bind:${encodeURIComponent(this.tenant)}:${encodeURIComponent(this.cfg.name)}`;
  }

  private async releaseLease(): Promise<void> {
    const lease = this.deps.lease!;
    try {
      await lease.store.release(this.leaseKey, lease.owner);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not give the lease back; it runs out by itself');
    }
  }

  /** Acquire or renew the lease once, act on the answer, and schedule the next try. */
  private async takeLease(run: number): Promise<void> {
    const lease = this.deps.lease!;
    const asked = this.deps.clock.now();
    let held: boolean | Error;
    try {
      held = await lease.store.acquire(this.leaseKey, lease.owner, lease.ttlMs);
    } catch (err) {
      held = err instanceof Error ? err : new Error(String(err));
    }
    if (run !== this.run) {
      // Stopped while the store answered: what it just granted goes back. (Started
      // again meanwhile: the new run asks for it under the same owner.)
      if (held === true && this._state === 'stopped') await this.releaseLease();
      return;
    }
    if (held instanceof Error) {
      if (this.leaseError !== held.message) this.log.warn({ err: held.message, holding: this.holding }, 'lease store unreachable');
      this.leaseError = held.message;
      // Holding: the bind stays up until the lapse timer; in standby it stays there.
    } else {
      if (this.leaseError !== undefined) this.log.info('lease store reachable again');
      this.leaseError = undefined;
      if (held) {
        // Counted from before the store set its expiry, so never later than the store's.
        this.armLapse(asked + lease.ttlMs);
        if (!this.holding) {
          this.holding = true;
          this.log.info({ owner: lease.owner }, 'lease taken');
          this.connect();
        }
      } else if (this.holding) {
        this.letGo('another replica holds the lease');
      }
    }
    this.leaseTimer = this.deps.clock.setTimeout(() => {
      this.leaseTimer = undefined;
      void this.takeLease(run);
    }, lease.ttlMs / 3);
  }

  /** Let the bind go a tenth of the lease's time before the lease held runs out unrenewed. */
  private armLapse(heldUntil: number): void {
    this.deps.clock.clearTimeout(this.lapseTimer);
    const ttl = this.deps.lease!.ttlMs;
    this.lapseTimer = this.deps.clock.setTimeout(() => {
      this.lapseTimer = undefined;
      if (this.holding) this.letGo('lease not renewed in time (lease store unreachable)');
    }, heldUntil - ttl / 10 - this.deps.clock.now());
  }

  /** Unbind and wait in standby: the lease is someone else's, or about to be. */
  private letGo(reason: string): void {
    this.holding = false;
    this.deps.clock.clearTimeout(this.lapseTimer);
    this.deps.clock.clearTimeout(this.timer);
    this.lapseTimer = this.timer = undefined;
    const s = this.session;
    this.log.warn({ reason }, 'lease lost; unbinding');
    this.setState('standby', reason);
    if (s && !s.closed) void s.unbindAndClose(reason);
  }

  /** Close the SMPP session now, without waiting for the SMSC's unbind_resp (a stop that ran out of time). */
  closeNow(reason: string): void {
    if (this.session && !this.session.closed) this.session.close(reason, false);
  }

  /**
   * A bind state change in the log. Losing the upstream and a failed bind are
   * warnings, with the reason; the same failure again and again (an SMSC that
   * refuses every bind) is said once, then counted, and the count is said when
   * the reason changes or the bind comes up. The retries in between are debug.
   */
  private logState(state: BindState, previous: BindState, reason: string | undefined, retryInMs: number | undefined): void {
    const f = this.failing;
    if (state === 'backoff') {
      const why = reason ?? 'unknown';
      if (f && f.reason === why) {
        f.repeats++;
        this.log.debug({ state, previous, reason, retryInMs, repeats: f.repeats }, 'bind state');
        return;
      }
      if (f && f.repeats > 0) this.log.warn({ reason: f.reason, repeats: f.repeats }, 'bind failure repeated');
      this.failing = { reason: why, repeats: 0 };
      this.log.warn({ state, previous, reason, retryInMs }, previous === 'bound' ? 'upstream lost' : 'bind failed');
      return;
    }
    if (state === 'bound' && f) {
      this.failing = undefined;
      this.log.info({ state, previous, failures: f.repeats + 1, last_reason: f.reason }, 'bind state');
      return;
    }
    if (f && (state === 'connecting' || state === 'binding')) {
      this.log.debug({ state, previous, reason }, 'bind state');
      return;
    }
    if (state === 'stopped' || state === 'standby') this.failing = undefined;
    this.log.info({ state, previous, reason, retryInMs }, 'bind state');
  }

  private setState(state: BindState, reason?: string, retryInMs?: number): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    const ev: BindStateEvent = { tenant: this.tenant, bind: this.cfg.name, state, previous };
    if (reason !== undefined) ev.reason = reason;
    if (retryInMs !== undefined) ev.retryInMs = retryInMs;
    this.logState(state, previous, reason, retryInMs);
    if (bindStateChannel.hasSubscribers) bindStateChannel.publish(ev);
    this.emit('state', ev);
  }

  private openSocket(): net.Socket {
    const { host, port } = this.cfg;
    const t = this.cfg.tls;
    if (!t) return net.connect({ host, port });
    const opts: tls.ConnectionOptions = { host, port, servername: net.isIP(host) ? undefined : host };
    if (typeof t === 'object') {
      if (t.ca_path) opts.ca = readFileSync(t.ca_path);
      opts.rejectUnauthorized = t.reject_unauthorized;
      if (t.servername) opts.servername = t.servername;
    }
    return tls.connect(opts);
  }

  private connect(): void {
    this.setState('connecting');
    const socket = this.openSocket();
    const ready = this.cfg.tls ? 'secureConnect' : 'connect';
    const deadline = this.deps.clock.setTimeout(() => {
      socket.destroy();
      this.retry('connect/bind timed out');
    }, this.deps.server.session_init_timer_ms);
    this.timer = deadline;
    const onEarlyError = (err: Error): void => {
      this.deps.clock.clearTimeout(deadline);
      socket.destroy();
      this.retry(`connect failed: ${err.message}`);
    };
    socket.once('error', onEarlyError);
    socket.once(ready, () => {
      socket.off('error', onEarlyError);
      if (this._state !== 'connecting') {
        socket.destroy();
        return;
      }
      this.onConnected(socket, deadline);
    });
  }

  private onConnected(socket: net.Socket, deadline: TimerHandle): void {
    const server = this.deps.server;
    const session = new SmppSession(socket, {
      role: 'client',
      clock: this.deps.clock,
      logger: this.log,
      window: this.cfg.window,
      peerWindow: server.window,
      responseTimeoutMs: this.responseTimeoutMs,
      enquireLinkMs: this.cfg.enquire_link_timer_ms ?? server.enquire_link_timer_ms,
      // Our own binds are kept up however quiet they are.
      inactivityMs: NEVER,
      maxPduBytes: server.max_pdu_bytes,
      ...(this.deps.logLimiter ? { logLimiter: this.deps.logLimiter, logSource: `bind:${this.tenant}:${this.cfg.name}` } : {}),
      ...(this.deps.telemetry ? { answered: (command: string, status: number, ms: number) => this.answered(command, status, ms) } : {}),
    });
    this.session = session;
    session.on('request', (pdu) => this.emit('request', pdu, session));
    session.on('close', (reason) => {
      if (this.session === session) this.session = undefined;
      this.deps.clock.clearTimeout(deadline);
      if (this._state === 'stopped' || this._state === 'standby') return;
      if (this._state === 'bound' && this.deps.clock.now() - this.boundAt >= (this.deps.healthyAfterMs ?? 30_000)) this.backoff.reset();
      this.retry(reason);
    });
    this.setState('binding');
    session
      .request(BIND_COMMAND[this.cfg.bind_type], {
        system_id: this.cfg.system_id,
        password: this.cfg.password,
        system_type: this.cfg.system_type,
        interface_version: 0x34,
        addr_ton: this.cfg.addr_ton,
        addr_npi: this.cfg.addr_npi,
        address_range: this.cfg.address_range,
      })
      .then(
        (resp) => {
          this.deps.clock.clearTimeout(deadline);
          if (this._state !== 'binding' || this.session !== session) return;
          if (resp.command_status !== 0) {
            session.close(`bind refused: ${statusName(resp.command_status)}`);
            return;
          }
          session.markBound();
          this.boundAt = this.deps.clock.now();
          this.setState('bound');
        },
        (err: Error) => {
          this.deps.clock.clearTimeout(deadline);
          session.close(`bind failed: ${err.message}`);
        },
      );
  }

  private retry(reason: string): void {
    if (this._state === 'stopped' || this._state === 'backoff' || this._state === 'standby') return;
    const delay = this.backoff.next();
    this.lastFailureAt = this.deps.clock.wall();
    this.lastError = reason;
    this.setState('backoff', reason, delay);
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      if (this._state !== 'backoff') return;
      this.reconnects++;
      this.connect();
    }, delay);
  }

  /** A request from the upstream answered (metrics). */
  private answered(command: string, status: number, ms: number): void {
    const t = this.deps.telemetry!;
    if (t.active) t.upstreamAnswered(this.tenant, this.cfg.name, command, statusMetric(status), ms);
  }

  /** Our request and what became of it, for the metrics (telemetry.ts timed). */
  private timed(command: string, sending: Promise<WirePdu>): Promise<WirePdu> {
    const t = this.deps.telemetry;
    if (!t?.active) return sending;
    return timed(this.deps.clock, sending, (status, ms) => t.upstreamSent(this.tenant, this.cfg.name, command, status, ms));
  }

  /**
   * Send a request upstream. Rejects BIND_DOWN when not bound (or bound but
   * suspected: a request went unanswered and the probe is out), THROTTLED when
   * the bind's rate would hold it past the response timer, TIMEOUT when the
   * SMSC does not answer in time.
   */
  async request(command: string, fields?: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): Promise<WirePdu> {
    if (this._state !== 'bound' || !this.session) {
      throw new SluiceError('BIND_DOWN', `bind ${this.cfg.name} is ${this._state}${this._state === 'standby' ? ' (waiting for its lease: another replica holds it, or the store is unreachable)' : ''}`);
    }
    if (this.session.suspect) {
      // Not sent: the chain's next step takes it while the enquire_link tells a stalled SMSC from a slow one.
      throw new SluiceError('BIND_DOWN', `bind ${this.cfg.name} is not answering (probing it with enquire_link)`, { sent: false });
    }
    const wait = this.bucket.reserve();
    if (wait > 0) {
      if (wait >= this.responseTimeoutMs) {
        this.bucket.refund();
        throw new SluiceError('THROTTLED', `bind ${this.cfg.name}: max_msg_per_sec ${this.cfg.max_msg_per_sec} would hold this ${wait} ms`);
      }
      await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, wait));
      if (this._state !== 'bound' || !this.session) throw new SluiceError('BIND_DOWN', `bind ${this.cfg.name} went down`);
    }
    return this.timed(command, this.session.request(command, fields, unknownTlvs));
  }
}

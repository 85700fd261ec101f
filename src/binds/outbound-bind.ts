import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import type { OutboundBindConfig, ServerConfig } from '../config/schema';
import { SluiceError } from '../errors';
import { SmppSession, type InboundRequest } from '../sessions/smpp-session';
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock, TimerHandle } from '../util/clock';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import { statusName } from '../wire/status';
import { Backoff, RECONNECT_CAP_MS } from './backoff';

export type BindState = 'stopped' | 'connecting' | 'binding' | 'bound' | 'backoff';

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

  start(): void {
    if (this._state !== 'stopped') return;
    this.connect();
  }

  /** Unbind (if bound) and stop reconnecting. */
  async stop(): Promise<void> {
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.session;
    this.setState('stopped', 'stopped');
    if (s && !s.closed) await s.unbindAndClose('bind stopped');
  }

  /** Close the SMPP session now, without waiting for the SMSC's unbind_resp (a stop that ran out of time). */
  closeNow(reason: string): void {
    if (this.session && !this.session.closed) this.session.close(reason, false);
  }

  private setState(state: BindState, reason?: string, retryInMs?: number): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    const ev: BindStateEvent = { tenant: this.tenant, bind: this.cfg.name, state, previous };
    if (reason !== undefined) ev.reason = reason;
    if (retryInMs !== undefined) ev.retryInMs = retryInMs;
    this.log.info({ state, previous, reason, retryInMs }, 'bind state');
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
    });
    this.session = session;
    session.on('request', (pdu) => this.emit('request', pdu, session));
    session.on('close', (reason) => {
      if (this.session === session) this.session = undefined;
      this.deps.clock.clearTimeout(deadline);
      if (this._state === 'stopped') return;
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
    if (this._state === 'stopped' || this._state === 'backoff') return;
    const delay = this.backoff.next();
    this.setState('backoff', reason, delay);
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      if (this._state === 'backoff') this.connect();
    }, delay);
  }

  /**
   * Send a request upstream. Rejects BIND_DOWN when not bound, THROTTLED when
   * the bind's rate would hold it past the response timer, TIMEOUT when the
   * SMSC does not answer in time.
   */
  async request(command: string, fields?: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): Promise<WirePdu> {
    if (this._state !== 'bound' || !this.session) throw new SluiceError('BIND_DOWN', `bind ${this.cfg.name} is ${this._state}`);
    const wait = this.bucket.reserve();
    if (wait > 0) {
      if (wait >= this.responseTimeoutMs) {
        this.bucket.refund();
        throw new SluiceError('THROTTLED', `bind ${this.cfg.name}: max_msg_per_sec ${this.cfg.max_msg_per_sec} would hold this ${wait} ms`);
      }
      await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, wait));
      if (this._state !== 'bound' || !this.session) throw new SluiceError('BIND_DOWN', `bind ${this.cfg.name} went down`);
    }
    return this.session.request(command, fields, unknownTlvs);
  }
}

import * as net from 'node:net';
import * as tls from 'node:tls';
import { silentLogger, type Logger } from '../log/logger';
import { SmppSession, type InboundRequest } from '../sessions/smpp-session';
import { realClock, type Clock } from '../util/clock';
import { newMessageId } from '../util/ids';
import { STATUS } from '../wire/status';

export interface SimOptions {
  host?: string;
  port?: number;
  /** Accept binds only with these credentials; any when absent. */
  systemId?: string;
  password?: string;
  /** Delay before each submit_sm_resp. */
  latencyMs?: number;
  /** Fraction (0..1) of submits answered ESME_RSUBMITFAIL. */
  errorRate?: number;
  /** Delay before the delivery receipt of a submit that asked for one; negative = never. */
  dlrDelayMs?: number;
  /** stat of the receipts sent. */
  dlrStat?: string;
  window?: number;
  /** Speak SMPP over TLS with this certificate and key (PEM). */
  tls?: { cert: Buffer | string; key: Buffer | string };
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
  /** Refuse a bind of a system_id that is bound already (ESME_RALYBND), as upstreams that allow one bind per account do. */
  oneBindPerSystemId?: boolean;
}

export interface SimStats {
  binds: number;
  /** Binds refused because the system_id was bound already (oneBindPerSystemId). */
  refusedAlreadyBound: number;
  /** Most sessions bound at once, over the simulator's life. */
  peakBound: number;
  submits: number;
  failed: number;
  dlrsSent: number;
  dlrsAcked: number;
}

function yymmddhhmm(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

/**
 * An upstream SMSC for development and benchmarks (`sluice sim`): accepts
 * binds, acks submit_sm with a message id, and sends SMPP 3.4 Appendix B
 * delivery receipts after a delay, with optional latency and failure rate.
 */
export class SmscSimulator {
  readonly stats: SimStats = { binds: 0, refusedAlreadyBound: 0, peakBound: 0, submits: 0, failed: 0, dlrsSent: 0, dlrsAcked: 0 };
  private readonly server: net.Server;
  private readonly sessions = new Set<SmppSession>();
  /** Bound sessions and the system_id each bound as. */
  private readonly bound = new Map<SmppSession, string>();
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(private readonly opts: SimOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.server = opts.tls ? tls.createServer(opts.tls, (s) => this.accept(s)) : net.createServer((s) => this.accept(s));
  }

  /** Connections accepted so far, TLS or plain. */
  accepted = 0;

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Sessions currently connected. */
  get connections(): number {
    return this.sessions.size;
  }

  /** Sessions bound now. */
  get boundSessions(): number {
    return this.bound.size;
  }

  /** Drop every connection at once (tests of reconnect). */
  dropAll(): void {
    for (const s of this.sessions) s.close('simulator dropped the connection', false);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.close('simulator stopping', false);
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    const session = new SmppSession(socket, {
      role: 'server',
      clock: this.clock,
      logger: this.opts.logger ?? silentLogger,
      window: this.opts.window ?? 64,
      peerWindow: 100_000,
      responseTimeoutMs: 30_000,
      enquireLinkMs: 0x7fffffff,
      inactivityMs: 0x7fffffff,
      maxPduBytes: 65_536,
    });
    this.sessions.add(session);
    session.on('close', () => {
      this.sessions.delete(session);
      this.bound.delete(session);
    });
    session.on('request', (pdu) => this.onRequest(session, pdu));
  }

  private onRequest(session: SmppSession, pdu: InboundRequest): void {
    const f = pdu.fields;
    switch (pdu.command) {
      case 'bind_transceiver':
      case 'bind_transmitter':
      case 'bind_receiver': {
        const ok = (this.opts.systemId === undefined || f.system_id === this.opts.systemId) && (this.opts.password === undefined || f.password === this.opts.password);
        const systemId = String(f.system_id ?? '');
        if (ok && this.opts.oneBindPerSystemId && [...this.bound.values()].includes(systemId)) {
          this.stats.refusedAlreadyBound++;
          session.respond(pdu, STATUS.ESME_RALYBND!);
          return;
        }
        session.respond(pdu, ok ? 0 : STATUS.ESME_RBINDFAIL!, ok ? { system_id: 'sim' } : undefined);
        if (ok) {
          session.markBound();
          this.stats.binds++;
          this.bound.set(session, systemId);
          this.stats.peakBound = Math.max(this.stats.peakBound, this.bound.size);
        }
        return;
      }
      case 'submit_sm':
      case 'data_sm':
        this.onSubmit(session, pdu);
        return;
      default:
        session.respond(pdu, STATUS.ESME_RINVCMDID!);
    }
  }

  private onSubmit(session: SmppSession, pdu: InboundRequest): void {
    this.stats.submits++;
    const fail = (this.opts.errorRate ?? 0) > 0 && this.random() < (this.opts.errorRate ?? 0);
    const id = newMessageId();
    const answer = (): void => {
      if (fail) {
        this.stats.failed++;
        session.respond(pdu, STATUS.ESME_RSUBMITFAIL!);
        return;
      }
      session.respond(pdu, 0, { message_id: id });
      const wantsDlr = ((pdu.fields.registered_delivery as number | undefined) ?? 0) & 0x03;
      const delay = this.opts.dlrDelayMs ?? 100;
      if (wantsDlr && delay >= 0) this.clock.setTimeout(() => this.sendDlr(session, pdu, id), delay);
    };
    const latency = this.opts.latencyMs ?? 0;
    if (latency > 0) this.clock.setTimeout(answer, latency);
    else answer();
  }

  private sendDlr(session: SmppSession, pdu: InboundRequest, id: string): void {
    if (session.closed) return;
    const now = yymmddhhmm(new Date());
    const stat = this.opts.dlrStat ?? 'DELIVRD';
    const text = `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${now} done date:${now} stat:${stat} err:000 text:`;
    this.stats.dlrsSent++;
    session
      .request('deliver_sm', {
        source_addr: String(pdu.fields.destination_addr ?? ''),
        destination_addr: String(pdu.fields.source_addr ?? ''),
        esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from(text, 'latin1'),
        receipted_message_id: id,
        message_state: stat === 'DELIVRD' ? 2 : 5,
      })
      .then(
        (r) => {
          if (r.command_status === 0) this.stats.dlrsAcked++;
        },
        () => {},
      );
  }
}

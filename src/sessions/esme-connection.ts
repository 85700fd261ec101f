import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema';
import { INBOUND_DEFAULTS } from '../dispatch/defaults';
import { dispatchRequest, type DispatchContext } from '../dispatch/dispatch';
import type { BindRequest, PolicyHost, SessionInfo } from '../dispatch/policy-host';
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock } from '../util/clock';
import { DEADLINE, withDeadline } from '../util/deadline';
import { ESME_RALYBND, ESME_RBINDFAIL, ESME_RINVBNDSTS, ESME_RINVCMDID, ESME_RINVSYSID, ESME_ROK, ESME_RSYSERR, ESME_RTHROTTLED } from '../wire/status';
import { refusal } from '../pdu/checks';
import type { PeerLog } from '../log/source-limit';
import type { Admission } from './admission';
import { SmppSession, type InboundRequest } from './smpp-session';
import { statusMetric, type Telemetry } from '../telemetry';

/** What an inbound connection needs from the gateway. */
export interface EsmeHost {
  readonly server: ServerConfig;
  readonly clock: Clock;
  readonly policy: PolicyHost;
  /** system_id sent back in bind_transceiver_resp. */
  readonly systemId: string;
  /** The tenant that owns a system_id, with its dispatch context. */
  tenantFor(systemId: string): { id: string; dispatch: DispatchContext } | undefined;
  /**
   * Record, before the bind is answered, that this session is `systemId`'s, where other
   * replicas look it up (docs/design.md, "Replicas"). Never rejects; a store that fails is the host's to log.
   */
  recordSession(tenant: string, sessionId: string, systemId: string): Promise<void>;
  onBound(conn: EsmeConnection): void;
  onUnbound(conn: EsmeConnection): void;
  /** Failed-bind limits (lockouts, delays) of the listener. */
  readonly admission: Admission;
  /** Sessions bound here as `systemId` now. */
  boundCount(systemId: string): number;
  /** Sessions of tenant `tenantId` bound here now, and its `limits.max_sessions`. */
  tenantSessions(tenantId: string): { bound: number; max: number };
  /** Where what the session answers is counted (metrics); absent: not counted. */
  readonly telemetry?: Telemetry;
}

type ConnState = 'open' | 'binding' | 'bound' | 'closed';

/** A peer's string as it may go in a log line: at most 32 characters (SMPP's system_id is 16), control characters escaped. */
function loggable(v: string): string {
  const cut = v.length > 32 ? `${v.slice(0, 32)}…(${v.length} chars)` : v;
  return cut.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Longest a bind's answer waits for its session to be recorded in the store. */
const RECORD_WAIT_MS = 1000;

/**
 * One ESME connected to our listener: bind_transceiver only, authorised by
 * the tenant's policy; then message PDUs are throttled and dispatched.
 */
export class EsmeConnection {
  readonly session: SmppSession;
  private state: ConnState = 'open';
  private readonly bucket: TokenBucket;
  private readonly log: Logger;
  /** Lines about what the peer sent before it bound, limited per source address. */
  private readonly peerLog: PeerLog;
  tenant: string | undefined;
  systemId = '';
  /** The peer's address (no port): what connection caps and bind limits count by. */
  readonly ip: string;
  private dispatch: DispatchContext | undefined;
  private failedBinds = 0;

  constructor(socket: Socket, private readonly host: EsmeHost, logger: Logger) {
    this.ip = socket.remoteAddress ?? '?';
    const s = host.server;
    this.session = new SmppSession(socket, {
      role: 'server',
      clock: host.clock,
      logger,
      window: s.window,
      peerWindow: s.window,
      responseTimeoutMs: s.response_timer_ms,
      enquireLinkMs: s.enquire_link_timer_ms,
      inactivityMs: s.inactivity_timer_ms,
      frameTimeoutMs: s.frame_timeout_ms,
      sessionInitMs: s.session_init_timer_ms,
      maxPduBytes: s.max_pdu_bytes,
      logLimiter: host.admission.logs,
      logSource: this.ip,
      // Counted once the session belongs to a tenant (a refused bind is counted by admission).
      ...(host.telemetry ? { answered: (command: string, status: number, ms: number) => this.counted(command, status, ms) } : {}),
    });
    this.log = logger.child({ session: this.session.id });
    this.peerLog = host.admission.logs.for(this.log, this.ip);
    this.bucket = new TokenBucket(s.max_msg_per_sec, host.clock);
    this.session.on('request', (pdu) => this.onRequest(pdu));
    this.session.on('close', (reason) => {
      const wasBound = this.state === 'bound';
      this.state = 'closed';
      // A connection that never bound is the peer's to repeat as often as it likes.
      (wasBound ? this.log : this.peerLog).info({ reason, tenant: this.tenant, system_id: this.systemId }, 'esme session closed');
      if (wasBound) host.onUnbound(this);
    });
  }

  get id(): string {
    return this.session.id;
  }

  get bound(): boolean {
    return this.state === 'bound';
  }

  private infoCache: SessionInfo | undefined;

  /** The session as policies see it (fixed once bound). */
  info(): SessionInfo {
    return (this.infoCache ??= Object.freeze({ kind: 'esme', sessionId: this.session.id, systemId: this.systemId, clientAddr: this.session.remoteAddress }));
  }

  private onRequest(req: InboundRequest): void {
    const cmd = req.command;
    if (cmd === 'bind_transceiver' || cmd === 'bind_transmitter' || cmd === 'bind_receiver') {
      if (this.state !== 'open') {
        this.session.respond(req, ESME_RALYBND);
      } else if (cmd !== 'bind_transceiver') {
        // Transceiver only: one bidirectional session per ESME.
        this.session.respond(req, ESME_RINVSYSID);
      } else {
        void this.onBind(req);
      }
      return;
    }
    const fallback = INBOUND_DEFAULTS[cmd];
    if (!fallback) {
      // Valid SMPP, but not something an ESME sends to an SMSC.
      this.session.nack(req, ESME_RINVCMDID);
      return;
    }
    if (this.state !== 'bound' || !this.dispatch) {
      this.session.respond(req, ESME_RINVBNDSTS);
      return;
    }
    const bad = refusal(cmd, req.fields);
    if (bad !== undefined) {
      this.session.respond(req, bad);
      return;
    }
    const ctx = this.dispatch;
    if (this.bucket.unlimited) {
      dispatchRequest(ctx, this.session, req, this.info(), fallback);
      return;
    }
    if (this.host.server.throttle_action === 'reject') {
      if (this.bucket.tryTake()) dispatchRequest(ctx, this.session, req, this.info(), fallback);
      else {
        ctx.counters.throttled++;
        this.session.respond(req, ESME_RTHROTTLED);
      }
      return;
    }
    const wait = this.bucket.reserve();
    if (wait === 0) dispatchRequest(ctx, this.session, req, this.info(), fallback);
    else this.host.clock.setTimeout(() => dispatchRequest(ctx, this.session, req, this.info(), fallback), wait);
  }

  /** A request answered, for the metrics: once the session belongs to a tenant (refused binds are admission's to count). */
  private counted(command: string, status: number, ms: number): void {
    const t = this.host.telemetry;
    if (this.tenant !== undefined && t?.active) t.esmeAnswered(this.tenant, command, statusMetric(status), ms);
  }

  /** Answer a refused bind after the delay the failed-bind limits set; close the connection after a few. */
  private refuseBind(req: InboundRequest, status: number, systemId: string): void {
    const delay = this.host.admission.failed(this.ip, systemId);
    const last = ++this.failedBinds >= this.host.server.admission.bind_failures_per_connection;
    this.state = 'binding';
    this.host.clock.setTimeout(() => {
      if (this.session.closed) return;
      this.state = 'open';
      this.session.respond(req, status);
      if (last) this.session.close('too many failed binds on this connection');
    }, delay);
  }

  private async onBind(req: InboundRequest): Promise<void> {
    const f = req.fields;
    const systemId = String(f.system_id ?? '');
    if (this.host.admission.lockedOut(this.ip, systemId)) {
      this.refuseBind(req, ESME_RBINDFAIL, systemId);
      return;
    }
    const tenant = this.host.tenantFor(systemId);
    if (!tenant) {
      // What an unauthenticated peer sent is logged cut short (a 16 KB system_id once made 162 MB of log in 10 s).
      this.peerLog.info({ system_id: loggable(systemId), client: this.session.remoteAddress }, 'bind refused: system_id belongs to no tenant');
      this.refuseBind(req, ESME_RINVSYSID, systemId);
      return;
    }
    if (this.host.boundCount(systemId) >= this.host.server.admission.max_sessions_per_system_id) {
      this.peerLog.info({ system_id: systemId, client: this.session.remoteAddress, max: this.host.server.admission.max_sessions_per_system_id }, 'bind refused: too many sessions of this system_id');
      this.session.respond(req, ESME_RBINDFAIL);
      return;
    }
    const sessions = this.host.tenantSessions(tenant.id);
    if (sessions.bound >= sessions.max) {
      this.peerLog.info({ system_id: systemId, tenant: tenant.id, client: this.session.remoteAddress, max: sessions.max }, 'bind refused: the tenant has max_sessions bound');
      this.session.respond(req, ESME_RBINDFAIL);
      return;
    }
    this.state = 'binding';
    const bindReq: BindRequest = {
      sessionId: this.session.id,
      systemId,
      password: String(f.password ?? ''),
      systemType: String(f.system_type ?? ''),
      interfaceVersion: Number(f.interface_version ?? 0),
      clientAddr: this.session.remoteAddress,
    };
    let status: number;
    let reason: string | undefined;
    try {
      const decision = await withDeadline(this.host.policy.bind(tenant.id, bindReq), tenant.dispatch.deadlineMs, this.host.clock);
      if (decision === DEADLINE) {
        tenant.dispatch.counters.deadlines++;
        status = ESME_RSYSERR;
        reason = 'bind handler missed its deadline';
      } else if (decision.accept) {
        status = ESME_ROK;
      } else {
        status = decision.status;
        reason = decision.reason;
      }
    } catch (err) {
      tenant.dispatch.counters.errors++;
      status = ESME_RSYSERR;
      reason = `bind handler failed: ${(err as Error).message}`;
    }
    if (this.session.closed) return;
    if (status !== ESME_ROK) {
      this.peerLog.info({ tenant: tenant.id, system_id: systemId, client: this.session.remoteAddress, status, reason }, 'bind refused');
      // A policy that failed (ESME_RSYSERR) is not the peer guessing.
      if (status === ESME_RSYSERR) {
        this.state = 'open';
        this.session.respond(req, status);
      } else this.refuseBind(req, status, systemId);
      return;
    }
    // Known to every replica before the ESME can submit anything a receipt would answer;
    // a store slower than a second does not hold the bind up (the entry lands later).
    await withDeadline(this.host.recordSession(tenant.id, this.session.id, systemId), RECORD_WAIT_MS, this.host.clock);
    if (this.session.closed) return;
    this.state = 'bound';
    this.tenant = tenant.id;
    this.systemId = systemId;
    // The ESME gets its answer before the bookkeeping below: nothing it sends can arrive before that is done.
    this.session.respond(req, ESME_ROK, { system_id: this.host.systemId });
    this.session.flushNow();
    this.dispatch = { ...tenant.dispatch, logger: tenant.dispatch.logger.child({ session: this.session.id }) };
    this.session.markBound();
    this.log.info({ tenant: tenant.id, system_id: systemId, client: this.session.remoteAddress }, 'esme bound');
    this.host.onBound(this);
  }
}

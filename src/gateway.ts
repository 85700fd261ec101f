// One file on purpose: the gateway wires the listeners, tenants, binds and send paths together; each part it wires
// lives in its own folder.
import { isDeepStrictEqual } from 'node:util';
import { channel } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import { OutboundBind, type BindLease, type BindState } from './binds/outbound-bind';
import { memoryLeases, type LeaseStore } from './cache/backend';
import { memoryForward } from './cache/forward-memory';
import { ForwardStore } from './cache/forward-store';
import { memoryHolds, type HoldStore } from './cache/hold';
import { Forwarder } from './forward/forwarder';
import type { ForwardResult } from './forward/messages';
import type { EsmeDelivery } from './forward/outbox';
import type { OutboundBindConfig, ServerConfig, SluiceConfig, TenantConfig } from './config/schema';
import { OUTBOUND_DEFAULTS, TO_COMMANDS, VIA_COMMANDS } from './dispatch/defaults';
import { dispatchRequest, newCounters, type DispatchContext, type DispatchCounters } from './dispatch/dispatch';
import type { PolicyHost, SessionInfo } from './dispatch/policy-host';
import { isSluiceError, SluiceError } from './errors';
import { RepeatedWarnings } from './log/repeats';
import { isDlrEsmClass } from './pdu/dlr';
import type { ForwardCall } from './sandbox-protocol/host-calls';
import { toWireFields } from './pdu/fields';
import { EsmeConnection, type EsmeHost } from './sessions/esme-connection';
import { Admission } from './sessions/admission';
import { Holds } from './sessions/holds';
import type { InboundRequest, SmppSession } from './sessions/smpp-session';
import { Telemetry, timed } from './telemetry';
import { realClock, type Clock, type TimerHandle } from './util/clock';
import { DeadlineQueue } from './util/deadline';
import { replicaName } from './util/ids';
import { decodePdu, type UnknownTlv, type WirePdu } from './wire/codec';
import { ESME_RINVCMDID, ESME_ROK, ESME_RSYSERR, statusName } from './wire/status';

/** How long stop() waits for ESMEs and SMSCs to answer their unbind before closing the connections anyway. */
export const STOP_GRACE_MS = 5000;
/** How long stop() lets ESME PDUs in flight be answered before it unbinds them. */
export const STOP_DRAIN_MS = 4000;

/** Published when an ESME session binds or ends. */
export const esmeSessionChannel = channel('sluice:esme:session');

/** What a send helper resolves to (sandbox/sluice.d.ts). */
export interface SendResult {
  ok: boolean;
  /** Not sent yet: held in the store for the next session of its system_id (docs/design.md, "Replicas"). */
  held?: true;
  /** Status name (`ESME_ROK`, `ESME_RSUBMITFAIL`, …). */
  command_status: string;
  message_id?: string;
  message_state?: number;
  final_date?: string;
  error_code?: number;
}

export interface BindView {
  name: string;
  state: BindState;
  host: string;
  port: number;
  sessionId?: string;
}

interface TenantRuntime {
  readonly id: string;
  config: TenantConfig;
  readonly sessions: Map<string, EsmeConnection>;
  readonly binds: Map<string, OutboundBind>;
  readonly dispatch: DispatchContext;
  readonly counters: DispatchCounters;
}

export interface GatewayOptions {
  config: SluiceConfig;
  logger: Logger;
  policy: PolicyHost;
  clock?: Clock;
  /** system_id in our bind_transceiver_resp. */
  systemId?: string;
  /** First reconnect delay of outbound binds (tests shorten it). */
  reconnectBaseMs?: number;
  /** Where `single: true` binds take their leases: the shared cache store. Default: this process only. */
  leases?: LeaseStore;
  /** This replica's name in the lease store. Default: host, pid and a random suffix. */
  replica?: string;
  /** Where messages for ESMEs not bound here are held: the shared cache store. Default: this process only. */
  holds?: HoldStore;
  /** How often the held messages of the ESMEs bound here are looked for (default 1000 ms). */
  holdPollMs?: number;
  /** The store-and-forward journal: the shared cache store. Default: this process only. */
  forward?: ForwardStore;
}

/**
 * The trusted core in one object: the inbound listeners, every tenant's
 * ESME sessions and supervised outbound binds, and the send paths a policy
 * host calls on a tenant's behalf — each limited to that tenant's own binds
 * and sessions.
 */
export class Gateway implements EsmeHost {
  readonly server: ServerConfig;
  readonly clock: Clock;
  readonly policy: PolicyHost;
  readonly systemId: string;
  /** This replica's name in the lease store. */
  readonly replica: string;
  private readonly lease: BindLease;
  private readonly holds: Holds;
  /** Routing chains, the durable queue and receipt correlation (`smpp.forward`). */
  readonly forwarder: Forwarder;
  /** Connection caps and failed-bind limits of the listeners. */
  readonly admission: Admission;
  /** What the core tells the metrics (src/admin/metrics.ts attaches to it). */
  readonly telemetry = new Telemetry();
  private lastRefusalLog = 0;
  private readonly log: Logger;
  private readonly tenants = new Map<string, TenantRuntime>();
  private readonly bySystemId = new Map<string, TenantRuntime>();
  private readonly servers: net.Server[] = [];

  /** Every listener it opened is listening (none opened yet: false). */
  get listening(): boolean {
    return this.servers.length > 0 && this.servers.every((s) => s.listening);
  }
  private readonly connections = new Set<EsmeConnection>();
  private readonly opts: GatewayOptions;
  private started = false;

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.server = opts.config.server;
    this.clock = opts.clock ?? realClock;
    this.policy = opts.policy;
    this.systemId = opts.systemId ?? 'sluice';
    this.log = opts.logger;
    this.replica = opts.replica ?? replicaName();
    this.lease = { store: opts.leases ?? memoryLeases(() => this.clock.wall()), owner: this.replica, ttlMs: opts.config.cache.lease_ttl_ms };
    this.holds = new Holds({
      store: opts.holds ?? memoryHolds(() => this.clock.wall()),
      clock: this.clock,
      logger: this.log.child({ component: 'holds' }),
      ttlMs: this.server.hold_ttl_ms,
      claimMs: this.server.response_timer_ms + 1000,
      pollMs: opts.holdPollMs ?? 1000,
      bound: () => this.connections,
      sessionFor: (tenant, systemId) => {
        const rt = this.tenants.get(tenant);
        return rt && this.boundAs(rt, systemId);
      },
      send: (conn, command, wire) => this.sendNow(conn, command, wire),
    });
    this.admission = new Admission(this.server.admission, this.clock, this.log.child({ component: 'admission' }));
    this.forwarder = new Forwarder(
      {
        clock: this.clock,
        logger: this.log.child({ component: 'forward' }),
        tenant: (id) => this.tenants.get(id),
        tenantIds: () => [...this.tenants.keys()],
        deliverToEsme: (tenant, systemId, sessionId, command, fields, tlvs) => this.deliverToEsme(tenant, systemId, sessionId, command, fields, tlvs),
        replica: { owner: this.replica, leases: this.lease.store },
        telemetry: this.telemetry,
      },
      opts.forward ?? new ForwardStore(memoryForward()),
    );
    for (const t of opts.config.tenants) this.addTenant(t);
  }

  private addTenant(config: TenantConfig): void {
    const logger = this.log.child({ tenant: config.id });
    const counters = newCounters();
    const rt: TenantRuntime = {
      id: config.id,
      config,
      sessions: new Map(),
      binds: new Map(),
      counters,
      dispatch: {
        tenant: config.id,
        policy: this.policy,
        clock: this.clock,
        logger,
        deadlineMs: config.limits.handler_deadline_ms,
        deadlines: new DeadlineQueue(config.limits.handler_deadline_ms, this.clock),
        counters,
        answered: (id) => this.forwarder.answered(config.id, id),
        rescue: (req, info) => (info.bind === undefined ? Promise.resolve(false) : this.forwarder.rescueReceipt(config.id, info.bind, req.command, req.fields)),
        repeats: new RepeatedWarnings(this.clock),
      },
    };
    this.tenants.set(config.id, rt);
    for (const sid of config.system_ids) this.bySystemId.set(sid, rt);
    for (const b of config.binds) {
      this.addBind(rt, b);
      // smpp.forward waits for the upstream within the ESME's handler deadline: a longer response
      // timer lets the deadline answer first (ESME_RSYSERR) while the message may still be taken.
      const timer = b.response_timer_ms ?? this.server.response_timer_ms;
      if (timer >= config.limits.handler_deadline_ms) {
        logger.warn({ bind: b.name, response_timer_ms: timer, handler_deadline_ms: config.limits.handler_deadline_ms }, "a bind's response_timer_ms is not below the tenant's handler_deadline_ms: a slow upstream is answered by the deadline, not by the routing chain");
      }
    }
  }

  private addBind(rt: TenantRuntime, b: OutboundBindConfig): OutboundBind {
    const bind = new OutboundBind(rt.id, b, {
      clock: this.clock,
      logger: this.log,
      server: this.server,
      reconnectBaseMs: this.opts.reconnectBaseMs,
      logLimiter: this.admission.logs,
      telemetry: this.telemetry,
      ...(b.single ? { lease: this.lease } : {}),
    });
    // One frozen view per SMPP session of the bind (the channel to a sandbox serialises each view once).
    let info: SessionInfo | undefined;
    const bindInfo = (sessionId: string): SessionInfo =>
      info?.sessionId === sessionId ? info : (info = Object.freeze({ kind: 'bind', sessionId, systemId: b.system_id, clientAddr: `${b.host}:${b.port}`, bind: b.name }));
    bind.on('request', (pdu, session) => {
      const fallback = OUTBOUND_DEFAULTS[pdu.command];
      if (!fallback) {
        session.nack(pdu, ESME_RINVCMDID);
        return;
      }
      if (rt.config.receipts.by === 'core' && (pdu.command === 'deliver_sm' || pdu.command === 'data_sm') && isDlrEsmClass(Number(pdu.fields.esm_class ?? 0))) {
        this.receiptByCore(rt, session, pdu, bindInfo(session.id));
        return;
      }
      dispatchRequest(rt.dispatch, session, pdu, bindInfo(session.id), fallback);
    });
    bind.on('state', (ev) => {
      if (ev.state === 'bound') {
        this.policy.session(rt.id, 'bound', bindInfo(bind.sessionId ?? ''));
        this.forwarder.bindUp(rt.id);
      }
      else if (ev.previous === 'bound') this.policy.session(rt.id, 'unbound', bindInfo(bind.sessionId ?? ''));
    });
    rt.binds.set(b.name, bind);
    return bind;
  }

  /**
   * A config reload's new tenant list, applied in one step: new tenants are
   * added (their binds started), removed ones lose their ESME sessions and
   * binds, changed ones take their new limits, system_ids and binds (a bind
   * whose settings changed is stopped and started anew; the others, and
   * every session, carry on). ESME sessions whose system_id no longer
   * belongs to their tenant are unbound. Tenants whose config is unchanged
   * are not touched. Returns at once: sessions and binds that go are
   * unbound in the background (an ESME slow to answer its unbind does not
   * hold up the reload).
   */
  applyTenants(next: readonly TenantConfig[]): { added: string[]; removed: string[]; changed: string[] } {
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    const stopping: Promise<void>[] = [];
    const ids = new Set(next.map((t) => t.id));
    for (const rt of [...this.tenants.values()]) {
      if (ids.has(rt.id)) continue;
      removed.push(rt.id);
      this.tenants.delete(rt.id);
      for (const conn of rt.sessions.values()) stopping.push(conn.session.unbindAndClose('tenant removed by a config reload'));
      for (const b of rt.binds.values()) stopping.push(b.stop());
    }
    for (const cfg of next) {
      const rt = this.tenants.get(cfg.id);
      if (!rt) {
        added.push(cfg.id);
        this.addTenant(cfg);
        if (this.started) for (const b of this.tenants.get(cfg.id)!.binds.values()) b.start();
        continue;
      }
      if (isDeepStrictEqual(rt.config, cfg)) continue;
      changed.push(cfg.id);
      const before = rt.config;
      rt.config = cfg;
      // Sessions keep their dispatch context: it changes in place.
      if (cfg.limits.handler_deadline_ms !== before.limits.handler_deadline_ms) {
        rt.dispatch.deadlineMs = cfg.limits.handler_deadline_ms;
        // PDUs in flight keep the old queue's timer; new ones get the new length.
        rt.dispatch.deadlines = new DeadlineQueue(cfg.limits.handler_deadline_ms, this.clock);
      }
      const wanted = new Map(cfg.binds.map((b) => [b.name, b]));
      for (const [name, bind] of [...rt.binds]) {
        const b = wanted.get(name);
        if (b && isDeepStrictEqual(b, bind.cfg)) continue;
        rt.binds.delete(name);
        stopping.push(bind.stop());
      }
      for (const b of cfg.binds) {
        if (rt.binds.has(b.name)) continue;
        const bind = this.addBind(rt, b);
        if (this.started) bind.start();
      }
    }
    this.bySystemId.clear();
    for (const rt of this.tenants.values()) for (const sid of rt.config.system_ids) this.bySystemId.set(sid, rt);
    for (const rt of this.tenants.values()) {
      for (const conn of rt.sessions.values()) {
        if (this.bySystemId.get(conn.systemId) !== rt) stopping.push(conn.session.unbindAndClose('system_id removed from its tenant by a config reload'));
      }
    }
    void Promise.allSettled(stopping);
    return { added, removed, changed };
  }

  // ---- EsmeHost -------------------------------------------------------------

  tenantFor(systemId: string): { id: string; dispatch: DispatchContext } | undefined {
    return this.bySystemId.get(systemId);
  }

  recordSession(tenant: string, sessionId: string, systemId: string): Promise<void> {
    return this.holds.record(tenant, sessionId, systemId);
  }

  onBound(conn: EsmeConnection): void {
    const rt = conn.tenant ? this.tenants.get(conn.tenant) : undefined;
    if (!rt) return;
    rt.sessions.set(conn.id, conn);
    if (esmeSessionChannel.hasSubscribers) esmeSessionChannel.publish({ tenant: rt.id, sessionId: conn.id, event: 'bound' });
    this.policy.session(rt.id, 'bound', conn.info());
    this.holds.onBound(conn);
  }

  onUnbound(conn: EsmeConnection): void {
    const rt = conn.tenant ? this.tenants.get(conn.tenant) : undefined;
    if (!rt) return;
    rt.sessions.delete(conn.id);
    if (esmeSessionChannel.hasSubscribers) esmeSessionChannel.publish({ tenant: rt.id, sessionId: conn.id, event: 'unbound' });
    this.policy.session(rt.id, 'unbound', conn.info());
  }

  // ---- lifecycle --------------------------------------------------------------

  /** Open the listeners and start every outbound bind. Resolves with the bound ports. */
  async start(): Promise<{ port: number; tlsPort?: number }> {
    const port = await this.listen(net.createServer(), this.server.bind_address, this.server.port);
    const result: { port: number; tlsPort?: number } = { port };
    const t = this.server.tls;
    if (t) {
      const secure = tls.createServer({
        cert: readFileSync(t.cert_path),
        key: readFileSync(t.key_path),
        ca: t.ca_path ? readFileSync(t.ca_path) : undefined,
        requestCert: t.request_cert,
        rejectUnauthorized: t.request_cert,
      });
      result.tlsPort = await this.listen(secure, t.bind_address ?? this.server.bind_address, t.port, 'secureConnection');
    }
    for (const rt of this.tenants.values()) for (const b of rt.binds.values()) b.start();
    this.holds.start();
    this.forwarder.start();
    this.started = true;
    return result;
  }

  private listen(srv: net.Server, host: string, port: number, event: 'connection' | 'secureConnection' = 'connection'): Promise<number> {
    srv.on(event, (socket: net.Socket) => this.accept(socket));
    srv.on('error', (err) => this.log.error({ err: err.message }, 'listener error'));
    if (srv instanceof tls.Server) {
      srv.on('tlsClientError', (err, socket) => {
        const ip = socket.remoteAddress ?? '?';
        this.admission.logs.for(this.log, ip).info({ err: err.message, client: ip }, 'TLS handshake failed');
      });
    }
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        const addr = srv.address() as net.AddressInfo;
        this.log.info({ address: addr.address, port: addr.port, tls: srv instanceof tls.Server }, 'listening');
        resolve(addr.port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const ip = socket.remoteAddress ?? '?';
    if (!this.admission.connect(ip)) {
      // Over a cap: closed before a session exists; counted, logged at most once a minute.
      const now = this.clock.now();
      if (now - this.lastRefusalLog >= 60_000) {
        this.lastRefusalLog = now;
        this.log.warn({ client: ip, connections: this.admission.connections, ...this.server.admission }, 'connection refused: over a connection cap');
      }
      socket.destroy();
      return;
    }
    const conn = new EsmeConnection(socket, this, this.log);
    this.connections.add(conn);
    conn.session.once('close', () => {
      this.connections.delete(conn);
      this.admission.closed(ip);
    });
  }

  tenantSessions(tenantId: string): { bound: number; max: number } {
    const t = this.tenants.get(tenantId);
    let bound = 0;
    for (const c of t?.sessions.values() ?? []) if (c.bound) bound++;
    return { bound, max: t?.config.limits.max_sessions ?? 0 };
  }

  boundCount(systemId: string): number {
    let n = 0;
    for (const c of this.bySystemId.get(systemId)?.sessions.values() ?? []) if (c.bound && c.systemId === systemId) n++;
    return n;
  }

  /** Close the listeners, unbind every ESME and outbound bind. */
  async stop(): Promise<void> {
    this.holds.stop();
    this.forwarder.stop();
    // No new connections from here; a listener's close completes only once its
    // connections have ended, so the sessions are unbound alongside, not after.
    const listeners = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.servers.length = 0;
    // What ESMEs have in flight is answered first, while the upstream binds are still up
    // (for at most STOP_DRAIN_MS; new PDUs meanwhile get ESME_RTHROTTLED); then everything unbinds.
    await Promise.allSettled([...this.connections].map((c) => c.session.drain(STOP_DRAIN_MS)));
    const closing: Promise<void>[] = [];
    for (const c of this.connections) closing.push(c.session.unbindAndClose('gateway stopping'));
    for (const rt of this.tenants.values()) for (const b of rt.binds.values()) closing.push(b.stop());
    const all = Promise.allSettled([...closing, ...listeners]);
    // A peer that never answers its unbind would hold the stop for response_timer_ms.
    let timer: TimerHandle | undefined;
    const late = new Promise<boolean>((resolve) => (timer = this.clock.setTimeout(() => resolve(true), STOP_GRACE_MS)));
    if (await Promise.race([all.then(() => false), late])) {
      this.log.warn({ sessions: this.connections.size }, `peers did not answer their unbind within ${STOP_GRACE_MS} ms; closing their connections`);
      for (const c of this.connections) c.session.close('gateway stopping: no unbind_resp in time', false);
      for (const rt of this.tenants.values()) for (const b of rt.binds.values()) b.closeNow('gateway stopping: no unbind_resp in time');
      await all;
    }
    this.clock.clearTimeout(timer);
  }

  // ---- send paths for policies ----------------------------------------------------

  private tenant(tenant: string): TenantRuntime {
    const rt = this.tenants.get(tenant);
    if (!rt) throw new SluiceError('UNKNOWN_TENANT');
    return rt;
  }

  /** `submitVia`, `dataVia`, …: a request on one of this tenant's outbound binds. */
  async sendVia(tenant: string, bindName: string, command: string, fields: Record<string, unknown>): Promise<SendResult> {
    if (!VIA_COMMANDS.has(command)) throw new SluiceError('INVALID_FIELD', `${command} cannot be sent to an SMSC`);
    const bind = this.tenant(tenant).binds.get(bindName);
    // Another tenant's bind is indistinguishable from one that does not exist.
    if (!bind) throw new SluiceError('UNKNOWN_BIND', `no bind named "${bindName}"`);
    const wire = toWireFields(command, fields);
    return toResult(await bind.request(command, wire.fields, wire.unknownTlvs));
  }

  /** `deliverTo`, `dataTo`, `alertTo`: a request to one of this tenant's bound ESMEs. */
  async sendTo(tenant: string, sessionId: string, command: string, fields: Record<string, unknown>): Promise<SendResult> {
    if (!TO_COMMANDS.has(command)) throw new SluiceError('INVALID_FIELD', `${command} cannot be sent to an ESME`);
    const rt = this.tenant(tenant);
    const wire = toWireFields(command, fields);
    let conn = rt.sessions.get(sessionId);
    if (!conn || !conn.bound) {
      // Not bound here. A session of this tenant's that the directory knows (bound on another
      // replica, or unbound a moment ago) gets it through another session of its system_id
      // bound here, else through the store; any other id is unknown, as another tenant's is.
      const systemId = await this.holds.systemIdOf(tenant, sessionId);
      if (systemId === undefined || !rt.config.system_ids.includes(systemId)) throw new SluiceError('UNKNOWN_SESSION', `no bound session "${sessionId}"`);
      conn = this.boundAs(rt, systemId);
      if (!conn) {
        await this.holds.hold(tenant, systemId, command, fields);
        return { ok: true, command_status: 'ESME_ROK', held: true };
      }
    }
    const sent = await this.sendOrHold(conn, command, wire);
    if (sent) return sent;
    await this.holds.hold(tenant, conn.systemId, command, fields);
    return { ok: true, command_status: 'ESME_ROK', held: true };
  }

  /**
   * A request to a bound ESME session, or undefined when the session cannot
   * take it and it is to be held instead. A session with a window's worth
   * unanswered is not waited on, so one ESME that stops answering holds at
   * most a window of its tenant's host calls (`max_pending` is the tenant's,
   * shared by all its sessions). One that leaves a request unanswered for
   * `response_timer_ms` is closed; the message may have reached it, so what
   * is held is delivered at least once.
   */
  private async sendOrHold(conn: EsmeConnection, command: string, wire: ReturnType<typeof toWireFields>): Promise<SendResult | undefined> {
    if (conn.session.backlog >= this.server.window) return undefined;
    try {
      return await this.sendNow(conn, command, wire);
    } catch (err) {
      if (!isSluiceError(err, 'TIMEOUT') && !isSluiceError(err, 'SESSION_CLOSED')) throw err;
      if (isSluiceError(err, 'TIMEOUT') && !conn.session.closed) conn.session.close(`no answer to ${command} within response_timer_ms`);
      return undefined;
    }
  }

  /**
   * A receipt of a tenant with `receipts.by: core`: correlated from the
   * journal as `smpp.forward` would, no sandbox round trip. The upstream is
   * answered ESME_ROK once the receipt is durable, ESME_RSYSERR (it sends it
   * again) when the store cannot take it.
   */
  private receiptByCore(rt: TenantRuntime, session: SmppSession, pdu: InboundRequest, info: SessionInfo): void {
    rt.counters.pdus++;
    this.forwarder.forward(rt.id, { command: pdu.command, fields: pdu.fields, session: info }).then(
      () => session.respond(pdu, ESME_ROK),
      (err: Error) => {
        rt.counters.errors++;
        this.log.warn({ tenant: rt.id, command: pdu.command, err: err.message }, 'a delivery receipt could not be taken, answering ESME_RSYSERR');
        session.respond(pdu, ESME_RSYSERR);
      },
    );
  }

  /**
   * `smpp.forward(pdu, opts)`: the PDU's own frame (or, from the test
   * harness, its fields), with the policy's overrides, handed to the
   * forwarder for this tenant.
   */
  async forward(tenant: string, a: ForwardCall): Promise<ForwardResult> {
    const command = a.command;
    let fields: Record<string, unknown>;
    let unknownTlvs: UnknownTlv[] | undefined;
    if (a.frame instanceof Uint8Array) {
      const d = decodePdu(Buffer.from(a.frame.buffer, a.frame.byteOffset, a.frame.byteLength));
      if (!d.ok || d.pdu.command !== command) throw new SluiceError('INVALID_FIELD', 'smpp.forward: the PDU could not be read');
      fields = d.pdu.fields;
      unknownTlvs = d.pdu.unknownTlvs;
    } else {
      const w = toWireFields(command, a.fields ?? {});
      fields = w.fields;
      unknownTlvs = w.unknownTlvs;
    }
    if (a.overrides !== undefined) {
      const w = toWireFields(command, a.overrides);
      fields = { ...fields, ...w.fields };
      if (w.unknownTlvs) unknownTlvs = [...(unknownTlvs ?? []), ...w.unknownTlvs];
    }
    const s = (a.session ?? {}) as Record<string, unknown>;
    const session: SessionInfo = { kind: s.kind === 'bind' ? 'bind' : 'esme', sessionId: String(s.sessionId ?? ''), systemId: String(s.systemId ?? ''), clientAddr: String(s.clientAddr ?? '') };
    if (typeof s.bind === 'string') session.bind = s.bind;
    const req: Parameters<Forwarder['forward']>[1] = { command, fields, session };
    if (unknownTlvs) req.unknownTlvs = unknownTlvs;
    if (a.chain !== undefined) req.chain = a.chain;
    if (a.rule !== undefined) req.rule = a.rule;
    if (a.to !== undefined) req.to = a.to;
    return this.forwarder.forward(tenant, req);
  }

  /**
   * A message for an ESME of `systemId`: to `sessionId` if it is bound here,
   * else to another session of that system_id bound here, else held in the
   * store for the next one on any replica. A session that does not answer
   * (gone, or timed out) leaves the message held, not lost.
   */
  private async deliverToEsme(tenant: string, systemId: string, sessionId: string | undefined, command: string, fields: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): Promise<EsmeDelivery> {
    const rt = this.tenant(tenant);
    const direct = sessionId === undefined ? undefined : rt.sessions.get(sessionId);
    const conn = direct?.bound ? direct : this.boundAs(rt, systemId);
    const r = conn && (await this.sendOrHold(conn, command, { fields, ...(unknownTlvs ? { unknownTlvs: [...unknownTlvs] } : {}) }));
    if (r) return r.ok ? { kind: 'delivered' } : { kind: 'refused', status: r.command_status };
    await this.holds.hold(tenant, systemId, command, fields);
    return { kind: 'held' };
  }

  /** A request to an ESME bound here; alert_notification has no response. */
  private async sendNow(conn: EsmeConnection, command: string, wire: ReturnType<typeof toWireFields>): Promise<SendResult> {
    if (command === 'alert_notification') {
      conn.session.notify(command, wire.fields, wire.unknownTlvs);
      return { ok: true, command_status: 'ESME_ROK' };
    }
    const sending = conn.session.request(command, wire.fields, wire.unknownTlvs);
    const tenant = conn.tenant;
    if (!this.telemetry.active || !tenant) return toResult(await sending);
    return toResult(await timed(this.clock, sending, (status, ms) => this.telemetry.esmeSent(tenant, command, status, ms)));
  }

  /** Our requests this tenant's bound ESMEs have not answered yet (their windows in use), summed. */
  esmeWindowInUse(tenant: string): number {
    let n = 0;
    for (const c of this.tenants.get(tenant)?.sessions.values() ?? []) n += c.session.outstanding;
    return n;
  }

  /** A session of this tenant bound here as `systemId`, if there is one. */
  private boundAs(rt: TenantRuntime, systemId: string): EsmeConnection | undefined {
    for (const c of rt.sessions.values()) if (c.bound && c.systemId === systemId) return c;
    return undefined;
  }

  /** This tenant's bound ESME sessions. */
  sessions(tenant: string): SessionInfo[] {
    return [...this.tenant(tenant).sessions.values()].map((c) => c.info());
  }

  /** This tenant's outbound binds and their state. */
  binds(tenant: string): BindView[] {
    return [...this.tenant(tenant).binds.values()].map((b) => {
      const v: BindView = { name: b.cfg.name, state: b.state, host: b.cfg.host, port: b.cfg.port };
      if (b.sessionId) v.sessionId = b.sessionId;
      return v;
    });
  }

  /** The outbound bind object itself (admin stop/start, tests). */
  bind(tenant: string, name: string): OutboundBind | undefined {
    return this.tenants.get(tenant)?.binds.get(name);
  }

  /** Messages held for ESMEs not bound here, and held messages delivered here, per tenant; held messages that expired. */
  heldCounts(): { tenants: ReadonlyMap<string, { held: number; delivered: number }>; expired: number } {
    return { tenants: this.holds.counts, expired: this.holds.expired };
  }

  /** A tenant's config as it stands (after the last reload), or undefined for a tenant not served. */
  tenantConfig(tenant: string): TenantConfig | undefined {
    return this.tenants.get(tenant)?.config;
  }

  counters(tenant: string): Readonly<DispatchCounters> {
    return this.tenant(tenant).counters;
  }

  tenantIds(): string[] {
    return [...this.tenants.keys()];
  }
}

function toResult(resp: WirePdu): SendResult {
  const r: SendResult = { ok: resp.command_status === 0, command_status: statusName(resp.command_status) };
  const f = resp.fields;
  if (typeof f.message_id === 'string') r.message_id = f.message_id;
  if (typeof f.message_state === 'number') r.message_state = f.message_state;
  if (typeof f.final_date === 'string') r.final_date = f.final_date;
  if (typeof f.error_code === 'number') r.error_code = f.error_code;
  return r;
}

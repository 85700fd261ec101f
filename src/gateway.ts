import { channel } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import type { OutboundBind, BindLease, BindState } from './binds/outbound-bind';
import { memoryLeases, type LeaseStore } from './cache/backend';
import { memoryForward } from './cache/forward-memory';
import { ForwardStore } from './cache/forward-store';
import { memoryHolds, type HoldStore } from './cache/hold';
import { Forwarder } from './forward/forwarder';
import type { ForwardResult } from './forward/messages';
import type { ServerConfig, SluiceConfig, TenantConfig } from './config/schema';
import { VIA_COMMANDS } from './dispatch/defaults';
import type { DispatchContext, DispatchCounters } from './dispatch/dispatch';
import type { PolicyHost, SessionInfo } from './dispatch/policy-host';
import { SluiceError } from './errors';
import { EsmeSender } from './gateway/esme-sender';
import { forwardRequest } from './gateway/forward-call';
import { Listeners } from './gateway/listeners';
import { toResult, type SendResult } from './gateway/send-result';
import { boundAs, Tenants } from './gateway/tenants';
import { Upstream } from './gateway/upstream';
import type { ForwardCall } from './sandbox-protocol/host-calls';
import { toWireFields } from './pdu/fields';
import type { EsmeConnection, EsmeHost } from './sessions/esme-connection';
import { Admission } from './sessions/admission';
import { Holds } from './sessions/holds';
import { Telemetry } from './telemetry';
import { realClock, type Clock, type TimerHandle } from './util/clock';
import { replicaName } from './util/ids';

export type { SendResult } from './gateway/send-result';

/** How long stop() waits for ESMEs and SMSCs to answer their unbind before closing the connections anyway. */
export const STOP_GRACE_MS = 5000;
/** How long stop() lets ESME PDUs in flight be answered before it unbinds them. */
export const STOP_DRAIN_MS = 4000;

/** Published when an ESME session binds or ends. */
export const esmeSessionChannel = channel('sluice:esme:session');

export interface BindView {
  name: string;
  state: BindState;
  host: string;
  port: number;
  sessionId?: string;
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
 * The trusted core in one object (docs/design.md, "The process boundary"):
 * the inbound listeners, every tenant's ESME sessions and supervised
 * outbound binds, and the send paths a policy host calls on a tenant's
 * behalf — each limited to that tenant's own binds and sessions. This class
 * wires its parts (src/gateway/) together and answers for them:
 *
 * - tenants.ts: the tenants served, by id and by system_id, and a config reload applied;
 * - listeners.ts: the ESME side's listeners (TCP, TLS), admission, the connections open;
 * - upstream.ts: the upstream side: outbound binds made, their PDUs dispatched, receipts taken by the core;
 * - esme-sender.ts: requests to ESMEs, delivered here or held for the next session on any replica;
 * - forward-call.ts, send-result.ts: a policy's `smpp.forward` call as the forwarder takes it, and what a send helper resolves to.
 *
 * Here: the questions an ESME connection asks (EsmeHost), start and stop,
 * the send paths, and what the admin API reads.
 */
export class Gateway implements EsmeHost {
  readonly server: ServerConfig;
  readonly clock: Clock;
  readonly policy: PolicyHost;
  readonly systemId: string;
  /** This replica's name in the lease store. */
  readonly replica: string;
  private readonly holds: Holds;
  /** Routing chains, the durable queue and receipt correlation (`smpp.forward`). */
  readonly forwarder: Forwarder;
  /** Connection caps and failed-bind limits of the listeners. */
  readonly admission: Admission;
  /** What the core tells the metrics (src/admin/metrics.ts attaches to it). */
  readonly telemetry = new Telemetry();
  private readonly log: Logger;
  private readonly tenants: Tenants;
  private readonly listeners: Listeners;
  private readonly toEsme: EsmeSender;
  private started = false;

  constructor(opts: GatewayOptions) {
    this.server = opts.config.server;
    this.clock = opts.clock ?? realClock;
    this.policy = opts.policy;
    this.systemId = opts.systemId ?? 'sluice';
    this.log = opts.logger;
    this.replica = opts.replica ?? replicaName();
    const lease: BindLease = { store: opts.leases ?? memoryLeases(() => this.clock.wall()), owner: this.replica, ttlMs: opts.config.cache.lease_ttl_ms };
    this.holds = new Holds({
      store: opts.holds ?? memoryHolds(() => this.clock.wall()),
      clock: this.clock,
      logger: this.log.child({ component: 'holds' }),
      ttlMs: this.server.hold_ttl_ms,
      claimMs: this.server.response_timer_ms + 1000,
      pollMs: opts.holdPollMs ?? 1000,
      bound: () => this.listeners.connections,
      sessionFor: (tenant, systemId) => {
        const rt = this.tenants.byId.get(tenant);
        return rt && boundAs(rt, systemId);
      },
      send: (conn, command, wire) => this.toEsme.sendNow(conn, command, wire),
    });
    this.admission = new Admission(this.server.admission, this.clock, this.log.child({ component: 'admission' }));
    this.forwarder = new Forwarder(
      {
        clock: this.clock,
        logger: this.log.child({ component: 'forward' }),
        tenant: (id) => this.tenants.byId.get(id),
        tenantIds: () => [...this.tenants.byId.keys()],
        deliverToEsme: (tenant, systemId, sessionId, command, fields, opts) => this.toEsme.deliverToEsme(tenant, systemId, sessionId, command, fields, opts),
        replica: { owner: this.replica, leases: lease.store },
        telemetry: this.telemetry,
      },
      opts.forward ?? new ForwardStore(memoryForward()),
    );
    const upstream = new Upstream({
      clock: this.clock,
      log: this.log,
      server: this.server,
      reconnectBaseMs: opts.reconnectBaseMs,
      logLimiter: this.admission.logs,
      telemetry: this.telemetry,
      lease,
      policy: this.policy,
      forwarder: this.forwarder,
    });
    this.tenants = new Tenants({ clock: this.clock, log: this.log, policy: this.policy, server: this.server, forwarder: this.forwarder, binds: upstream }, opts.config.tenants);
    this.toEsme = new EsmeSender({ clock: this.clock, server: this.server, holds: this.holds, telemetry: this.telemetry, tenants: this.tenants });
    this.listeners = new Listeners({ clock: this.clock, log: this.log, server: this.server, admission: this.admission, host: this });
  }

  /** Every listener it opened is listening (none opened yet: false). */
  get listening(): boolean {
    return this.listeners.listening;
  }

  /**
   * A config reload's new tenant list, applied in one step (tenants.ts):
   * tenants added, removed and changed; sessions and binds that go are
   * unbound in the background.
   */
  applyTenants(next: readonly TenantConfig[]): { added: string[]; removed: string[]; changed: string[] } {
    return this.tenants.apply(next, this.started);
  }

  // ---- EsmeHost -------------------------------------------------------------

  tenantFor(systemId: string): { id: string; dispatch: DispatchContext } | undefined {
    return this.tenants.bySystemId.get(systemId);
  }

  recordSession(tenant: string, sessionId: string, systemId: string): Promise<void> {
    return this.holds.record(tenant, sessionId, systemId);
  }

  onBound(conn: EsmeConnection): void {
    const rt = conn.tenant ? this.tenants.byId.get(conn.tenant) : undefined;
    if (!rt) return;
    rt.sessions.set(conn.id, conn);
    if (esmeSessionChannel.hasSubscribers) esmeSessionChannel.publish({ tenant: rt.id, sessionId: conn.id, event: 'bound' });
    this.policy.session(rt.id, 'bound', conn.info());
    this.holds.onBound(conn);
  }

  onUnbound(conn: EsmeConnection): void {
    const rt = conn.tenant ? this.tenants.byId.get(conn.tenant) : undefined;
    if (!rt) return;
    rt.sessions.delete(conn.id);
    if (esmeSessionChannel.hasSubscribers) esmeSessionChannel.publish({ tenant: rt.id, sessionId: conn.id, event: 'unbound' });
    this.policy.session(rt.id, 'unbound', conn.info());
  }

  tenantSessions(tenantId: string): { bound: number; max: number } {
    const t = this.tenants.byId.get(tenantId);
    let bound = 0;
    for (const c of t?.sessions.values() ?? []) if (c.bound) bound++;
    return { bound, max: t?.config.limits.max_sessions ?? 0 };
  }

  boundCount(systemId: string): number {
    let n = 0;
    for (const c of this.tenants.bySystemId.get(systemId)?.sessions.values() ?? []) if (c.bound && c.systemId === systemId) n++;
    return n;
  }

  // ---- lifecycle --------------------------------------------------------------

  /** Open the listeners and start every outbound bind. Resolves with the bound ports. */
  async start(): Promise<{ port: number; tlsPort?: number }> {
    const result = await this.listeners.open();
    for (const rt of this.tenants.byId.values()) for (const b of rt.binds.values()) b.start();
    this.holds.start();
    this.forwarder.start();
    this.started = true;
    return result;
  }

  /** Close the listeners, unbind every ESME and outbound bind. */
  async stop(): Promise<void> {
    this.holds.stop();
    this.forwarder.stop();
    // No new connections from here; a listener's close completes only once its
    // connections have ended, so the sessions are unbound alongside, not after.
    const listeners = this.listeners.close();
    const connections = this.listeners.connections;
    // What ESMEs have in flight is answered first, while the upstream binds are still up
    // (for at most STOP_DRAIN_MS; new PDUs meanwhile get ESME_RTHROTTLED); then everything unbinds.
    await Promise.allSettled([...connections].map((c) => c.session.drain(STOP_DRAIN_MS)));
    const closing: Promise<void>[] = [];
    for (const c of connections) closing.push(c.session.unbindAndClose('gateway stopping'));
    for (const rt of this.tenants.byId.values()) for (const b of rt.binds.values()) closing.push(b.stop());
    const all = Promise.allSettled([...closing, ...listeners]);
    // A peer that never answers its unbind would hold the stop for response_timer_ms.
    let timer: TimerHandle | undefined;
    const late = new Promise<boolean>((resolve) => (timer = this.clock.setTimeout(() => resolve(true), STOP_GRACE_MS)));
    if (await Promise.race([all.then(() => false), late])) {
      this.log.warn({ sessions: connections.size }, `peers did not answer their unbind within ${STOP_GRACE_MS} ms; closing their connections`);
      for (const c of connections) c.session.close('gateway stopping: no unbind_resp in time', false);
      for (const rt of this.tenants.byId.values()) for (const b of rt.binds.values()) b.closeNow('gateway stopping: no unbind_resp in time');
      await all;
    }
    this.clock.clearTimeout(timer);
  }

  // ---- send paths for policies ----------------------------------------------------

  /** `submitVia`, `dataVia`, …: a request on one of this tenant's outbound binds. */
  async sendVia(tenant: string, bindName: string, command: string, fields: Record<string, unknown>): Promise<SendResult> {
    if (!VIA_COMMANDS.has(command)) throw new SluiceError('INVALID_FIELD', `${command} cannot be sent to an SMSC`);
    const bind = this.tenants.require(tenant).binds.get(bindName);
    // Another tenant's bind is indistinguishable from one that does not exist.
    if (!bind) throw new SluiceError('UNKNOWN_BIND', `no bind named "${bindName}"`);
    const wire = toWireFields(command, fields);
    return toResult(await bind.request(command, wire.fields, wire.unknownTlvs));
  }

  /** `deliverTo`, `dataTo`, `alertTo`: a request to one of this tenant's bound ESMEs, or held for its system_id's next session (esme-sender.ts). */
  sendTo(tenant: string, sessionId: string, command: string, fields: Record<string, unknown>): Promise<SendResult> {
    return this.toEsme.sendTo(tenant, sessionId, command, fields);
  }

  /**
   * `smpp.forward(pdu, opts)`: the PDU's own frame (or, from the test
   * harness, its fields), with the policy's overrides, handed to the
   * forwarder for this tenant.
   */
  async forward(tenant: string, a: ForwardCall): Promise<ForwardResult> {
    return this.forwarder.forward(tenant, forwardRequest(a));
  }

  // ---- what the admin API reads ---------------------------------------------------

  /** Our requests this tenant's bound ESMEs have not answered yet (their windows in use), summed. */
  esmeWindowInUse(tenant: string): number {
    let n = 0;
    for (const c of this.tenants.byId.get(tenant)?.sessions.values() ?? []) n += c.session.outstanding;
    return n;
  }

  /** This tenant's bound ESME sessions. */
  sessions(tenant: string): SessionInfo[] {
    return [...this.tenants.require(tenant).sessions.values()].map((c) => c.info());
  }

  /** This tenant's outbound binds and their state. */
  binds(tenant: string): BindView[] {
    return [...this.tenants.require(tenant).binds.values()].map((b) => {
      const v: BindView = { name: b.cfg.name, state: b.state, host: b.cfg.host, port: b.cfg.port };
      if (b.sessionId) v.sessionId = b.sessionId;
      return v;
    });
  }

  /** The outbound bind object itself (admin stop/start, tests). */
  bind(tenant: string, name: string): OutboundBind | undefined {
    return this.tenants.byId.get(tenant)?.binds.get(name);
  }

  /** Messages held for ESMEs not bound here, and held messages delivered here, per tenant; held messages that expired. */
  heldCounts(): { tenants: ReadonlyMap<string, { held: number; delivered: number }>; expired: number } {
    return { tenants: this.holds.counts, expired: this.holds.expired };
  }

  /** A tenant's config as it stands (after the last reload), or undefined for a tenant not served. */
  tenantConfig(tenant: string): TenantConfig | undefined {
    return this.tenants.byId.get(tenant)?.config;
  }

  counters(tenant: string): Readonly<DispatchCounters> {
    return this.tenants.require(tenant).counters;
  }

  tenantIds(): string[] {
    return [...this.tenants.byId.keys()];
  }
}

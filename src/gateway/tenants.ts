import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { OutboundBind } from '../binds/outbound-bind';
import type { OutboundBindConfig, ServerConfig, TenantConfig } from '../config/schema';
import { newCounters, type DispatchContext, type DispatchCounters } from '../dispatch/dispatch';
import type { PolicyHost } from '../dispatch/policy-host';
import type { Forwarder } from '../forward/forwarder';
import { SluiceError } from '../errors';
import { RepeatedWarnings } from '../log/repeats';
import type { EsmeConnection } from '../sessions/esme-connection';
import type { Clock } from '../util/clock';
import { DeadlineQueue } from '../util/deadline';

/**
 * The tenants the gateway serves (docs/design.md, "Tenants"): each with its
 * config, its ESME sessions bound here, its outbound binds and the dispatch
 * context its PDUs go through, found by id and by system_id. A config
 * reload is applied here in one step.
 */

export interface TenantRuntime {
  readonly id: string;
  config: TenantConfig;
  readonly sessions: Map<string, EsmeConnection>;
  readonly binds: Map<string, OutboundBind>;
  readonly dispatch: DispatchContext;
  readonly counters: DispatchCounters;
}

/** Where a tenant's outbound binds are made and wired (upstream.ts). */
export interface BindMaker {
  add(rt: TenantRuntime, b: OutboundBindConfig): OutboundBind;
}

/** What the tenant table needs of the rest of the gateway. */
export interface TenantDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly policy: PolicyHost;
  readonly server: ServerConfig;
  /** What a tenant's dispatch tells store and forward: an answer went out, a receipt whose policy could not run. */
  readonly forwarder: Pick<Forwarder, 'answered' | 'rescueReceipt'>;
  readonly binds: BindMaker;
}

export class Tenants {
  private readonly ids = new Map<string, TenantRuntime>();
  private readonly systemIds = new Map<string, TenantRuntime>();
  /** Every tenant served, by id. */
  readonly byId: ReadonlyMap<string, TenantRuntime> = this.ids;
  /** The tenant that owns each system_id. */
  readonly bySystemId: ReadonlyMap<string, TenantRuntime> = this.systemIds;

  constructor(
    private readonly deps: TenantDeps,
    configs: readonly TenantConfig[],
  ) {
    for (const t of configs) this.add(t);
  }

  /** A tenant served, or UNKNOWN_TENANT. */
  require(tenant: string): TenantRuntime {
    const rt = this.ids.get(tenant);
    if (!rt) throw new SluiceError('UNKNOWN_TENANT');
    return rt;
  }

  private add(config: TenantConfig): void {
    const { clock, policy, server } = this.deps;
    const forwarder = this.deps.forwarder;
    const logger = this.deps.log.child({ tenant: config.id });
    const counters = newCounters();
    const rt: TenantRuntime = {
      id: config.id,
      config,
      sessions: new Map(),
      binds: new Map(),
      counters,
      dispatch: {
        tenant: config.id,
        policy,
        clock,
        logger,
        deadlineMs: config.limits.handler_deadline_ms,
        deadlines: new DeadlineQueue(config.limits.handler_deadline_ms, clock),
        counters,
        answered: (id) => forwarder.answered(config.id, id),
        rescue: (req, info) => (info.bind === undefined ? Promise.resolve(false) : forwarder.rescueReceipt(config.id, info.bind, req.command, req.fields)),
        repeats: new RepeatedWarnings(clock),
      },
    };
    this.ids.set(config.id, rt);
    for (const sid of config.system_ids) this.systemIds.set(sid, rt);
    for (const b of config.binds) {
      this.deps.binds.add(rt, b);
      // smpp.forward waits for the upstream within the ESME's handler deadline: a longer response
      // timer lets the deadline answer first (ESME_RSYSERR) while the message may still be taken.
      const timer = b.response_timer_ms ?? server.response_timer_ms;
      if (timer >= config.limits.handler_deadline_ms) {
        logger.warn({ bind: b.name, response_timer_ms: timer, handler_deadline_ms: config.limits.handler_deadline_ms }, "a bind's response_timer_ms is not below the tenant's handler_deadline_ms: a slow upstream is answered by the deadline, not by the routing chain");
      }
    }
  }

  /**
   * A config reload's new tenant list, applied in one step: new tenants are
   * added (their binds started if `started`), removed ones lose their ESME
   * sessions and binds, changed ones take their new limits, system_ids and
   * binds (a bind whose settings changed is stopped and started anew; the
   * others, and every session, carry on). ESME sessions whose system_id no
   * longer belongs to their tenant are unbound. Tenants whose config is
   * unchanged are not touched. Returns at once: sessions and binds that go
   * are unbound in the background (an ESME slow to answer its unbind does
   * not hold up the reload).
   */
  apply(next: readonly TenantConfig[], started: boolean): { added: string[]; removed: string[]; changed: string[] } {
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    const stopping: Promise<void>[] = [];
    const ids = new Set(next.map((t) => t.id));
    for (const rt of [...this.ids.values()]) {
      if (ids.has(rt.id)) continue;
      removed.push(rt.id);
      this.ids.delete(rt.id);
      for (const conn of rt.sessions.values()) stopping.push(conn.session.unbindAndClose('tenant removed by a config reload'));
      for (const b of rt.binds.values()) stopping.push(b.stop());
    }
    for (const cfg of next) {
      const rt = this.ids.get(cfg.id);
      if (!rt) {
        added.push(cfg.id);
        this.add(cfg);
        if (started) for (const b of this.ids.get(cfg.id)!.binds.values()) b.start();
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
        rt.dispatch.deadlines = new DeadlineQueue(cfg.limits.handler_deadline_ms, this.deps.clock);
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
        const bind = this.deps.binds.add(rt, b);
        if (started) bind.start();
      }
    }
    this.systemIds.clear();
    for (const rt of this.ids.values()) for (const sid of rt.config.system_ids) this.systemIds.set(sid, rt);
    for (const rt of this.ids.values()) {
      for (const conn of rt.sessions.values()) {
        if (this.systemIds.get(conn.systemId) !== rt) stopping.push(conn.session.unbindAndClose('system_id removed from its tenant by a config reload'));
      }
    }
    void Promise.allSettled(stopping);
    return { added, removed, changed };
  }
}

/** A session of this tenant bound here as `systemId`, if there is one. */
export function boundAs(rt: TenantRuntime, systemId: string): EsmeConnection | undefined {
  for (const c of rt.sessions.values()) if (c.bound && c.systemId === systemId) return c;
  return undefined;
}

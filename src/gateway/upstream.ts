import type { Logger } from 'pino';
import { OutboundBind, type BindLease } from '../binds/outbound-bind';
import type { OutboundBindConfig, ServerConfig } from '../config/schema';
import { OUTBOUND_DEFAULTS } from '../dispatch/defaults';
import { dispatchRequest } from '../dispatch/dispatch';
import type { PolicyHost, SessionInfo } from '../dispatch/policy-host';
import type { Forwarder } from '../forward/forwarder';
import type { SourceLogLimiter } from '../log/source-limit';
import { isDlrEsmClass } from '../pdu/dlr';
import type { InboundRequest, SmppSession } from '../sessions/smpp-session';
import type { Telemetry } from '../telemetry';
import type { Clock } from '../util/clock';
import { ESME_RINVCMDID, ESME_ROK, ESME_RSYSERR } from '../wire/status';
import type { BindMaker, TenantRuntime } from './tenants';

/**
 * The upstream side of the gateway: a tenant's outbound binds made and
 * wired. What an upstream sends goes to the tenant's policy (or, for a
 * receipt of a tenant with `receipts.by: core`, straight to store and
 * forward); a bind coming up tells the policy and wakes the queue.
 */

/** What the upstream side needs of the rest of the gateway. */
export interface UpstreamDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly server: ServerConfig;
  /** First reconnect delay of outbound binds (tests shorten it). */
  readonly reconnectBaseMs: number | undefined;
  /** Log lines about peers, limited per source (the listeners' admission). */
  readonly logLimiter: SourceLogLimiter;
  readonly telemetry: Telemetry;
  /** Where `single: true` binds take their lease. */
  readonly lease: BindLease;
  readonly policy: PolicyHost;
  readonly forwarder: Pick<Forwarder, 'bindUp' | 'forward'>;
}

export class Upstream implements BindMaker {
  constructor(private readonly deps: UpstreamDeps) {}

  /** A bind of `rt` made from its config, its requests and state changes wired, and kept in the tenant's binds (not started). */
  add(rt: TenantRuntime, b: OutboundBindConfig): OutboundBind {
    const { policy, forwarder } = this.deps;
    const bind = new OutboundBind(rt.id, b, {
      clock: this.deps.clock,
      logger: this.deps.log,
      server: this.deps.server,
      reconnectBaseMs: this.deps.reconnectBaseMs,
      logLimiter: this.deps.logLimiter,
      telemetry: this.deps.telemetry,
      ...(b.single ? { lease: this.deps.lease } : {}),
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
        policy.session(rt.id, 'bound', bindInfo(bind.sessionId ?? ''));
        forwarder.bindUp(rt.id);
      }
      else if (ev.previous === 'bound') policy.session(rt.id, 'unbound', bindInfo(bind.sessionId ?? ''));
    });
    rt.binds.set(b.name, bind);
    return bind;
  }

  /**
   * A receipt of a tenant with `receipts.by: core`: correlated from the
   * journal as `smpp.forward` would, no sandbox round trip. The upstream is
   * answered ESME_ROK once the receipt is durable, ESME_RSYSERR (it sends it
   * again) when the store cannot take it.
   */
  private receiptByCore(rt: TenantRuntime, session: SmppSession, pdu: InboundRequest, info: SessionInfo): void {
    rt.counters.pdus++;
    this.deps.forwarder.forward(rt.id, { command: pdu.command, fields: pdu.fields, session: info }).then(
      () => session.respond(pdu, ESME_ROK),
      (err: Error) => {
        rt.counters.errors++;
        this.deps.log.warn({ tenant: rt.id, command: pdu.command, err: err.message }, 'a delivery receipt could not be taken, answering ESME_RSYSERR');
        session.respond(pdu, ESME_RSYSERR);
      },
    );
  }
}

import type { ServerConfig } from '../config/schema';
import { TO_COMMANDS } from '../dispatch/defaults';
import { isSluiceError, SluiceError } from '../errors';
import type { DeliverOptions } from '../forward/host';
import type { EsmeDelivery } from '../forward/outbox';
import { toWireFields } from '../pdu/fields';
import type { EsmeConnection } from '../sessions/esme-connection';
import type { Holds } from '../sessions/holds';
import { timed, type Telemetry } from '../telemetry';
import type { Clock } from '../util/clock';
import { toResult, type SendResult } from './send-result';
import { boundAs, type Tenants } from './tenants';

/**
 * Requests to ESMEs (a policy's `deliverTo`, `dataTo`, `alertTo`; receipts
 * and MO from store and forward): to the session named if it is bound here,
 * else to another session of its system_id bound here, else held in the
 * store for the next one, on any replica (docs/design.md, "Replicas"). A
 * session that does not answer leaves the message held, not lost.
 */

/** What sending to ESMEs needs of the rest of the gateway. */
export interface EsmeSenderDeps {
  readonly clock: Clock;
  readonly server: ServerConfig;
  readonly holds: Holds;
  readonly telemetry: Telemetry;
  readonly tenants: Pick<Tenants, 'require'>;
}

export class EsmeSender {
  constructor(private readonly deps: EsmeSenderDeps) {}

  /** `deliverTo`, `dataTo`, `alertTo`: a request to one of this tenant's bound ESMEs. */
  async sendTo(tenant: string, sessionId: string, command: string, fields: Record<string, unknown>): Promise<SendResult> {
    if (!TO_COMMANDS.has(command)) throw new SluiceError('INVALID_FIELD', `${command} cannot be sent to an ESME`);
    const { holds } = this.deps;
    const rt = this.deps.tenants.require(tenant);
    const wire = toWireFields(command, fields);
    let conn = rt.sessions.get(sessionId);
    if (!conn || !conn.bound) {
      // Not bound here. A session of this tenant's that the directory knows (bound on another
      // replica, or unbound a moment ago) gets it through another session of its system_id
      // bound here, else through the store; any other id is unknown, as another tenant's is.
      const systemId = await holds.systemIdOf(tenant, sessionId);
      if (systemId === undefined || !rt.config.system_ids.includes(systemId)) throw new SluiceError('UNKNOWN_SESSION', `no bound session "${sessionId}"`);
      conn = boundAs(rt, systemId);
      if (!conn) {
        await holds.hold(tenant, systemId, command, fields);
        return { ok: true, command_status: 'ESME_ROK', held: true };
      }
    }
    const sent = await this.sendOrHold(conn, command, wire);
    if (sent) return sent;
    await holds.hold(tenant, conn.systemId, command, fields);
    return { ok: true, command_status: 'ESME_ROK', held: true };
  }

  /**
   * A message for an ESME of `systemId`: to `sessionId` if it is bound here,
   * else to another session of that system_id bound here, else held in the
   * store for the next one on any replica. A session that does not answer
   * (gone, or timed out) leaves the message held, not lost.
   *
   * `unknownTlvs` go as they are. `queue`: a session whose window is full takes it in its queue, behind
   * what it already has, while that has room (16 windows): for what is
   * durable already until the ESME has it (an outbox receipt), so it goes
   * out as soon as the ESME answers, in order. Held instead, it would wait
   * for the store's next poll (a second) behind later ones.
   */
  async deliverToEsme(tenant: string, systemId: string, sessionId: string | undefined, command: string, fields: Record<string, unknown>, opts: DeliverOptions = {}): Promise<EsmeDelivery> {
    const rt = this.deps.tenants.require(tenant);
    const direct = sessionId === undefined ? undefined : rt.sessions.get(sessionId);
    const conn = direct?.bound ? direct : boundAs(rt, systemId);
    const tlvs = opts.unknownTlvs;
    const r = conn && (await this.sendOrHold(conn, command, { fields, ...(tlvs ? { unknownTlvs: [...tlvs] } : {}) }, opts.queue === true));
    if (r) return r.ok ? { kind: 'delivered' } : { kind: 'refused', status: r.command_status };
    await this.deps.holds.hold(tenant, systemId, command, fields);
    return { kind: 'held' };
  }

  /**
   * A request to a bound ESME session, or undefined when the session cannot
   * take it and it is to be held instead. A session with a window's worth
   * unanswered is not waited on, so one ESME that stops answering holds at
   * most a window of its tenant's host calls (`max_pending` is the tenant's,
   * shared by all its sessions); with `queue`, one waits in the session's
   * queue while it has room. One that leaves a request unanswered for
   * `response_timer_ms` is closed; the message may have reached it, so what
   * is held is delivered at least once. One still queued then (it never
   * left) is held, and the session, answering the rest, stays. One whose
   * ESME has messages waiting in the store is held behind them, not sent
   * past them.
   */
  private async sendOrHold(conn: EsmeConnection, command: string, wire: ReturnType<typeof toWireFields>, queue = false): Promise<SendResult | undefined> {
    if (conn.tenant !== undefined && this.deps.holds.waiting(conn.tenant, conn.systemId)) return undefined;
    if (!queue && conn.session.backlog >= this.deps.server.window) return undefined;
    try {
      return await this.sendNow(conn, command, wire);
    } catch (err) {
      // THROTTLED: the session's queue is full.
      if (!isSluiceError(err, 'TIMEOUT') && !isSluiceError(err, 'SESSION_CLOSED') && !isSluiceError(err, 'THROTTLED')) throw err;
      if (isSluiceError(err, 'TIMEOUT') && err.sent !== false && !conn.session.closed) conn.session.close(`no answer to ${command} within response_timer_ms`);
      return undefined;
    }
  }

  /** A request to an ESME bound here; alert_notification has no response. */
  async sendNow(conn: EsmeConnection, command: string, wire: ReturnType<typeof toWireFields>): Promise<SendResult> {
    if (command === 'alert_notification') {
      conn.session.notify(command, wire.fields, wire.unknownTlvs);
      return { ok: true, command_status: 'ESME_ROK' };
    }
    const sending = conn.session.request(command, wire.fields, wire.unknownTlvs);
    const tenant = conn.tenant;
    const telemetry = this.deps.telemetry;
    if (!telemetry.active || !tenant) return toResult(await sending);
    return toResult(await timed(this.deps.clock, sending, (status, ms) => telemetry.esmeSent(tenant, command, status, ms)));
  }
}

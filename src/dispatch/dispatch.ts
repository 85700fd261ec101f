import type { Logger } from 'pino';
import type { RepeatedWarnings } from '../log/repeats';
import { toWireFields } from '../pdu/fields';
import { toPolicyPdu } from '../pdu/model';
import type { Clock } from '../util/clock';
import type { DeadlineQueue } from '../util/deadline';
import { newMessageId } from '../util/ids';
import type { InboundRequest } from '../wire/codec';
import { ESME_ROK, ESME_RSYSERR } from '../wire/status';
import { RESPONSES_WITH_ID, type DefaultAction } from './defaults';
import type { PduOutcome, PolicyHost, SessionInfo } from './policy-host';

/** Where a request is answered: the session it came on (sessions/smpp-session.ts). */
export interface Answerer {
  respond(req: InboundRequest, status: number, fields?: Record<string, unknown>): void;
}

/** Counters the dispatcher keeps per tenant; the admin API and metrics read them. */
export interface DispatchCounters {
  pdus: number;
  errors: number;
  deadlines: number;
  throttled: number;
}

export function newCounters(): DispatchCounters {
  return { pdus: 0, errors: 0, deadlines: 0, throttled: 0 };
}

export interface DispatchContext {
  tenant: string;
  policy: PolicyHost;
  clock: Clock;
  logger: Logger;
  deadlineMs: number;
  /** handler_deadline_ms for every PDU of this tenant, on one timer. */
  deadlines: DeadlineQueue;
  counters: DispatchCounters;
  /** Told the message_id of every ESME_ROK a submit was answered with, once it is written (receipts wait for it). */
  answered?: (messageId: string) => void;
  /**
   * For a PDU from an upstream whose handler failed (threw, timed out,
   * missed its deadline, its sandbox lost): whether the core took it without
   * the policy (a receipt of a message in the journal: answered ESME_ROK);
   * false answers ESME_RSYSERR, and the upstream sends it again.
   */
  rescue?: (req: InboundRequest, info: SessionInfo) => Promise<boolean>;
  /** The tenant's warnings of a failed handler, collapsed when the same one comes again (a tenant removed under load). */
  repeats?: RepeatedWarnings;
}

/**
 * Dispatch one request to the tenant's policy and answer it exactly once:
 * the policy's reply, the operation's default, or ESME_RSYSERR when the
 * handler throws, times out or returns something that cannot be sent.
 */
export function dispatchRequest(
  ctx: DispatchContext,
  session: Answerer,
  req: InboundRequest,
  info: SessionInfo,
  fallback: DefaultAction,
): void {
  ctx.counters.pdus++;
  // A policy host may know the answer before any work: a tenant over its CPU budget. Never for
  // what its upstream sends on a bind (receipts, MO): the budget throttles new submits, not obligations.
  const refused = info.kind === 'bind' ? undefined : ctx.policy.refuse?.(ctx.tenant, req.command);
  if (refused !== undefined) {
    session.respond(req, refused);
    return;
  }
  const failed = (why: string, fields: Record<string, unknown>): void => {
    const settle = (taken: boolean, extra: Record<string, unknown> = {}): void => {
      const line = { command: req.command, ...fields, ...extra };
      const msg = taken ? `${why}; the core took it (a receipt of a message in the journal)` : `${why}, answering ESME_RSYSERR`;
      if (ctx.repeats) ctx.repeats.warn(ctx.logger, `${msg}\u0000${req.command}\u0000${String(fields.err ?? '')}`, line, msg);
      else ctx.logger.warn(line, msg);
      answer(session, req, { kind: 'status', status: taken ? ESME_ROK : ESME_RSYSERR });
    };
    if (info.kind !== 'bind' || !ctx.rescue) return settle(false);
    // What an upstream sends was accepted by the SMSC: the core takes it itself where it can.
    ctx.rescue(req, info).then(settle, (err: Error) => settle(false, { rescue: err.message }));
  };
  const deadline = ctx.deadlines.add(() => {
    ctx.counters.deadlines++;
    failed('handler missed its deadline', { deadline_ms: ctx.deadlineMs });
  });
  const done = (err: unknown, outcome?: PduOutcome): void => {
    // A result after the deadline is discarded: the PDU was already answered.
    if (!deadline.settle()) return;
    if (err === undefined && outcome) {
      applyOutcome(ctx, session, req, outcome, fallback);
      return;
    }
    ctx.counters.errors++;
    failed('handler failed', { err: (err as Error)?.message });
  };
  try {
    if (ctx.policy.pduFrame && req.raw) ctx.policy.pduFrame(ctx.tenant, req.raw, info, done);
    else
      ctx.policy.pdu(ctx.tenant, toPolicyPdu(req), info).then(
        (outcome) => done(undefined, outcome),
        (err: unknown) => done(err ?? new Error('handler failed')),
      );
  } catch (err) {
    done(err ?? new Error('handler failed'));
  }
}

function applyOutcome(ctx: DispatchContext, session: Answerer, req: InboundRequest, outcome: PduOutcome, fallback: DefaultAction): void {
  if (outcome.kind === 'default') {
    answer(session, req, fallback);
    return;
  }
  try {
    replyWith(session, req, outcome.status, outcome.fields);
    if (ctx.answered && outcome.status === ESME_ROK && typeof outcome.fields?.message_id === 'string' && RESPONSES_WITH_ID.has(req.command)) ctx.answered(outcome.fields.message_id);
  } catch (err) {
    ctx.counters.errors++;
    ctx.logger.warn({ command: req.command, err: (err as Error).message }, 'reply does not encode, answering ESME_RSYSERR');
    answer(session, req, { kind: 'status', status: ESME_RSYSERR });
  }
}

/** Apply a default action. */
export function answer(session: Answerer, req: InboundRequest, action: DefaultAction): void {
  if (action.kind === 'none') {
    // alert_notification has no response; it still leaves the peer window.
    session.respond(req, -1);
    return;
  }
  if (action.kind === 'status') {
    session.respond(req, action.status);
    return;
  }
  session.respond(req, ESME_ROK, RESPONSES_WITH_ID.has(req.command) ? { message_id: newMessageId() } : undefined);
}

function replyWith(session: Answerer, req: InboundRequest, status: number, fields?: Record<string, unknown>): void {
  if (status !== ESME_ROK || !fields) {
    if (status === ESME_ROK && RESPONSES_WITH_ID.has(req.command)) fields = { message_id: newMessageId() };
    session.respond(req, status, status === ESME_ROK ? fields : undefined);
    return;
  }
  if (isOnlyMessageId(fields)) {
    // The common answer; same checks as toWireFields, without its generality.
    session.respond(req, status, fields);
    return;
  }
  const wire = toWireFields(`${req.command}_resp`, fields);
  if (RESPONSES_WITH_ID.has(req.command) && wire.fields.message_id === undefined) wire.fields.message_id = newMessageId();
  session.respond(req, status, wire.fields);
}

const MESSAGE_ID = /^[\x01-\x7f]{0,64}$/;

function isOnlyMessageId(fields: Record<string, unknown>): fields is { message_id: string } {
  let n = 0;
  for (const k in fields) {
    if (k !== 'message_id' || ++n > 1) return false;
  }
  return n === 1 && typeof fields.message_id === 'string' && MESSAGE_ID.test(fields.message_id);
}


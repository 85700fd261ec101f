import type { Logger } from 'pino';
import { MSG_QUEUED } from '../cache/forward-store';
import { parseChainStep, type TenantConfig } from '../config/schema';
import { isSluiceError, SluiceError } from '../errors';
import type { Clock } from '../util/clock';
import { newMessageId } from '../util/ids';
import { bytesToJson } from '../util/json-bytes';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import { STATUS, statusName } from '../wire/status';
import type { EsmeReceipts } from './esme-receipts';
import type { ForwardCounts } from './counters';
import type { ForwardTenant } from './host';
import type { Journal } from './journal';
import { firstDestination, msgKey, TRANSIENT, type ForwardRequest, type ForwardResult, type MsgData } from './messages';
import { smppTimeToMs } from './smpp-time';

/**
 * Submits (docs/design.md, "The boundary"): the routing chain of a
 * submit_sm, data_sm or submit_sm_multi walked step by step (a bind, the
 * queue, a refusal) and its journal row written. A message is answered
 * ESME_ROK only once an upstream accepted it (its row written with its
 * correlation key) or it is durably queued; until its submit_sm_resp goes
 * out, its receipts wait (esme-receipts.ts).
 */

/** What a submit needs of the other parts of store and forward. */
export interface SubmitDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly journal: Pick<Journal, 'write' | 'sentRow'>;
  readonly esme: Pick<EsmeReceipts, 'expect'>;
  readonly counts: ForwardCounts;
}

/** What one bind step came to (`sendStep`). */
export type StepOutcome = { kind: 'skip' } | { kind: 'uncertain'; bind: string } | { kind: 'refused'; bind: string; status: string } | { kind: 'sent'; bind: string; id: string };

export class Submits {
  constructor(private readonly deps: SubmitDeps) {}

  /** A submit of an ESME of `tenant`, sent on, queued or refused by its chain. */
  async submit(tenant: string, rt: ForwardTenant, req: ForwardRequest): Promise<ForwardResult> {
    const { journal, esme } = this.deps;
    const cfg = rt.config;
    const chain = chainFor(cfg, req);
    const now = this.deps.clock.wall();
    let exp = now + cfg.queue.expiry_ms;
    const vp = req.fields.validity_period;
    if (typeof vp === 'string' && vp !== '') {
      let t: number | undefined;
      try {
        t = smppTimeToMs(vp, now);
      } catch {
        return { ok: false, command_status: 'ESME_RINVEXPIRY' };
      }
      if (t !== undefined) exp = Math.min(t, now + cfg.queue.max_expiry_ms);
    }
    const data: MsgData = {
      sys: req.session.systemId,
      sid: req.session.sessionId,
      id: newMessageId(),
      cmd: req.command,
      src: String(req.fields.source_addr ?? ''),
      dst: String(req.fields.destination_addr ?? firstDestination(req.fields) ?? ''),
      rd: Number(req.fields.registered_delivery ?? 0),
      at: now,
      exp,
      n: 0,
    };
    if (req.command === 'submit_sm_multi') data.left = Array.isArray(req.fields.dest_address) ? req.fields.dest_address.length : 1;
    const c = this.deps.counts.of(tenant);
    for (let i = 0; i < chain.length; i++) {
      const step = chain[i]!;
      if (step.startsWith('bind:')) {
        const out = await sendStep(this.deps.log, tenant, rt, step.slice(5), req.command, req.fields, req.unknownTlvs);
        if (out.kind === 'skip') continue;
        if (out.kind === 'uncertain') {
          // It left and no answer came: sending it again (here or on the next bind) may send it twice.
          c.uncertain++;
          return { ok: false, command_status: 'ESME_RSUBMITFAIL', via: out.bind };
        }
        if (out.kind === 'refused') {
          c.rejected++;
          return { ok: false, command_status: out.status, via: out.bind };
        }
        data.bind = out.bind;
        data.uid = out.id;
        data.n = 1;
        await journal.write([{ t: 'put', correlates: true, row: journal.sentRow(tenant, out.bind, data) }]);
        c.forwarded++;
        esme.expect(tenant, data.id);
        return { ok: true, command_status: 'ESME_ROK', message_id: data.id, via: out.bind };
      }
      if (step === 'queue') {
        // From the queue it may take any bind of its chain, the ones before this step included.
        data.chain = chain.filter((x) => x.startsWith('bind:'));
        data.f = bytesToJson(req.fields);
        if (req.unknownTlvs) data.tlv = bytesToJson(req.unknownTlvs);
        const route = data.chain[0]?.slice(5) ?? null;
        await journal.write([{ t: 'put', row: { key: msgKey(tenant, data.id), tenant, up: null, state: MSG_QUEUED, due: now + cfg.queue.retry_ms, expires: exp, created: now, route, data: JSON.stringify(data) } }]);
        c.queued++;
        esme.expect(tenant, data.id);
        return { ok: true, command_status: 'ESME_ROK', message_id: data.id, queued: true };
      }
      if (step === 'reject' || step.startsWith('reject:')) {
        c.rejected++;
        return { ok: false, command_status: step === 'reject' ? 'ESME_RINVDSTADR' : step.slice(7) };
      }
    }
    c.rejected++;
    return { ok: false, command_status: 'ESME_RSUBMITFAIL' };
  }
}

/** The steps a submit takes: the policy's own chain (checked), a routing rule by name, or the longest prefix match of its destination. */
function chainFor(cfg: TenantConfig, req: ForwardRequest): readonly string[] {
  if (req.chain) {
    for (const step of req.chain) {
      const p = parseChainStep(step);
      if (!p) throw new SluiceError('INVALID_FIELD', `"${step.slice(0, 40)}" is not a chain step ("bind:<name>", "queue", "reject", "reject:<status>")`);
      // Another tenant's bind is indistinguishable from one that does not exist.
      if (p.kind === 'bind' && !cfg.binds.some((b) => b.name === p.bind)) throw new SluiceError('UNKNOWN_BIND', `no bind named "${p.bind.slice(0, 64)}"`);
      if (p.kind === 'reject' && p.status !== undefined && STATUS[p.status] === undefined) throw new SluiceError('INVALID_FIELD', `unknown command_status "${p.status.slice(0, 40)}"`);
    }
    return req.chain;
  }
  const routing = cfg.routing;
  if (req.rule !== undefined) {
    const r = routing.rules.find((x) => x.name === req.rule);
    if (!r) throw new SluiceError('INVALID_FIELD', `no routing rule named "${String(req.rule).slice(0, 40)}"`);
    return r.chain;
  }
  const dest = String(req.fields.destination_addr ?? firstDestination(req.fields) ?? '');
  let best: { prefix: string; chain: readonly string[] } | undefined;
  for (const r of routing.rules) if (dest.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  return best ? best.chain : routing.default_chain;
}

/**
 * One bind step (of a submit, or of a queued message's retry): skipped
 * (down, standby, throttled, or refused for now before anything was
 * accepted), accepted with the upstream's id, refused for good with a
 * status, or uncertain (it left and no answer came).
 */
export async function sendStep(
  log: Logger,
  tenant: string,
  rt: Pick<ForwardTenant, 'binds'>,
  name: string,
  command: string,
  fields: Record<string, unknown>,
  tlvs: readonly UnknownTlv[] | undefined,
): Promise<StepOutcome> {
  const bind = rt.binds.get(name);
  if (!bind || bind.state !== 'bound') return { kind: 'skip' };
  let resp: WirePdu;
  try {
    resp = await bind.request(command, fields, tlvs);
  } catch (err) {
    if (isSluiceError(err) && (err.code === 'BIND_DOWN' || err.code === 'THROTTLED' || err.sent === false)) return { kind: 'skip' };
    if (isSluiceError(err) && (err.code === 'TIMEOUT' || err.code === 'SESSION_CLOSED')) {
      log.warn({ tenant, bind: name, err: err.message }, 'forward: no answer from the upstream after the message left; not sent again');
      return { kind: 'uncertain', bind: name };
    }
    throw err;
  }
  if (resp.command_status === 0) return { kind: 'sent', bind: name, id: typeof resp.fields.message_id === 'string' ? resp.fields.message_id : '' };
  if (TRANSIENT.has(resp.command_status)) return { kind: 'skip' };
  return { kind: 'refused', bind: name, status: statusName(resp.command_status) };
}

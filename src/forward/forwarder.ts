// One file on purpose: routing, the queue and receipt correlation share the journal writes, the per-receipt locks and
// the table of messages not yet answered to their ESME. What they speak is in messages.ts, the
// receipt outbox in outbox.ts, id forms in receipt-ids.ts; receipt correlation is the next seam to
// cut along.
import type { Logger } from 'pino';
import { MSG_FINAL, MSG_QUEUED, MSG_SENT, type EarlyRow, type ForwardOp, type ForwardStore, type MsgRow } from '../cache/forward-store';
import type { OutboundBind } from '../binds/outbound-bind';
import type { LeaseStore } from '../cache/backend';
import { accountOf, defaultOf, parseChainStep, type TenantConfig } from '../config/schema';
import { isSluiceError, SluiceError } from '../errors';
import type { Receipt } from '../pdu/dlr';
import { toWireFields } from '../pdu/fields';
import { Repeat, type Clock } from '../util/clock';
import { newMessageId } from '../util/ids';
import { bytesToJson, jsonToBytes } from '../util/json-bytes';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import { asReceipt, bindUpKey, FINAL_STATS, firstByUp, firstDestination, MESSAGE_STATE_OF, msgKey, SUBMITS, TRANSIENT, upKey, wantsReceipt, type ForwardRequest, type ForwardResult, type MsgData } from './messages';
import { Outbox, type EsmeDelivery, type OutboxEntry } from './outbox';
import { STATUS, statusName, statusValue } from '../wire/status';
import { receiptIdKeys, storedIdKey, type ReceiptIdForm } from './receipt-ids';
import { receiptDate, smppTimeToMs } from './smpp-time';
import { doubling } from '../util/backoff';
import { statLabel, type ReceiptOutcome, type Telemetry } from '../telemetry';

/**
 * Store and forward, owned by the core (docs/design.md, "The boundary": on the wire or on a
 * clock). A policy decides *that* a PDU goes on (`smpp.forward`); this
 * module walks the tenant's routing chain, keeps every message it accepted
 * in the durable journal until its final receipt, retries queued messages
 * on its own timers until they expire, correlates receipts per upstream
 * account (a receipt may come on any session of the account, on any
 * replica), holds receipts that come before their submit_sm_resp, and routes
 * receipts and MO messages back to the ESME (or into the held store).
 *
 * A message is answered ESME_ROK only once an upstream accepted it or it is
 * durably queued; its receipt goes to the ESME only after the ESME had its
 * submit_sm_resp. Times kept in the journal are wall-clock (clock.wall());
 * the monotonic clock only times this process's own waits.
 */

/** What the forwarder needs of the gateway. */
export interface ForwarderHost {
  readonly clock: Clock;
  readonly logger: Logger;
  tenant(id: string): { config: TenantConfig; binds: ReadonlyMap<string, OutboundBind> } | undefined;
  tenantIds(): string[];
  /**
   * A deliver_sm for `systemId`: to `sessionId` if it is bound here, else to
   * another session of that system_id bound here, else held in the store
   * for the next one (docs/design.md, "Replicas"). Rejects only when it could not be held.
   */
  deliverToEsme(tenant: string, systemId: string, sessionId: string | undefined, command: string, fields: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): Promise<EsmeDelivery>;
  /**
   * This process's name and the store replicas share: it keeps a liveness
   * lease there, so others deliver its outbox receipts only once it is gone.
   * Without it, this process is taken to be the only one.
   */
  readonly replica?: { owner: string; leases: LeaseStore };
  /** Where receipts are counted by stat and their round trip timed (metrics). */
  readonly telemetry?: Telemetry;
}

/** The upstream bind a receipt came on, and when (wall clock: an early receipt is matched later, maybe by another replica). */
interface ReceiptVia {
  bind: string;
  at: number;
}

/** Rows claimed from the queue per round. */
const CLAIM_BATCH = 64;
/** How often the queue is looked at when nothing woke it. */
const QUEUE_POLL_MS = 500;
const EARLY_POLL_MS = 1000;
const SWEEP_MS = 60_000;

/** An early receipt unmatched this long after its early_ttl_ms is swept without being counted (the poll counts and drops it first). */
const EARLY_SWEEP_GRACE_MS = 300_000;

/** What an early receipt row keeps: the bind it came on, every key it is filed under, the receipt. */
interface EarlyData {
  bind: string;
  ups?: string[];
  r: Receipt;
  /** When it came (wall clock; absent in rows written before it was kept). */
  at?: number;
}

/** Counters for /metrics. */
export interface ForwardCounters {
  forwarded: number;
  queued: number;
  retried: number;
  expired: number;
  rejected: number;
  uncertain: number;
  receipts: number;
  receiptsEarly: number;
  receiptsDuplicate: number;
  receiptsUnmatched: number;
  mo: number;
}

export class Forwarder {
  readonly counters = new Map<string, ForwardCounters>();
  private loops: Repeat[] = [];
  private stopped = true;
  private draining = false;
  private rounds = 0;
  private drainAgain = false;
  /** Journal writes failed since the last that worked (logged when it starts and when it ends). */
  private writeFailures = 0;
  /** Our ids answered ESME_ROK by the forwarder whose submit_sm_resp has not gone out yet, and receipts waiting for it. */
  private readonly unanswered = new Map<string, { at: number; waiters: (() => void)[] }>();
  /** The receipts ESMEs are due, on their own flow (outbox.ts). */
  private readonly outbox: Outbox;
  /** One receipt at a time per message (an upstream re-sending one must not deliver it twice). */
  private readonly receiptLocks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly host: ForwarderHost,
    readonly store: ForwardStore,
  ) {
    this.outbox = new Outbox({
      clock: host.clock,
      log: host.logger,
      store,
      ...(host.replica ? { replica: host.replica } : {}),
      ttlMs: (tenant) => this.host.tenant(tenant)?.config.receipts.ttl_ms ?? defaultOf('tenants', 'receipts', 'ttl_ms'),
      afterAnswer: (tenant, id) => this.afterAnswer(msgKey(tenant, id), (this.host.tenant(tenant)?.config.limits.handler_deadline_ms ?? defaultOf('tenants', 'limits', 'handler_deadline_ms')) + 1000),
      deliverToEsme: (tenant, sys, sid, command, fields) => this.host.deliverToEsme(tenant, sys, sid, command, fields),
      write: (ops) => this.write(ops),
    });
    // Correlation keys just committed that have early receipts parked under them (by any process).
    store.onEarly = (ups) => void this.matchEarlyFor(ups).catch((err: Error) => this.log.warn({ err: err.message }, 'forward: early receipt not matched yet'));
  }

  private get clock(): Clock {
    return this.host.clock;
  }

  private get log(): Logger {
    return this.host.logger;
  }

  count(tenant: string): ForwardCounters {
    let c = this.counters.get(tenant);
    if (!c) {
      c = { forwarded: 0, queued: 0, retried: 0, expired: 0, rejected: 0, uncertain: 0, receipts: 0, receiptsEarly: 0, receiptsDuplicate: 0, receiptsUnmatched: 0, mo: 0 };
      this.counters.set(tenant, c);
    }
    return c;
  }

  start(): void {
    this.stopped = false;
    const onError = (err: Error): void => this.log.warn({ err: err.message }, 'forward journal: store error');
    this.loops = [
      new Repeat(this.clock, QUEUE_POLL_MS, () => this.drain(), onError),
      new Repeat(
        this.clock,
        EARLY_POLL_MS,
        async () => {
          // An id whose answer never went out (the policy answered something else, or missed its deadline).
          const old = this.clock.now() - 60_000;
          for (const [k, u] of this.unanswered) if (u.at < old && u.waiters.length === 0) this.unanswered.delete(k);
          await this.matchEarly();
        },
        onError,
      ),
      new Repeat(this.clock, SWEEP_MS, () => this.sweepNow(), onError),
    ];
    this.outbox.start(onError);
    void this.drain();
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loops) l.stop();
    this.loops = [];
    this.outbox.stop();
    for (const u of this.unanswered.values()) for (const w of u.waiters) w();
    this.unanswered.clear();
  }

  /** Remove journal rows past their expiry by the wall clock (what the sweep loop runs every minute). */
  async sweepNow(): Promise<void> {
    const now = this.clock.wall();
    const n = await this.store.sweep(now, now - EARLY_SWEEP_GRACE_MS);
    if (n > 0) this.log.debug({ swept: n }, 'forward journal: expired rows removed');
  }

  /** The timer loops running (one handle each; for tests). */
  get timerLoops(): number {
    return this.loops.filter((l) => l.armed).length + (this.outbox.armed ? 1 : 0);
  }

  /** A bind of `tenant` came up: its queued messages are due now. */
  bindUp(tenant: string): void {
    if (this.stopped) return;
    void this.store
      .wake(tenant, this.clock.wall())
      .then(() => this.drain())
      .catch((err: Error) => this.log.warn({ tenant, err: err.message }, 'forward journal: store error'));
  }

  /** The ESME was answered for `id` (its submit_sm_resp went out): receipts waiting for that may go. */
  answered(tenant: string, id: string): void {
    const k = msgKey(tenant, id);
    const u = this.unanswered.get(k);
    if (!u) return;
    this.unanswered.delete(k);
    for (const w of u.waiters) w();
  }

  /** `smpp.forward(pdu, opts)`: whatever the PDU is, send it where it belongs. */
  async forward(tenant: string, req: ForwardRequest): Promise<ForwardResult> {
    const rt = this.host.tenant(tenant);
    if (!rt) throw new SluiceError('UNKNOWN_TENANT');
    const s = req.session;
    if (s.kind === 'esme') {
      if (!rt.config.system_ids.includes(s.systemId)) throw new SluiceError('UNKNOWN_SESSION', 'not a session of this tenant');
      if (SUBMITS.has(req.command)) return this.submit(tenant, rt, req);
      if (req.command === 'query_sm' || req.command === 'cancel_sm' || req.command === 'replace_sm') return this.manage(tenant, rt, req);
    } else if (req.command === 'deliver_sm' || req.command === 'data_sm') {
      const bind = s.bind === undefined ? undefined : rt.binds.get(s.bind);
      if (!bind) throw new SluiceError('UNKNOWN_BIND', 'not a bind of this tenant');
      const receipt = req.to === undefined ? asReceipt(req.fields) : undefined;
      if (receipt) return this.receipt(tenant, bind, receipt);
      if (req.to === undefined) throw new SluiceError('INVALID_FIELD', 'an MO message (not a delivery receipt) needs { to: systemId }');
      return this.mo(tenant, rt.config, req);
    }
    throw new SluiceError('INVALID_FIELD', `${req.command} from ${s.kind === 'esme' ? 'an ESME' : 'an SMSC'} cannot be forwarded`);
  }

  // ---- submits ------------------------------------------------------------------------

  private chainFor(cfg: TenantConfig, req: ForwardRequest): readonly string[] {
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

  private async submit(tenant: string, rt: { config: TenantConfig; binds: ReadonlyMap<string, OutboundBind> }, req: ForwardRequest): Promise<ForwardResult> {
    const cfg = rt.config;
    const chain = this.chainFor(cfg, req);
    const now = this.clock.wall();
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
    const c = this.count(tenant);
    for (let i = 0; i < chain.length; i++) {
      const step = chain[i]!;
      if (step.startsWith('bind:')) {
        const out = await this.trySend(tenant, rt, step.slice(5), req.command, req.fields, req.unknownTlvs);
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
        await this.write([{ t: 'put', correlates: true, row: this.sentRow(tenant, out.bind, data) }]);
        c.forwarded++;
        this.expectAnswer(tenant, data.id);
        return { ok: true, command_status: 'ESME_ROK', message_id: data.id, via: out.bind };
      }
      if (step === 'queue') {
        // From the queue it may take any bind of its chain, the ones before this step included.
        data.chain = chain.filter((x) => x.startsWith('bind:'));
        data.f = bytesToJson(req.fields);
        if (req.unknownTlvs) data.tlv = bytesToJson(req.unknownTlvs);
        const route = data.chain[0]?.slice(5) ?? null;
        await this.write([{ t: 'put', row: { key: msgKey(tenant, data.id), tenant, up: null, state: MSG_QUEUED, due: now + cfg.queue.retry_ms, expires: exp, created: now, route, data: JSON.stringify(data) } }]);
        c.queued++;
        this.expectAnswer(tenant, data.id);
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

  /** A journal write; a store that fails is STORE_UNAVAILABLE, and nothing was acknowledged. */
  private write(ops: ForwardOp[]): Promise<void> {
    return this.journal(() => this.store.write(ops));
  }

  /** A journal write of any kind (`write`, `park`): a store that fails is STORE_UNAVAILABLE, logged once per outage. */
  private async journal<T>(fn: () => Promise<T>): Promise<T> {
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      // One line when writes start failing, not one per message (the store's health check says when they work again).
      if (this.writeFailures++ === 0) this.log.error({ err: (err as Error).message }, 'forward journal: write failed; messages are refused until the store can be written');
      throw new SluiceError('STORE_UNAVAILABLE', 'the message store could not be written');
    }
    if (this.writeFailures > 0) {
      this.log.info({ failed_writes: this.writeFailures }, 'forward journal: writes work again');
      this.writeFailures = 0;
    }
    return out;
  }

  /** The upstream account of `bind` and how it writes receipt ids (its `receipt_id`: one per account, the config loader checks). */
  private accountOf(tenant: string, bind: string): { account: string; form: ReceiptIdForm } {
    const cfg = this.host.tenant(tenant)?.binds.get(bind)?.cfg;
    // A bind gone in a config reload: its name stands for its account until its rows age out.
    if (!cfg) return { account: `bind:${bind}`, form: 'auto' };
    return { account: accountOf(cfg), form: cfg.receipt_id as ReceiptIdForm };
  }

  /** The correlation key of a message `bind` took under upstream id `uid`: its account's, not the bind's. */
  private sentUp(tenant: string, bind: string, uid: string | undefined): string {
    const a = this.accountOf(tenant, bind);
    return upKey(tenant, a.account, storedIdKey(a.form, uid ?? ''));
  }

  private sentRow(tenant: string, bind: string, data: MsgData): MsgRow {
    const rt = this.host.tenant(tenant);
    const ttl = rt?.config.receipts.ttl_ms ?? defaultOf('tenants', 'receipts', 'ttl_ms');
    delete data.f;
    delete data.tlv;
    delete data.chain;
    return { key: msgKey(tenant, data.id), tenant, up: this.sentUp(tenant, bind, data.uid), state: MSG_SENT, due: 0, expires: data.at + ttl, created: data.at, route: null, data: JSON.stringify(data) };
  }

  /**
   * One bind step: skipped (down, standby, throttled, or refused for now
   * before anything was accepted), accepted with the upstream's id, refused
   * for good with a status, or uncertain (it left and no answer came).
   */
  private async trySend(
    tenant: string,
    rt: { binds: ReadonlyMap<string, OutboundBind> },
    name: string,
    command: string,
    fields: Record<string, unknown>,
    tlvs: readonly UnknownTlv[] | undefined,
  ): Promise<{ kind: 'skip' } | { kind: 'uncertain'; bind: string } | { kind: 'refused'; bind: string; status: string } | { kind: 'sent'; bind: string; id: string }> {
    const bind = rt.binds.get(name);
    if (!bind || bind.state !== 'bound') return { kind: 'skip' };
    let resp: WirePdu;
    try {
      resp = await bind.request(command, fields, tlvs);
    } catch (err) {
      if (isSluiceError(err) && (err.code === 'BIND_DOWN' || err.code === 'THROTTLED' || err.sent === false)) return { kind: 'skip' };
      if (isSluiceError(err) && (err.code === 'TIMEOUT' || err.code === 'SESSION_CLOSED')) {
        this.log.warn({ tenant, bind: name, err: err.message }, 'forward: no answer from the upstream after the message left; not sent again');
        return { kind: 'uncertain', bind: name };
      }
      throw err;
    }
    if (resp.command_status === 0) return { kind: 'sent', bind: name, id: typeof resp.fields.message_id === 'string' ? resp.fields.message_id : '' };
    if (TRANSIENT.has(resp.command_status)) return { kind: 'skip' };
    return { kind: 'refused', bind: name, status: statusName(resp.command_status) };
  }

  private expectAnswer(tenant: string, id: string): void {
    this.unanswered.set(msgKey(tenant, id), { at: this.clock.now(), waiters: [] });
  }

  /** Resolves once the ESME had its submit_sm_resp for `key`, or after `maxMs` (the policy answered something else, or its deadline passed). */
  private afterAnswer(key: string, maxMs: number): Promise<void> {
    const u = this.unanswered.get(key);
    if (!u) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(() => {
        this.unanswered.delete(key);
        resolve();
      }, Math.max(0, u.at + maxMs - this.clock.now()));
      u.waiters.push(() => {
        this.clock.clearTimeout(t);
        resolve();
      });
    });
  }

  // ---- the queue ----------------------------------------------------------------------

  /** Claim due queued messages and send them on, round after round while there are. */
  async drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        // Tenants with a bind up here send their own queue; every fourth round (2 s) all tenants are
        // looked at, so messages expire on time while every bind is down (or held by another replica).
        const all = ++this.rounds % 4 === 0;
        const tenants = this.host.tenantIds().filter((t) => all || [...(this.host.tenant(t)?.binds.values() ?? [])].some((b) => b.state === 'bound'));
        for (;;) {
          if (this.stopped) return;
          const now = this.clock.wall();
          const rows = await this.store.claimDue(tenants, now, now + this.claimMs(), CLAIM_BATCH);
          if (rows.length === 0) break;
          await Promise.all(rows.map((r) => this.retry(r).catch((err: Error) => this.log.warn({ err: err.message }, 'forward: queued message not handled; offered again later'))));
          if (rows.length < CLAIM_BATCH) break;
        }
      } while (this.drainAgain);
      // Receipts a process that died left undelivered: once per drain, not per round of the queue.
      await this.outbox.takeOver(this.host.tenantIds(), () => this.stopped);
    } finally {
      this.draining = false;
    }
  }

  /** How long a claimed queued message is ours: long enough to try every bind of a chain once. */
  private claimMs(): number {
    let longest = 0;
    let most = 1;
    for (const t of this.host.tenantIds()) {
      const binds = [...(this.host.tenant(t)?.binds.values() ?? [])];
      most = Math.max(most, binds.length);
      for (const b of binds) longest = Math.max(longest, b.responseTimeoutMs);
    }
    return longest * most + 2000;
  }

  private async retry(row: MsgRow): Promise<void> {
    const rt = this.host.tenant(row.tenant);
    const data = JSON.parse(row.data) as MsgData;
    const now = this.clock.wall();
    if (!rt) return;
    const c = this.count(row.tenant);
    if (now >= data.exp) {
      c.expired++;
      await this.finish(row.tenant, data, 'EXPIRED', '000', now);
      return;
    }
    const fields = jsonToBytes(data.f) as Record<string, unknown>;
    const tlvs = data.tlv === undefined ? undefined : (jsonToBytes(data.tlv) as UnknownTlv[]);
    let tried = false;
    for (const step of data.chain ?? []) {
      const out = await this.trySend(row.tenant, rt, step.slice(5), data.cmd, fields, tlvs);
      if (out.kind === 'skip') continue;
      tried = true;
      data.n++;
      if (out.kind === 'sent') {
        data.bind = out.bind;
        data.uid = out.id;
        await this.write([{ t: 'put', correlates: true, row: this.sentRow(row.tenant, out.bind, data) }]);
        c.retried++;
        c.forwarded++;
        return;
      }
      if (out.kind === 'refused') {
        c.rejected++;
        await this.finish(row.tenant, data, 'UNDELIV', String(statusValue(out.status)).padStart(3, '0'), now);
        return;
      }
      // Uncertain: the ESME has its ESME_ROK, so the core owns the message; it is tried again
      // later (at least once: the upstream may get it twice).
      c.uncertain++;
      break;
    }
    if (!tried) data.n++;
    const cfg = rt.config.queue;
    const delay = doubling(cfg.retry_ms, data.n + 1, cfg.retry_max_ms);
    const due = Math.min(now + delay, data.exp);
    await this.write([{ t: 'put', row: { ...row, due, data: JSON.stringify(data) } }]);
  }

  /** A message that ends without an upstream receipt (expired, refused from the queue): a receipt of our own if the ESME asked for one. */
  private async finish(tenant: string, data: MsgData, stat: string, err: string, now: number): Promise<void> {
    data.stat = stat;
    data.done = now;
    data.err = err;
    await this.commitWithReceipt(tenant, this.finalRow(tenant, data), data, undefined);
  }

  /**
   * Write a message's row and, if its ESME asked for this state, the receipt
   * it is due, into the outbox in the same commit: once that is durable the
   * upstream may be answered; the ESME gets it on its own flow, not in the
   * upstream's window.
   */
  private async commitWithReceipt(tenant: string, row: MsgRow, data: MsgData, r: Receipt | undefined, via?: ReceiptVia): Promise<void> {
    const outbox = wantsReceipt(data.rd, data.stat ?? 'UNKNOWN') ? this.receiptOut(tenant, data, r) : undefined;
    await this.write(outbox ? [{ t: 'put', row }, { t: 'put', row: outbox.row }] : [{ t: 'put', row }]);
    if (!outbox) return;
    const delivered = this.outbox.deliver(outbox);
    const t = this.host.telemetry;
    if (via && t?.active) void delivered.then((now) => now && t.receiptDelivered(tenant, via.bind, Math.max(0, this.clock.wall() - via.at)));
  }

  private finalRow(tenant: string, data: MsgData): MsgRow {
    const rt = this.host.tenant(tenant);
    const keep = rt?.config.receipts.dedupe_ms ?? defaultOf('tenants', 'receipts', 'dedupe_ms');
    const slim: MsgData = { sys: data.sys, sid: data.sid, id: data.id, cmd: data.cmd, src: data.src, dst: data.dst, rd: data.rd, at: data.at, exp: data.exp, n: data.n };
    for (const k of ['bind', 'uid', 'stat', 'done', 'err'] as const) if (data[k] !== undefined) (slim as unknown as Record<string, unknown>)[k] = data[k];
    const up = data.bind === undefined ? null : this.sentUp(tenant, data.bind, data.uid);
    return { key: msgKey(tenant, data.id), tenant, up, state: MSG_FINAL, due: 0, expires: this.clock.wall() + keep, created: data.at, route: null, data: JSON.stringify(slim) };
  }

  // ---- receipts ---------------------------------------------------------------------------

  private async receipt(tenant: string, bind: OutboundBind, r: Receipt): Promise<ForwardResult> {
    const c = this.count(tenant);
    c.receipts++;
    const via: ReceiptVia = { bind: bind.cfg.name, at: this.clock.wall() };
    const ups = this.receiptUps(tenant, bind.cfg.name, r.id);
    let row = await this.lookUp(tenant, bind.cfg.name, r.id, ups);
    if (!row) {
      // Before its submit_sm_resp (or for a message we never had): parked under every key it
      // may belong to, matched when the response is written, dropped after receipts.early_ttl_ms.
      // Parking and the response's commit meet in the store: whichever lands second sees the other.
      const rt = this.host.tenant(tenant)!;
      const rid = `${r.id}\u0000${r.stat}`;
      const early: EarlyData = { bind: bind.cfg.name, ups, r, at: via.at };
      const data = JSON.stringify(early);
      const expires = this.clock.wall() + rt.config.receipts.early_ttl_ms;
      if (await this.park(ups.map((up) => ({ up, rid, expires, data })))) {
        c.receiptsEarly++;
        this.told(tenant, via.bind, r.stat, 'early');
        return { ok: true, command_status: 'ESME_ROK', matched: false, early: true };
      }
      // Its message's correlation was written meanwhile (here or on another replica).
      row = firstByUp(await this.store.byUp(ups), ups);
      if (!row) {
        // Written and swept since: the message ended long ago.
        c.receiptsDuplicate++;
        this.told(tenant, via.bind, r.stat, 'duplicate');
        return { ok: true, command_status: 'ESME_ROK', matched: true, duplicate: true };
      }
    }
    return this.applyFound(tenant, row, r, via);
  }

  /** A receipt counted by stat and what correlation made of it (metrics). */
  private told(tenant: string, bind: string, stat: string, outcome: ReceiptOutcome): void {
    const t = this.host.telemetry;
    if (t?.active) t.receipt(tenant, bind, statLabel(stat), outcome);
  }

  /** Apply `r` to the message row just read: current unless another receipt of it was being applied meanwhile. */
  private applyFound(tenant: string, row: MsgRow, r: Receipt, via: ReceiptVia): Promise<ForwardResult> {
    return this.serialised(row.key, (contended) => this.applyReceipt(tenant, row.key, r, via, contended ? undefined : row));
  }

  /**
   * A receipt whose policy could not run (it threw, timed out, its sandbox
   * was lost): applied by the core if its message is in the journal (true),
   * so an upstream that does not send it again loses nothing. Anything else
   * (not a receipt, a message the journal does not know): false.
   */
  async rescueReceipt(tenant: string, bind: string, command: string, fields: Record<string, unknown>): Promise<boolean> {
    if (command !== 'deliver_sm' && command !== 'data_sm') return false;
    const receipt = asReceipt(fields);
    if (!receipt || !this.host.tenant(tenant)?.binds.has(bind)) return false;
    const row = await this.lookUp(tenant, bind, receipt.id, this.receiptUps(tenant, bind, receipt.id));
    if (!row) return false;
    this.count(tenant).receipts++;
    await this.applyFound(tenant, row, receipt, { bind, at: this.clock.wall() });
    return true;
  }

  /** An early receipt filed durably (the upstream may be answered), or false: a message has one of its keys. */
  private park(rows: EarlyRow[]): Promise<boolean> {
    return this.journal(() => this.store.park(rows));
  }

  /** Every correlation key a receipt id that came on `bind` may stand for, in its account, most likely first. */
  private receiptUps(tenant: string, bind: string, id: string): string[] {
    const a = this.accountOf(tenant, bind);
    return receiptIdKeys(a.form, id).map((k) => upKey(tenant, a.account, k));
  }

  /** The message a receipt id names: under its account's keys, else (a second read, only on a miss) as rows written before accounts were keyed (by bind). */
  private async lookUp(tenant: string, bind: string, id: string, ups: string[]): Promise<MsgRow | undefined> {
    const row = firstByUp(await this.store.byUp(ups), ups);
    if (row) return row;
    const legacy = receiptIdKeys(this.accountOf(tenant, bind).form, id).map((k) => bindUpKey(tenant, bind, k));
    return firstByUp(await this.store.byUp(legacy), legacy);
  }

  /** Run `fn` after every earlier call for `key`; it is told whether it had to wait for one. */

  private async serialised<T>(key: string, fn: (contended: boolean) => Promise<T>): Promise<T> {
    const held = this.receiptLocks.get(key);
    const prev = held ?? Promise.resolve();
    const go = (): Promise<T> => fn(held !== undefined);
    const run = prev.then(go, go);
    const tail = run.catch(() => undefined);
    this.receiptLocks.set(key, tail);
    void tail.then(() => {
      if (this.receiptLocks.get(key) === tail) this.receiptLocks.delete(key);
    });
    return run;
  }

  /** A receipt for a known message: delivered to the ESME once per state, then the journal says so. */
  private async applyReceipt(tenant: string, key: string, r: Receipt, via: ReceiptVia, current?: MsgRow): Promise<ForwardResult> {
    const c = this.count(tenant);
    const [row] = current ? [current] : await this.store.get([key]);
    if (!row || row.state === MSG_FINAL) {
      c.receiptsDuplicate++;
      this.told(tenant, via.bind, r.stat, 'duplicate');
      return { ok: true, command_status: 'ESME_ROK', matched: true, duplicate: true };
    }
    const data = JSON.parse(row.data) as MsgData;
    const stat = r.stat;
    const final = FINAL_STATS.has(stat);
    if (!final && data.stat === stat) {
      c.receiptsDuplicate++;
      this.told(tenant, via.bind, r.stat, 'duplicate');
      return { ok: true, command_status: 'ESME_ROK', matched: true, duplicate: true };
    }
    const now = this.clock.wall();
    data.stat = stat;
    if (r.err !== undefined) data.err = r.err;
    if (final) data.done = now;
    const last = final && (data.left === undefined || --data.left <= 0);
    this.told(tenant, via.bind, stat, 'matched');
    await this.commitWithReceipt(tenant, last ? this.finalRow(tenant, data) : { ...row, data: JSON.stringify(data) }, data, r, via);
    return { ok: true, command_status: 'ESME_ROK', matched: true };
  }

  /** The receipt the ESME gets (our id in the body and in receipted_message_id, with message_state), as an outbox row. */
  private receiptOut(tenant: string, data: MsgData, r: Receipt | undefined): OutboxEntry {
    const stat = data.stat ?? 'UNKNOWN';
    const now = this.clock.wall();
    const body =
      `id:${data.id} sub:${r?.sub ?? '001'} dlvrd:${r?.dlvrd ?? (stat === 'DELIVRD' ? '001' : '000')} ` +
      `submit date:${r?.submit_date ?? receiptDate(data.at)} done date:${r?.done_date ?? receiptDate(data.done ?? now)} ` +
      `stat:${stat} err:${data.err ?? '000'} text:${(r?.text ?? '').slice(0, 20)}`;
    const fields: Record<string, unknown> = {
      source_addr: data.dst,
      destination_addr: data.src,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(body, 'latin1'),
      receipted_message_id: data.id,
      message_state: MESSAGE_STATE_OF[stat] ?? 7,
    };
    return this.outbox.entry(tenant, msgKey(tenant, data.id), { sys: data.sys, sid: data.sid, id: data.id }, fields);
  }

  /**
   * Early receipts whose message is known now (parked here or by another
   * replica, before a restart, or while its response was being committed):
   * matched; those unmatched past receipts.early_ttl_ms: counted and dropped.
   */
  private async matchEarly(): Promise<void> {
    const ready = await this.store.earlyMatchable(500);
    if (ready.length > 0) await this.matchEarlyFor([...new Set(ready.map((r) => r.up))]);
    const expired = await this.store.earlyExpired(this.clock.wall(), 500);
    if (expired.length === 0) return;
    // Its message may have been written since the last look.
    const known = new Set((await this.store.byUp([...new Set(expired.map((e) => e.up))])).map((m) => m.up));
    const gone = expired.filter((e) => !known.has(e.up));
    const perTenant = new Map<string, number>();
    const seen = new Set<string>();
    for (const e of gone) {
      const tenant = decodeURIComponent(e.up.split('/')[0]!);
      const id = `${tenant}\u0000${e.rid}`;
      if (seen.has(id)) continue;
      seen.add(id);
      perTenant.set(tenant, (perTenant.get(tenant) ?? 0) + 1);
      const early = JSON.parse(e.data) as EarlyData;
      this.told(tenant, early.bind, early.r.stat, 'unmatched');
    }
    for (const [tenant, n] of perTenant) {
      this.count(tenant).receiptsUnmatched += n;
      this.log.info({ tenant, receipts: n }, 'delivery receipts matched no message within receipts.early_ttl_ms; dropped');
    }
    await this.write(gone.map((e) => ({ t: 'unearly', up: e.up, rid: e.rid })));
  }

  /** Early receipts filed under `ups` whose message is known: applied, then every copy of each dropped. */
  private async matchEarlyFor(ups: string[]): Promise<void> {
    const early = await this.store.early(ups);
    if (early.length === 0) return;
    const msgs = await this.store.byUp([...new Set(early.map((e) => e.up))]);
    // One receipt may be parked under several keys: each receipt is handled once.
    const seen = new Set<string>();
    for (const e of early) {
      const msg = msgs.find((m) => m.up === e.up);
      if (!msg) continue;
      const { bind, ups: filed, r, at } = JSON.parse(e.data) as EarlyData;
      const id = `${msg.key}\u0000${e.rid}`;
      if (seen.has(id)) continue;
      seen.add(id);
      await this.serialised(msg.key, () => this.applyReceipt(msg.tenant, msg.key, r, { bind, at: at ?? this.clock.wall() }));
      // Filed under every key it may stand for, not only those looked at here: all go.
      const copies = await this.store.early(filed ?? this.receiptUps(msg.tenant, bind, r.id));
      await this.write(copies.filter((x) => x.rid === e.rid).map((x) => ({ t: 'unearly', up: x.up, rid: e.rid })));
    }
  }

  // ---- MO and message management ---------------------------------------------------------------

  private async mo(tenant: string, cfg: TenantConfig, req: ForwardRequest): Promise<ForwardResult> {
    const to = String(req.to);
    if (!cfg.system_ids.includes(to)) throw new SluiceError('UNKNOWN_SESSION', `no ESME "${to.slice(0, 40)}" in this tenant`);
    const d = await this.host.deliverToEsme(tenant, to, undefined, req.command, req.fields, req.unknownTlvs);
    this.count(tenant).mo++;
    if (d.kind === 'refused') return { ok: false, command_status: d.status };
    return d.kind === 'held' ? { ok: true, command_status: 'ESME_ROK', held: true } : { ok: true, command_status: 'ESME_ROK' };
  }

  /** query_sm, cancel_sm and replace_sm for a message the core has: answered from the journal, or passed upstream for a sent one. */
  private async manage(tenant: string, rt: { config: TenantConfig; binds: ReadonlyMap<string, OutboundBind> }, req: ForwardRequest): Promise<ForwardResult> {
    const cmd = req.command;
    const fail = cmd === 'query_sm' ? 'ESME_RQUERYFAIL' : cmd === 'cancel_sm' ? 'ESME_RCANCELFAIL' : 'ESME_RREPLACEFAIL';
    const id = String(req.fields.message_id ?? '');
    const key = msgKey(tenant, id);
    return this.serialised(key, async () => {
      const [row] = id === '' ? [undefined] : await this.store.get([key]);
      if (!row) return { ok: false, command_status: fail };
      const data = JSON.parse(row.data) as MsgData;
      if (data.sys !== req.session.systemId) return { ok: false, command_status: fail };
      if (cmd === 'query_sm') {
        const state = row.state === MSG_FINAL ? (MESSAGE_STATE_OF[data.stat ?? 'UNKNOWN'] ?? 7) : data.stat === 'ACCEPTD' ? 6 : 1;
        const out: ForwardResult = { ok: true, command_status: 'ESME_ROK', message_id: id, message_state: state, final_date: row.state === MSG_FINAL && data.done ? `${receiptDate(data.done)}00000+` : '', error_code: 0 };
        return out;
      }
      if (row.state === MSG_FINAL) return { ok: false, command_status: fail };
      if (row.state === MSG_QUEUED) {
        if (cmd === 'cancel_sm') {
          data.stat = 'DELETED';
          data.done = this.clock.wall();
          await this.write([{ t: 'put', row: this.finalRow(tenant, data) }]);
          return { ok: true, command_status: 'ESME_ROK' };
        }
        const f = jsonToBytes(data.f) as Record<string, unknown>;
        for (const k of ['short_message', 'registered_delivery', 'validity_period', 'schedule_delivery_time', 'sm_default_msg_id'] as const) {
          if (req.fields[k] !== undefined && req.fields[k] !== '') f[k] = req.fields[k];
        }
        if (typeof req.fields.validity_period === 'string' && req.fields.validity_period !== '') {
          try {
            data.exp = smppTimeToMs(req.fields.validity_period, this.clock.wall()) ?? data.exp;
          } catch {
            return { ok: false, command_status: 'ESME_RINVEXPIRY' };
          }
        }
        data.rd = Number(f.registered_delivery ?? data.rd);
        data.f = bytesToJson(f);
        await this.write([{ t: 'put', row: { ...row, expires: data.exp, data: JSON.stringify(data) } }]);
        return { ok: true, command_status: 'ESME_ROK' };
      }
      // Sent: the upstream has it under its own id, on the bind that took it.
      const bind = data.bind === undefined ? undefined : rt.binds.get(data.bind);
      if (!bind || bind.state !== 'bound') return { ok: false, command_status: fail };
      const up: Record<string, unknown> = { ...req.fields, message_id: data.uid ?? '' };
      let resp: WirePdu;
      try {
        const wire = toWireFields(cmd, up);
        resp = await bind.request(cmd, wire.fields);
      } catch {
        return { ok: false, command_status: fail };
      }
      if (resp.command_status !== 0) return { ok: false, command_status: statusName(resp.command_status) };
      if (cmd === 'cancel_sm') {
        data.stat = 'DELETED';
        data.done = this.clock.wall();
        await this.write([{ t: 'put', row: this.finalRow(tenant, data) }]);
      }
      return { ok: true, command_status: 'ESME_ROK' };
    });
  }
}

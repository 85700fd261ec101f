import type { ForwardStore } from '../cache/forward-store';
import type { TenantConfig } from '../config/schema';
import { SluiceError } from '../errors';
import { Repeat, type Clock } from '../util/clock';
import { EarlyReceipts } from './early-receipts';
import { EsmeReceipts } from './esme-receipts';
import { ForwardCounts, type ForwardCounters } from './counters';
import type { ForwarderHost } from './host';
import { Journal } from './journal';
import { Management } from './management';
import { asReceipt, SUBMITS, type ForwardRequest, type ForwardResult } from './messages';
import { Queue } from './queue';
import { Receipts } from './receipts';
import { Submits } from './submits';

export type { ForwardCounters } from './counters';
export type { ForwarderHost } from './host';

/**
 * Store and forward, owned by the core (docs/design.md, "The boundary": on the wire or on a
 * clock). A policy decides *that* a PDU goes on (`smpp.forward`); the core
 * walks the tenant's routing chain, keeps every message it accepted in the
 * durable journal until its final receipt, retries queued messages on its
 * own timers until they expire, correlates receipts per upstream account (a
 * receipt may come on any session of the account, on any replica), holds
 * receipts that come before their submit_sm_resp, and routes receipts and
 * MO messages back to the ESME (or into the held store).
 *
 * A message is answered ESME_ROK only once an upstream accepted it or it is
 * durably queued; its receipt goes to the ESME only after the ESME had its
 * submit_sm_resp; one receipt at a time per message. Times kept in the
 * journal are wall-clock (clock.wall()); the monotonic clock only times this
 * process's own waits.
 *
 * This file sends each PDU to the part that owns it and runs their loops:
 *
 * - submits.ts: the routing chain of a submit, and one bind step (also the queue's);
 * - queue.ts: queued messages claimed, retried with backoff, expired;
 * - receipts.ts: a receipt correlated to its message and applied, or parked as early;
 * - early-receipts.ts: parked receipts matched later, or dropped;
 * - esme-receipts.ts: the receipt an ESME gets, committed to the outbox, delivered after its submit_sm_resp;
 * - management.ts: query_sm, cancel_sm, replace_sm;
 * - journal.ts: the writes, row shapes, correlation keys and the per-message lock they share;
 * - counters.ts: what each part counts per tenant (metrics); host.ts: what it needs of the gateway;
 * - outbox.ts, messages.ts, receipt-ids.ts, smpp-time.ts: the outbox, the vocabulary, id forms, SMPP times.
 */

/** How often the queue is looked at when nothing woke it. */
const QUEUE_POLL_MS = 500;
const EARLY_POLL_MS = 1000;
const SWEEP_MS = 60_000;

/** An early receipt unmatched this long after its early_ttl_ms is swept without being counted (the poll counts and drops it first). */
const EARLY_SWEEP_GRACE_MS = 300_000;

export class Forwarder {
  private readonly counts = new ForwardCounts();
  /** Every tenant's counters (metrics). */
  readonly counters: ReadonlyMap<string, ForwardCounters> = this.counts.byTenant;
  private loops: Repeat[] = [];
  /** Between start and stop (a receipt held for the store gives up at stop). */
  private running = false;
  private readonly esme: EsmeReceipts;
  private readonly submits: Submits;
  private readonly queue: Queue;
  private readonly receipts: Receipts;
  private readonly early: EarlyReceipts;
  private readonly management: Management;

  constructor(
    private readonly host: ForwarderHost,
    readonly store: ForwardStore,
  ) {
    const clock = host.clock;
    const log = host.logger;
    const counts = this.counts;
    const journal = new Journal(host, store);
    const esme = (this.esme = new EsmeReceipts(host, journal));
    this.submits = new Submits({ clock, log, journal, esme, counts });
    this.queue = new Queue({ clock, log, host, journal, esme, counts });
    const receipts = (this.receipts = new Receipts({ clock, host, journal, esme, counts, running: () => this.running }));
    this.early = new EarlyReceipts({ clock, log, journal, receipts, counts });
    this.management = new Management({ clock, journal });
    // Correlation keys just committed that have early receipts parked under them (by any process).
    store.onEarly = (ups) => void this.early.matchFor(ups).catch((err: Error) => log.warn({ err: err.message }, 'forward: early receipt not matched yet'));
  }

  private get clock(): Clock {
    return this.host.clock;
  }

  /** A tenant's counters (created on first use). */
  count(tenant: string): ForwardCounters {
    return this.counts.of(tenant);
  }

  start(): void {
    this.running = true;
    this.queue.start();
    const onError = (err: Error): void => this.host.logger.warn({ err: err.message }, 'forward journal: store error');
    this.loops = [
      new Repeat(this.clock, QUEUE_POLL_MS, () => this.queue.drain(), onError),
      new Repeat(
        this.clock,
        EARLY_POLL_MS,
        async () => {
          // An id whose answer never went out (the policy answered something else, or missed its deadline).
          this.esme.forgetUnanswered(this.clock.now() - 60_000);
          await this.early.poll();
        },
        onError,
      ),
      new Repeat(this.clock, SWEEP_MS, () => this.sweepNow(), onError),
    ];
    this.esme.start(onError);
    void this.queue.drain();
  }

  stop(): void {
    this.running = false;
    this.queue.stop();
    for (const l of this.loops) l.stop();
    this.loops = [];
    this.esme.stop();
  }

  /** Remove journal rows past their expiry by the wall clock (what the sweep loop runs every minute). */
  async sweepNow(): Promise<void> {
    const now = this.clock.wall();
    const n = await this.store.sweep(now, now - EARLY_SWEEP_GRACE_MS);
    if (n > 0) this.host.logger.debug({ swept: n }, 'forward journal: expired rows removed');
  }

  /** The timer loops running (one handle each; for tests). */
  get timerLoops(): number {
    return this.loops.filter((l) => l.armed).length + (this.esme.armed ? 1 : 0);
  }

  /** A bind of `tenant` came up: its queued messages are due now. */
  bindUp(tenant: string): void {
    this.queue.wake(tenant);
  }

  /** The ESME was answered for `id` (its submit_sm_resp went out): receipts waiting for that may go. */
  answered(tenant: string, id: string): void {
    this.esme.answered(tenant, id);
  }

  /** `smpp.forward(pdu, opts)`: whatever the PDU is, send it where it belongs. */
  async forward(tenant: string, req: ForwardRequest): Promise<ForwardResult> {
    const rt = this.host.tenant(tenant);
    if (!rt) throw new SluiceError('UNKNOWN_TENANT');
    const s = req.session;
    if (s.kind === 'esme') {
      if (!rt.config.system_ids.includes(s.systemId)) throw new SluiceError('UNKNOWN_SESSION', 'not a session of this tenant');
      if (SUBMITS.has(req.command)) return this.submits.submit(tenant, rt, req);
      if (req.command === 'query_sm' || req.command === 'cancel_sm' || req.command === 'replace_sm') return this.management.manage(tenant, rt, req);
    } else if (req.command === 'deliver_sm' || req.command === 'data_sm') {
      const bind = s.bind === undefined ? undefined : rt.binds.get(s.bind);
      if (!bind) throw new SluiceError('UNKNOWN_BIND', 'not a bind of this tenant');
      const receipt = req.to === undefined ? asReceipt(req.fields) : undefined;
      if (receipt) return this.receipts.receipt(tenant, bind, receipt);
      if (req.to === undefined) throw new SluiceError('INVALID_FIELD', 'an MO message (not a delivery receipt) needs { to: systemId }');
      return this.mo(tenant, rt.config, req);
    }
    throw new SluiceError('INVALID_FIELD', `${req.command} from ${s.kind === 'esme' ? 'an ESME' : 'an SMSC'} cannot be forwarded`);
  }

  /**
   * A receipt whose policy could not run (it threw, timed out, its sandbox
   * was lost): applied by the core if its message is in the journal (true),
   * so an upstream that does not send it again loses nothing. Anything else
   * (not a receipt, a message the journal does not know): false.
   */
  rescueReceipt(tenant: string, bind: string, command: string, fields: Record<string, unknown>): Promise<boolean> {
    return this.receipts.rescue(tenant, bind, command, fields);
  }

  /** An MO message (a deliver_sm or data_sm that is not a receipt) for the ESME the policy names: delivered, or held for its next session. */
  private async mo(tenant: string, cfg: TenantConfig, req: ForwardRequest): Promise<ForwardResult> {
    const to = String(req.to);
    if (!cfg.system_ids.includes(to)) throw new SluiceError('UNKNOWN_SESSION', `no ESME "${to.slice(0, 40)}" in this tenant`);
    const d = await this.host.deliverToEsme(tenant, to, undefined, req.command, req.fields, { unknownTlvs: req.unknownTlvs });
    this.counts.of(tenant).mo++;
    if (d.kind === 'refused') return { ok: false, command_status: d.status };
    return d.kind === 'held' ? { ok: true, command_status: 'ESME_ROK', held: true } : { ok: true, command_status: 'ESME_ROK' };
  }
}

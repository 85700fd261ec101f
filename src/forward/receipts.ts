import { MSG_FINAL, type MsgRow } from '../cache/forward-store';
import type { OutboundBind } from '../binds/outbound-bind';
import type { Receipt } from '../pdu/dlr';
import { statLabel, type ReceiptOutcome } from '../telemetry';
import type { Clock } from '../util/clock';
import { isSluiceError } from '../errors';
import type { EsmeReceipts } from './esme-receipts';
import type { ForwardCounts } from './counters';
import type { ForwarderHost } from './host';
import type { Journal } from './journal';
import { asReceipt, bindUpKey, FINAL_STATS, firstByUp, type ForwardResult, type MsgData, type ReceiptVia } from './messages';
import { receiptIdKeys } from './receipt-ids';

/**
 * Receipt correlation (docs/design.md, "Receipts"): a receipt from an
 * upstream found by its account's correlation keys (on any session of the
 * account, on any replica), applied to its message once per state, one
 * receipt at a time per message (the journal's lock), and committed with the
 * receipt its ESME is due (esme-receipts.ts). A receipt whose message is not
 * in the journal yet is parked as early; early-receipts.ts matches it later.
 */

/** What an early receipt row keeps: the bind it came on, every key it is filed under, the receipt. */
export interface EarlyData {
  bind: string;
  ups?: string[];
  r: Receipt;
  /** When it came (wall clock; absent in rows written before it was kept). */
  at?: number;
}

/**
 * How long a receipt waits, unanswered, for a store that cannot be written
 * (retrying at RETRY_FIRST_MS doubling to RETRY_MAX_MS), before its upstream
 * is answered ESME_RSYSERR. An upstream that sends a receipt once, and never
 * again, loses nothing to an outage shorter than this.
 */
export const RECEIPT_HOLD_MS = 30_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

/** What correlation needs of the other parts of store and forward. */
export interface ReceiptDeps {
  readonly clock: Clock;
  /** False once store and forward is stopping: a receipt held for the store is then answered as it failed. */
  running(): boolean;
  readonly host: Pick<ForwarderHost, 'tenant' | 'telemetry'>;
  readonly journal: Pick<Journal, 'store' | 'park' | 'serialised' | 'accountOf' | 'receiptUps' | 'finalRow'>;
  readonly esme: Pick<EsmeReceipts, 'commit'>;
  readonly counts: ForwardCounts;
}

export class Receipts {
  constructor(private readonly deps: ReceiptDeps) {}

  /**
   * A receipt that came on `bind`: applied to its message, parked as early,
   * or known as a duplicate. While the store cannot be written it is held,
   * its upstream unanswered, and tried again (RECEIPT_HOLD_MS): answered
   * only once it is durably held, never refused for an outage it can wait out.
   */
  async receipt(tenant: string, bind: OutboundBind, r: Receipt): Promise<ForwardResult> {
    this.deps.counts.of(tenant).receipts++;
    const via: ReceiptVia = { bind: bind.cfg.name, at: this.deps.clock.wall() };
    const until = this.deps.clock.now() + RECEIPT_HOLD_MS;
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        return await this.receiptOnce(tenant, bind, r, via);
      } catch (err) {
        if (!isSluiceError(err, 'STORE_UNAVAILABLE') || !this.deps.running() || this.deps.clock.now() + wait > until) throw err;
      }
      await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, wait));
    }
  }

  /** One try at `receipt`: nothing of it is written if the store fails. */
  private async receiptOnce(tenant: string, bind: OutboundBind, r: Receipt, via: ReceiptVia): Promise<ForwardResult> {
    const { journal } = this.deps;
    const c = this.deps.counts.of(tenant);
    const ups = journal.receiptUps(tenant, bind.cfg.name, r.id);
    let row = await this.lookUp(tenant, bind.cfg.name, r.id, ups);
    if (!row) {
      // Before its submit_sm_resp (or for a message we never had): parked under every key it
      // may belong to, matched when the response is written, dropped after receipts.early_ttl_ms.
      // Parking and the response's commit meet in the store: whichever lands second sees the other.
      const rt = this.deps.host.tenant(tenant)!;
      const rid = `${r.id}\u0000${r.stat}`;
      const early: EarlyData = { bind: bind.cfg.name, ups, r, at: via.at };
      const data = JSON.stringify(early);
      const expires = this.deps.clock.wall() + rt.config.receipts.early_ttl_ms;
      if (await journal.park(ups.map((up) => ({ up, rid, expires, data })))) {
        c.receiptsEarly++;
        this.told(tenant, via.bind, r.stat, 'early');
        return { ok: true, command_status: 'ESME_ROK', matched: false, early: true };
      }
      // Its message's correlation was written meanwhile (here or on another replica).
      row = firstByUp(await journal.store.byUp(ups), ups);
      if (!row) {
        // Written and swept since: the message ended long ago.
        c.receiptsDuplicate++;
        this.told(tenant, via.bind, r.stat, 'duplicate');
        return { ok: true, command_status: 'ESME_ROK', matched: true, duplicate: true };
      }
    }
    return this.applyFound(tenant, row, r, via);
  }

  /**
   * A receipt whose policy could not run (it threw, timed out, its sandbox
   * was lost): applied by the core if its message is in the journal (true),
   * so an upstream that does not send it again loses nothing. Anything else
   * (not a receipt, a message the journal does not know): false.
   */
  async rescue(tenant: string, bind: string, command: string, fields: Record<string, unknown>): Promise<boolean> {
    if (command !== 'deliver_sm' && command !== 'data_sm') return false;
    const receipt = asReceipt(fields);
    if (!receipt || !this.deps.host.tenant(tenant)?.binds.has(bind)) return false;
    const row = await this.lookUp(tenant, bind, receipt.id, this.deps.journal.receiptUps(tenant, bind, receipt.id));
    if (!row) return false;
    this.deps.counts.of(tenant).receipts++;
    await this.applyFound(tenant, row, receipt, { bind, at: this.deps.clock.wall() });
    return true;
  }

  /** A receipt counted by stat and what correlation made of it (metrics). */
  told(tenant: string, bind: string, stat: string, outcome: ReceiptOutcome): void {
    const t = this.deps.host.telemetry;
    if (t?.active) t.receipt(tenant, bind, statLabel(stat), outcome);
  }

  /** `r` applied to the message under `key` (read afresh), after any other receipt of it being applied. */
  applyLocked(tenant: string, key: string, r: Receipt, via: ReceiptVia): Promise<ForwardResult> {
    return this.deps.journal.serialised(key, () => this.applyReceipt(tenant, key, r, via));
  }

  /** Apply `r` to the message row just read: current unless another receipt of it was being applied meanwhile. */
  private applyFound(tenant: string, row: MsgRow, r: Receipt, via: ReceiptVia): Promise<ForwardResult> {
    return this.deps.journal.serialised(row.key, (contended) => this.applyReceipt(tenant, row.key, r, via, contended ? undefined : row));
  }

  /** The message a receipt id names: under its account's keys, else (a second read, only on a miss) as rows written before accounts were keyed (by bind). */
  private async lookUp(tenant: string, bind: string, id: string, ups: string[]): Promise<MsgRow | undefined> {
    const { journal } = this.deps;
    const row = firstByUp(await journal.store.byUp(ups), ups);
    if (row) return row;
    const legacy = receiptIdKeys(journal.accountOf(tenant, bind).form, id).map((k) => bindUpKey(tenant, bind, k));
    return firstByUp(await journal.store.byUp(legacy), legacy);
  }

  /** A receipt for a known message: delivered to the ESME once per state, then the journal says so. */
  private async applyReceipt(tenant: string, key: string, r: Receipt, via: ReceiptVia, current?: MsgRow): Promise<ForwardResult> {
    const c = this.deps.counts.of(tenant);
    const [row] = current ? [current] : await this.deps.journal.store.get([key]);
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
    const now = this.deps.clock.wall();
    data.stat = stat;
    if (r.err !== undefined) data.err = r.err;
    if (final) data.done = now;
    const last = final && (data.left === undefined || --data.left <= 0);
    await this.deps.esme.commit(tenant, last ? this.deps.journal.finalRow(tenant, data) : { ...row, data: JSON.stringify(data) }, data, r, via);
    this.told(tenant, via.bind, stat, 'matched');
    return { ok: true, command_status: 'ESME_ROK', matched: true };
  }
}

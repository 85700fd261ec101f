import type { MsgRow } from '../cache/forward-store';
import { defaultOf } from '../config/schema';
import type { Receipt } from '../pdu/dlr';
import type { Journal } from './journal';
import type { ForwarderHost } from './host';
import { MESSAGE_STATE_OF, msgKey, wantsReceipt, type MsgData, type ReceiptVia } from './messages';
import { Outbox, type OutboxEntry } from './outbox';
import { receiptDate } from './smpp-time';

/**
 * The receipt an ESME gets, and when (docs/design.md, "The outbox"). The
 * receipt is composed from the message's journal row (our id, not the
 * upstream's), committed to the outbox in the same write as the row, and
 * delivered only after the ESME had its submit_sm_resp for the message:
 * a submit that answers ESME_ROK is expected here first (`expect`), and the
 * dispatcher says when the answer went out (`answered`).
 */
export class EsmeReceipts {
  /** Our ids answered ESME_ROK by the forwarder whose submit_sm_resp has not gone out yet, and receipts waiting for it. */
  private readonly unanswered = new Map<string, { at: number; waiters: (() => void)[] }>();
  /** The receipts ESMEs are due, on their own flow (outbox.ts). */
  private readonly outbox: Outbox;

  constructor(
    private readonly host: Pick<ForwarderHost, 'clock' | 'logger' | 'tenant' | 'deliverToEsme' | 'replica' | 'telemetry'>,
    private readonly journal: Journal,
  ) {
    this.outbox = new Outbox({
      clock: host.clock,
      log: host.logger,
      store: journal.store,
      ...(host.replica ? { replica: host.replica } : {}),
      ttlMs: (tenant) => this.host.tenant(tenant)?.config.receipts.ttl_ms ?? defaultOf('tenants', 'receipts', 'ttl_ms'),
      afterAnswer: (tenant, id) => this.afterAnswer(msgKey(tenant, id), (this.host.tenant(tenant)?.config.limits.handler_deadline_ms ?? defaultOf('tenants', 'limits', 'handler_deadline_ms')) + 1000),
      // Durable until the ESME has it: behind a full window it waits in the session's queue, in order.
      deliverToEsme: (tenant, sys, sid, command, fields) => this.host.deliverToEsme(tenant, sys, sid, command, fields, { queue: true }),
      write: (ops) => this.journal.write(ops),
    });
  }

  /** Keep this process's liveness lease (outbox.ts). */
  start(onError: (err: Error) => void): void {
    this.outbox.start(onError);
  }

  /** Give the liveness lease back, and let every receipt waiting for an answer go. */
  stop(): void {
    this.outbox.stop();
    for (const u of this.unanswered.values()) for (const w of u.waiters) w();
    this.unanswered.clear();
  }

  /** Whether the liveness loop runs (for tests). */
  get armed(): boolean {
    return this.outbox.armed;
  }

  /** Deliver the outbox rows of `tenants` that are due: our own not delivered, and those of a process that is gone (outbox.ts). */
  takeOver(tenants: string[], stopped: () => boolean): Promise<void> {
    return this.outbox.takeOver(tenants, stopped);
  }

  /** Our id `id` is about to be answered ESME_ROK: its receipts wait for that answer. */
  expect(tenant: string, id: string): void {
    this.unanswered.set(msgKey(tenant, id), { at: this.host.clock.now(), waiters: [] });
  }

  /** The ESME was answered for `id` (its submit_sm_resp went out): receipts waiting for that may go. */
  answered(tenant: string, id: string): void {
    const k = msgKey(tenant, id);
    const u = this.unanswered.get(k);
    if (!u) return;
    this.unanswered.delete(k);
    for (const w of u.waiters) w();
  }

  /** Forget ids expected before `before` (monotonic) that nothing waits for: their answer never went out (the policy answered something else, or missed its deadline). */
  forgetUnanswered(before: number): void {
    for (const [k, u] of this.unanswered) if (u.at < before && u.waiters.length === 0) this.unanswered.delete(k);
  }

  /** Resolves once the ESME had its submit_sm_resp for `key`, or after `maxMs` (the policy answered something else, or its deadline passed). */
  private afterAnswer(key: string, maxMs: number): Promise<void> {
    const u = this.unanswered.get(key);
    if (!u) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.host.clock.setTimeout(() => {
        this.unanswered.delete(key);
        resolve();
      }, Math.max(0, u.at + maxMs - this.host.clock.now()));
      u.waiters.push(() => {
        this.host.clock.clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * Write a message's row and, if its ESME asked for this state, the receipt
   * it is due, into the outbox in the same commit: once that is durable the
   * upstream may be answered; the ESME gets it on its own flow, not in the
   * upstream's window. `via`: the upstream receipt it answers (its round trip is timed).
   */
  async commit(tenant: string, row: MsgRow, data: MsgData, r: Receipt | undefined, via?: ReceiptVia): Promise<void> {
    const outbox = wantsReceipt(data.rd, data.stat ?? 'UNKNOWN') ? this.receiptOut(tenant, data, r) : undefined;
    await this.journal.write(outbox ? [{ t: 'put', row }, { t: 'put', row: outbox.row }] : [{ t: 'put', row }]);
    if (!outbox) return;
    const delivered = this.outbox.deliver(outbox);
    const t = this.host.telemetry;
    if (via && t?.active) void delivered.then((now) => now && t.receiptDelivered(tenant, via.bind, Math.max(0, this.host.clock.wall() - via.at)));
  }

  /** The receipt the ESME gets (our id in the body and in receipted_message_id, with message_state), as an outbox row. */
  private receiptOut(tenant: string, data: MsgData, r: Receipt | undefined): OutboxEntry {
    const stat = data.stat ?? 'UNKNOWN';
    const now = this.host.clock.wall();
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
}

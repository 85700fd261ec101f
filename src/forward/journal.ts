import { MSG_FINAL, MSG_SENT, type EarlyRow, type ForwardOp, type ForwardStore, type MsgRow } from '../cache/forward-store';
import { accountOf, defaultOf } from '../config/schema';
import { SluiceError } from '../errors';
import type { ForwarderHost } from './host';
import { msgKey, upKey, type MsgData } from './messages';
import { receiptIdKeys, storedIdKey, type ReceiptIdForm } from './receipt-ids';

/**
 * The journal as store and forward writes it (docs/design.md, "Time" lists
 * its fields): writes that fail as STORE_UNAVAILABLE (so nothing is
 * acknowledged that is not durable), the rows of a sent and of a final
 * message, the correlation keys of an upstream account, and the lock that
 * lets one read-modify-write of a message's row run at a time. Every time
 * it writes is wall-clock (clock.wall()).
 */
export class Journal {
  /** Journal writes failed since the last that worked (logged when it starts and when it ends). */
  private writeFailures = 0;
  /** One receipt (or query/cancel/replace) at a time per message: an upstream re-sending one must not deliver it twice. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly host: Pick<ForwarderHost, 'clock' | 'logger' | 'tenant'>,
    readonly store: ForwardStore,
  ) {}

  /** A journal write; a store that fails is STORE_UNAVAILABLE, and nothing was acknowledged. */
  write(ops: ForwardOp[]): Promise<void> {
    return this.journal(() => this.store.write(ops));
  }

  /** An early receipt filed durably (the upstream may be answered), or false: a message has one of its keys. */
  park(rows: EarlyRow[]): Promise<boolean> {
    return this.journal(() => this.store.park(rows));
  }

  /** A journal write of any kind (`write`, `park`): a store that fails is STORE_UNAVAILABLE, logged once per outage. */
  private async journal<T>(fn: () => Promise<T>): Promise<T> {
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      // One line when writes start failing, not one per message (the store's health check says when they work again).
      if (this.writeFailures++ === 0) this.host.logger.error({ err: (err as Error).message }, 'forward journal: write failed; messages are refused until the store can be written');
      throw new SluiceError('STORE_UNAVAILABLE', 'the message store could not be written');
    }
    if (this.writeFailures > 0) {
      this.host.logger.info({ failed_writes: this.writeFailures }, 'forward journal: writes work again');
      this.writeFailures = 0;
    }
    return out;
  }

  /** Run `fn` after every earlier call for `key`; it is told whether it had to wait for one. */
  async serialised<T>(key: string, fn: (contended: boolean) => Promise<T>): Promise<T> {
    const held = this.locks.get(key);
    const prev = held ?? Promise.resolve();
    const go = (): Promise<T> => fn(held !== undefined);
    const run = prev.then(go, go);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  /** The upstream account of `bind` and how it writes receipt ids (its `receipt_id`: one per account, the config loader checks). */
  accountOf(tenant: string, bind: string): { account: string; form: ReceiptIdForm } {
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

  /** Every correlation key a receipt id that came on `bind` may stand for, in its account, most likely first. */
  receiptUps(tenant: string, bind: string, id: string): string[] {
    const a = this.accountOf(tenant, bind);
    return receiptIdKeys(a.form, id).map((k) => upKey(tenant, a.account, k));
  }

  /** The row of a message an upstream took: correlated under its account's key until receipts.ttl_ms. */
  sentRow(tenant: string, bind: string, data: MsgData): MsgRow {
    const rt = this.host.tenant(tenant);
    const ttl = rt?.config.receipts.ttl_ms ?? defaultOf('tenants', 'receipts', 'ttl_ms');
    delete data.f;
    delete data.tlv;
    delete data.chain;
    return { key: msgKey(tenant, data.id), tenant, up: this.sentUp(tenant, bind, data.uid), state: MSG_SENT, due: 0, expires: data.at + ttl, created: data.at, route: null, data: JSON.stringify(data) };
  }

  /** The row of a message that ended: slimmed, kept receipts.dedupe_ms so a repeated receipt is known as one. */
  finalRow(tenant: string, data: MsgData): MsgRow {
    const rt = this.host.tenant(tenant);
    const keep = rt?.config.receipts.dedupe_ms ?? defaultOf('tenants', 'receipts', 'dedupe_ms');
    const slim: MsgData = { sys: data.sys, sid: data.sid, id: data.id, cmd: data.cmd, src: data.src, dst: data.dst, rd: data.rd, at: data.at, exp: data.exp, n: data.n };
    for (const k of ['bind', 'uid', 'stat', 'done', 'err'] as const) if (data[k] !== undefined) (slim as unknown as Record<string, unknown>)[k] = data[k];
    const up = data.bind === undefined ? null : this.sentUp(tenant, data.bind, data.uid);
    return { key: msgKey(tenant, data.id), tenant, up, state: MSG_FINAL, due: 0, expires: this.host.clock.wall() + keep, created: data.at, route: null, data: JSON.stringify(slim) };
  }
}

import type { Logger } from 'pino';
import type { Clock } from '../util/clock';
import type { ForwardCounts } from './counters';
import type { Journal } from './journal';
import type { EarlyData, Receipts } from './receipts';

/**
 * Early receipts matched later (docs/design.md, "Receipts"): a receipt
 * parked because its message was not in the journal yet is matched when a
 * commit reports the message's correlation key (`matchFor`), or by the
 * poll each second (`poll`: a replica died between its two steps); one
 * unmatched past receipts.early_ttl_ms is counted and dropped.
 */

/** What matching early receipts needs of the other parts of store and forward. */
export interface EarlyDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly journal: Pick<Journal, 'store' | 'write' | 'receiptUps'>;
  readonly receipts: Pick<Receipts, 'applyLocked' | 'told'>;
  readonly counts: ForwardCounts;
}

export class EarlyReceipts {
  constructor(private readonly deps: EarlyDeps) {}

  /**
   * Early receipts whose message is known now (parked here or by another
   * replica, before a restart, or while its response was being committed):
   * matched; those unmatched past receipts.early_ttl_ms: counted and dropped.
   */
  async poll(): Promise<void> {
    const { store } = this.deps.journal;
    const ready = await store.earlyMatchable(500);
    if (ready.length > 0) await this.matchFor([...new Set(ready.map((r) => r.up))]);
    const expired = await store.earlyExpired(this.deps.clock.wall(), 500);
    if (expired.length === 0) return;
    // Its message may have been written since the last look.
    const known = new Set((await store.byUp([...new Set(expired.map((e) => e.up))])).map((m) => m.up));
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
      this.deps.receipts.told(tenant, early.bind, early.r.stat, 'unmatched');
    }
    for (const [tenant, n] of perTenant) {
      this.deps.counts.of(tenant).receiptsUnmatched += n;
      this.deps.log.info({ tenant, receipts: n }, 'delivery receipts matched no message within receipts.early_ttl_ms; dropped');
    }
    await this.deps.journal.write(gone.map((e) => ({ t: 'unearly', up: e.up, rid: e.rid })));
  }

  /** Early receipts filed under `ups` whose message is known: applied, then every copy of each dropped. */
  async matchFor(ups: string[]): Promise<void> {
    const { journal } = this.deps;
    const early = await journal.store.early(ups);
    if (early.length === 0) return;
    const msgs = await journal.store.byUp([...new Set(early.map((e) => e.up))]);
    // One receipt may be parked under several keys: each receipt is handled once.
    const seen = new Set<string>();
    for (const e of early) {
      const msg = msgs.find((m) => m.up === e.up);
      if (!msg) continue;
      const { bind, ups: filed, r, at } = JSON.parse(e.data) as EarlyData;
      const id = `${msg.key}\u0000${e.rid}`;
      if (seen.has(id)) continue;
      seen.add(id);
      await this.deps.receipts.applyLocked(msg.tenant, msg.key, r, { bind, at: at ?? this.deps.clock.wall() });
      // Filed under every key it may stand for, not only those looked at here: all go.
      const copies = await journal.store.early(filed ?? journal.receiptUps(msg.tenant, bind, r.id));
      await journal.write(copies.filter((x) => x.rid === e.rid).map((x) => ({ t: 'unearly', up: x.up, rid: e.rid })));
    }
  }
}

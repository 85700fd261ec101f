/** Counters for /metrics, per tenant. */
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

/** Every tenant's counters, shared by the parts of store and forward that count. */
export class ForwardCounts {
  readonly byTenant = new Map<string, ForwardCounters>();

  /** A tenant's counters (created on first use). */
  of(tenant: string): ForwardCounters {
    let c = this.byTenant.get(tenant);
    if (!c) {
      c = { forwarded: 0, queued: 0, retried: 0, expired: 0, rejected: 0, uncertain: 0, receipts: 0, receiptsEarly: 0, receiptsDuplicate: 0, receiptsUnmatched: 0, mo: 0 };
      this.byTenant.set(tenant, c);
    }
    return c;
  }
}

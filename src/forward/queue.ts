import type { Logger } from 'pino';
import type { MsgRow } from '../cache/forward-store';
import { doubling } from '../util/backoff';
import type { Clock } from '../util/clock';
import { jsonToBytes } from '../util/json-bytes';
import type { UnknownTlv } from '../wire/codec';
import { statusValue } from '../wire/status';
import type { EsmeReceipts } from './esme-receipts';
import type { ForwardCounts } from './counters';
import type { ForwarderHost } from './host';
import type { Journal } from './journal';
import type { MsgData } from './messages';
import { sendStep } from './submits';

/**
 * The durable queue (docs/design.md, "Time": a queued row's `due`,
 * `expires` and `claimed` are wall-clock): queued messages claimed when due,
 * tried on every bind of their chain, given up at their expiry (a receipt of
 * our own, EXPIRED or UNDELIV, if the ESME asked for one), else offered
 * again after a doubling backoff. Each drain ends by taking over the outbox
 * rows of a process that died (outbox.ts).
 */

/** What the queue needs of the other parts of store and forward. */
export interface QueueDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly host: Pick<ForwarderHost, 'tenant' | 'tenantIds'>;
  readonly journal: Pick<Journal, 'store' | 'write' | 'sentRow' | 'finalRow'>;
  readonly esme: Pick<EsmeReceipts, 'commit' | 'takeOver'>;
  readonly counts: ForwardCounts;
}

/** Rows claimed from the queue per round. */
const CLAIM_BATCH = 64;

export class Queue {
  private stopped = true;
  private draining = false;
  private rounds = 0;
  private drainAgain = false;

  constructor(private readonly deps: QueueDeps) {}

  /** Rows may be claimed (from here until `stop`). */
  start(): void {
    this.stopped = false;
  }

  /** No more rounds: a drain under way ends at its next round. */
  stop(): void {
    this.stopped = true;
  }

  /** A bind of `tenant` came up: its queued messages are due now. */
  wake(tenant: string): void {
    if (this.stopped) return;
    void this.deps.journal.store
      .wake(tenant, this.deps.clock.wall())
      .then(() => this.drain())
      .catch((err: Error) => this.deps.log.warn({ tenant, err: err.message }, 'forward journal: store error'));
  }

  /** Claim due queued messages and send them on, round after round while there are. */
  async drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    const { host, journal } = this.deps;
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        // Tenants with a bind up here send their own queue; every fourth round (2 s) all tenants are
        // looked at, so messages expire on time while every bind is down (or held by another replica).
        const all = ++this.rounds % 4 === 0;
        const tenants = host.tenantIds().filter((t) => all || [...(host.tenant(t)?.binds.values() ?? [])].some((b) => b.state === 'bound'));
        for (;;) {
          if (this.stopped) return;
          const now = this.deps.clock.wall();
          const rows = await journal.store.claimDue(tenants, now, now + this.claimMs(), CLAIM_BATCH);
          if (rows.length === 0) break;
          await Promise.all(rows.map((r) => this.retry(r).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'forward: queued message not handled; offered again later'))));
          if (rows.length < CLAIM_BATCH) break;
        }
      } while (this.drainAgain);
      // Receipts a process that died left undelivered: once per drain, not per round of the queue.
      await this.deps.esme.takeOver(host.tenantIds(), () => this.stopped);
    } finally {
      this.draining = false;
    }
  }

  /** How long a claimed queued message is ours: long enough to try every bind of a chain once. */
  private claimMs(): number {
    const host = this.deps.host;
    let longest = 0;
    let most = 1;
    for (const t of host.tenantIds()) {
      const binds = [...(host.tenant(t)?.binds.values() ?? [])];
      most = Math.max(most, binds.length);
      for (const b of binds) longest = Math.max(longest, b.responseTimeoutMs);
    }
    return longest * most + 2000;
  }

  private async retry(row: MsgRow): Promise<void> {
    const { journal } = this.deps;
    const rt = this.deps.host.tenant(row.tenant);
    const data = JSON.parse(row.data) as MsgData;
    const now = this.deps.clock.wall();
    if (!rt) return;
    const c = this.deps.counts.of(row.tenant);
    if (now >= data.exp) {
      c.expired++;
      await this.finish(row.tenant, data, 'EXPIRED', '000', now);
      return;
    }
    const fields = jsonToBytes(data.f) as Record<string, unknown>;
    const tlvs = data.tlv === undefined ? undefined : (jsonToBytes(data.tlv) as UnknownTlv[]);
    let tried = false;
    for (const step of data.chain ?? []) {
      const out = await sendStep(this.deps.log, row.tenant, rt, step.slice(5), data.cmd, fields, tlvs);
      if (out.kind === 'skip') continue;
      tried = true;
      data.n++;
      if (out.kind === 'sent') {
        data.bind = out.bind;
        data.uid = out.id;
        await journal.write([{ t: 'put', correlates: true, row: journal.sentRow(row.tenant, out.bind, data) }]);
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
    await journal.write([{ t: 'put', row: { ...row, due, data: JSON.stringify(data) } }]);
  }

  /** A message that ends without an upstream receipt (expired, refused from the queue): a receipt of our own if the ESME asked for one. */
  private async finish(tenant: string, data: MsgData, stat: string, err: string, now: number): Promise<void> {
    data.stat = stat;
    data.done = now;
    data.err = err;
    await this.deps.esme.commit(tenant, this.deps.journal.finalRow(tenant, data), data, undefined);
  }
}

import type { Logger } from 'pino';
import type { LeaseStore } from '../cache/backend';
import { MSG_OUT, type ForwardOp, type ForwardStore, type MsgRow } from '../cache/forward-store';
import { Repeat, type Clock } from '../util/clock';
import { newMessageId } from '../util/ids';
import { bytesToJson, jsonToBytes } from '../util/json-bytes';

/**
 * The receipt outbox (docs/design.md, "The outbox"): the receipts ESMEs are
 * due, as journal rows written in the commit that records the upstream's
 * receipt, so the upstream can be answered before the ESME has it. The
 * writer delivers a row at once and deletes it; a process that died leaves
 * its rows to the others, which take them over once its liveness lease has
 * run out.
 */

/** A process renews its liveness lease every third of this; its rows are looked at by others this long after they were written. */
export type EsmeDelivery = { kind: 'delivered' } | { kind: 'held' } | { kind: 'refused'; status: string };

export const ALIVE_TTL_MS = 10_000;
const aliveKey = (owner: string): string => `sluice:alive:${owner}`;
/** Rows claimed per round of a take-over. */
const CLAIM_BATCH = 64;

/** An outbox row's data: for whom (system_id, the session that sent the message, our id), the deliver_sm fields, the process that wrote it. */
interface OutData {
  sys: string;
  sid: string;
  id: string;
  f: Record<string, unknown>;
  own?: string;
}

/** What the outbox needs of the forwarder. */
export interface OutboxDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly store: ForwardStore;
  /** This process's name and the store replicas share; absent: this process is taken to be the only one. */
  readonly replica?: { owner: string; leases: LeaseStore };
  /** How long a tenant keeps correlations (its receipts.ttl_ms): an outbox row goes after as long. */
  ttlMs(tenant: string): number;
  /** Resolves once the ESME had its submit_sm_resp for our id (or it will not come). */
  afterAnswer(tenant: string, id: string): Promise<void>;
  deliverToEsme(tenant: string, systemId: string, sessionId: string, command: string, fields: Record<string, unknown>): Promise<EsmeDelivery>;
  /** A journal write, failures handled as the forwarder's. */
  write(ops: ForwardOp[]): Promise<void>;
}

/** A receipt for an ESME: the row to commit with the receipt's journal update, and what `deliver` needs of it. */
export interface OutboxEntry {
  row: MsgRow;
  out: OutData;
}

export class Outbox {
  /** Rows this process is delivering now, by key. */
  private readonly here = new Set<string>();
  private renewal: Repeat | undefined;

  constructor(private readonly deps: OutboxDeps) {}

  /** This process's name in the rows and its liveness lease. */
  private get owner(): string {
    return this.deps.replica?.owner ?? 'this-process';
  }

  /** Keep this process's liveness lease while it runs. */
  start(onError: (err: Error) => void): void {
    const r = this.deps.replica;
    if (!r || this.renewal) return;
    const renew = async (): Promise<void> => void (await r.leases.acquire(aliveKey(r.owner), r.owner, ALIVE_TTL_MS));
    void renew().catch(onError);
    this.renewal = new Repeat(this.deps.clock, ALIVE_TTL_MS / 3, renew, onError);
  }

  /** Stop renewing, and give the lease back: rows left undelivered go to the other replicas now, not when it runs out. */
  stop(): void {
    this.renewal?.stop();
    this.renewal = undefined;
    const r = this.deps.replica;
    if (r) void r.leases.release(aliveKey(r.owner), r.owner).catch(() => undefined);
  }

  /** Whether the liveness loop runs (for tests). */
  get armed(): boolean {
    return this.renewal?.armed ?? false;
  }

  /** The outbox row of the deliver_sm `fields` for the ESME `to` (system_id, session, our message id), filed under the message's key. */
  entry(tenant: string, messageKey: string, to: { sys: string; sid: string; id: string }, fields: Record<string, unknown>): OutboxEntry {
    const now = this.deps.clock.wall();
    const out: OutData = { sys: to.sys, sid: to.sid, id: to.id, f: fields, own: this.owner };
    const row: MsgRow = {
      key: `${messageKey}/r/${newMessageId()}`,
      tenant,
      up: null,
      state: MSG_OUT,
      // Another process takes it over only if this one has not delivered it by then (it died).
      due: now + ALIVE_TTL_MS,
      expires: now + this.deps.ttlMs(tenant),
      created: now,
      route: to.sys,
      data: JSON.stringify({ ...out, f: bytesToJson(fields) }),
    };
    return { row, out };
  }

  /**
   * Deliver a committed row to its ESME (after the ESME had its
   * submit_sm_resp), or hold it for the next session of its system_id, then
   * drop it. A failure leaves it in the outbox: it is taken up again once
   * its `due` passes. Resolves true when the ESME took it now.
   */
  async deliver(e: OutboxEntry): Promise<boolean> {
    const { row, out } = e;
    const tenant = row.tenant;
    this.here.add(row.key);
    try {
      await this.deps.afterAnswer(tenant, out.id);
      const d = await this.deps.deliverToEsme(tenant, out.sys, out.sid, 'deliver_sm', out.f);
      if (d.kind === 'refused') this.deps.log.warn({ tenant, id: out.id, status: d.status }, 'the ESME refused a delivery receipt');
      // With the next commit: lost in a crash, the receipt is delivered once more, never lost.
      this.deps.store.writeLazily([{ t: 'del', key: row.key }]);
      return d.kind === 'delivered';
    } catch (err) {
      this.deps.log.warn({ tenant, id: out.id, err: (err as Error).message }, 'a delivery receipt could not be delivered or held yet; tried again later');
      return false;
    } finally {
      this.here.delete(row.key);
    }
  }

  /**
   * Rows of `tenants` past their due time: this process's own that it
   * failed to deliver, and those of a process that is gone (its liveness
   * lease ran out), delivered from here; those of a live process (still
   * delivering) looked at again later.
   */
  async takeOver(tenants: string[], stopped: () => boolean): Promise<void> {
    const living = new Map<string, boolean>();
    for (;;) {
      if (stopped()) return;
      const now = this.deps.clock.wall();
      const rows = await this.deps.store.claimDue(tenants, now, now + ALIVE_TTL_MS, CLAIM_BATCH, MSG_OUT);
      const later: ForwardOp[] = [];
      const take: Promise<boolean>[] = [];
      for (const row of rows) {
        const o = JSON.parse(row.data) as OutData;
        const mine = o.own === this.owner;
        let busy = mine && this.here.has(row.key);
        if (!mine && o.own !== undefined) {
          if (!living.has(o.own)) living.set(o.own, await this.alive(o.own));
          busy = living.get(o.own)!;
        }
        if (busy) later.push({ t: 'put', row: { ...row, due: now + ALIVE_TTL_MS } });
        else take.push(this.deliver({ row, out: { ...o, own: this.owner, f: jsonToBytes(o.f) as Record<string, unknown> } }));
      }
      if (later.length > 0) await this.deps.write(later);
      await Promise.all(take);
      if (rows.length < CLAIM_BATCH) return;
    }
  }

  /** Whether the process that wrote a row still runs (holds its liveness lease). */
  private async alive(owner: string | undefined): Promise<boolean> {
    const r = this.deps.replica;
    if (!r || owner === undefined) return false;
    // Taking its lease succeeds only if it ran out: then it is given back at once.
    if (!(await r.leases.acquire(aliveKey(owner), this.owner, 1000))) return true;
    await r.leases.release(aliveKey(owner), this.owner);
    return false;
  }
}

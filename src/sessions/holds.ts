import type { Logger } from 'pino';
import type { HoldStore } from '../cache/hold';
import { SluiceError } from '../errors';
import { toWireFields } from '../pdu/fields';
import { bytesToJson, jsonToBytes } from '../util/json-bytes';
import { Repeat, type Clock } from '../util/clock';
import type { EsmeConnection } from './esme-connection';

export interface HoldsOptions {
  store: HoldStore;
  clock: Clock;
  logger: Logger;
  /** How long a held message waits for its ESME, and a session's directory entry lives after its last refresh. */
  ttlMs: number;
  /** How long a delivery may take before its item is claimable again (the ESME's response timer and then some). */
  claimMs: number;
  /** How often the queues of the ESMEs bound here are checked. */
  pollMs: number;
  /** The ESME sessions bound here, each with its tenant and system_id. */
  bound(): Iterable<EsmeConnection>;
  /** A session of `tenant` bound here as `systemId`, if any. */
  sessionFor(tenant: string, systemId: string): EsmeConnection | undefined;
  /** Send to a session bound here, as the policy's send helpers do; rejects if it is not answered. */
  send(conn: EsmeConnection, command: string, wire: ReturnType<typeof toWireFields>): Promise<unknown>;
}

/** Held items delivered per claim. */
const CLAIM_BATCH = 32;
const PRUNE_MS = 60_000;
/**
 * How long a hold still on its way into the store keeps later messages for
 * its ESME behind it. A store slower than this cannot keep the order anyway,
 * and sends to a session bound here do not wait on it any longer.
 */
const ORDER_WAIT_MS = 1000;

/** A held message: the policy's fields, bytes as base64. */
interface Held {
  command: string;
  fields: unknown;
}

const queueOf = (tenant: string, systemId: string): string => `${encodeURIComponent(tenant)}:${encodeURIComponent(systemId)}`;
const sessionKey = (tenant: string, sessionId: string): string => `${encodeURIComponent(tenant)}:${encodeURIComponent(sessionId)}`;

/**
 * Messages for ESMEs that are not bound here (docs/design.md, "Replicas"). Every ESME
 * session bound on any replica is written to a directory in the shared
 * store (session id → system_id). A deliverTo / dataTo / alertTo naming a
 * session that is not bound here, but that the directory knows (bound on
 * another replica, or unbound a moment ago), is held in the store, queued
 * by tenant and system_id. Whichever replica has a session of that
 * system_id bound delivers it: at once when one binds, and at every poll.
 * Delivery is at least once: an item is acknowledged once the ESME answered
 * (whatever its status), and offered again if the send failed or the
 * replica died first.
 */
export class Holds {
  /** Running totals per tenant, for metrics: messages held here, and held messages this replica delivered. */
  readonly counts = new Map<string, { held: number; delivered: number }>();
  /** Held messages that expired undelivered, as this replica's prune found them (SQLite and memory stores). */
  expired = 0;
  private loops: Repeat[] = [];
  private readonly draining = new Map<string, boolean>();
  /**
   * Per queue: holds of this replica on their way into the store, as the
   * last push of their chain (pushes of one queue go one after another, so
   * the store numbers them in the order held) and since when the chain runs.
   */
  private readonly pushing = new Map<string, { last: Promise<unknown>; since: number }>();
  /** Queues known to have items in the store that no drain here has emptied yet. */
  private readonly backlog = new Set<string>();
  private stopped = true;
  private lastPrune = 0;

  constructor(private readonly o: HoldsOptions) {}

  start(): void {
    this.stopped = false;
    const onError = (err: Error): void => this.o.logger.warn({ err: err.message }, 'held messages: store error');
    this.loops = [new Repeat(this.o.clock, this.o.pollMs, () => this.poll(), onError), new Repeat(this.o.clock, this.o.ttlMs / 4, () => this.refresh(), onError)];
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loops) l.stop();
    this.loops = [];
  }

  /** Before an ESME's bind is answered: record its system_id where every replica looks. Never rejects. */
  async record(tenant: string, sessionId: string, systemId: string): Promise<void> {
    try {
      await this.o.store.remember(sessionKey(tenant, sessionId), systemId, this.o.ttlMs);
    } catch (err) {
      // The refresh writes it again later; meanwhile other replicas do not know this session.
      this.o.logger.warn({ tenant, err: (err as Error).message }, 'held messages: could not record the session in the store');
    }
  }

  /** An ESME bound here: deliver what was held for its system_id. */
  onBound(conn: EsmeConnection): void {
    void this.drain(conn.tenant!, conn.systemId);
  }

  /** The system_id a session of `tenant` was bound as, on any replica (undefined: never, or too long ago). */
  async systemIdOf(tenant: string, sessionId: string): Promise<string | undefined> {
    try {
      return await this.o.store.recall(sessionKey(tenant, sessionId));
    } catch (err) {
      throw new SluiceError('STORE_UNAVAILABLE', `the store is unreachable: ${(err as Error).message}`);
    }
  }

  /**
   * Keep `fields` for the next session of `systemId`; rejects as the store
   * does, nothing held. With one bound here that could not take it now (its
   * window full, or it just went), it is handed on from the store at once,
   * in the order held, not at the next poll (a second).
   */
  async hold(tenant: string, systemId: string, command: string, fields: Record<string, unknown>): Promise<void> {
    const item: Held = { command, fields: bytesToJson(fields) };
    const q = queueOf(tenant, systemId);
    // Two pushes in flight at once may be numbered in either order (node-sqlite3 runs them on its thread pool).
    const chain = this.pushing.get(q);
    const push = (chain?.last ?? Promise.resolve()).then(() => this.o.store.push(q, JSON.stringify(item), this.o.ttlMs));
    const last = push.catch(() => undefined);
    this.pushing.set(q, { last, since: chain?.since ?? this.o.clock.now() });
    try {
      await push;
      // Handed on from here (a session of it is bound here): later ones for it go behind it.
      if (this.o.sessionFor(tenant, systemId)) this.backlog.add(q);
    } catch (err) {
      throw new SluiceError('STORE_UNAVAILABLE', `the store is unreachable: ${(err as Error).message}`);
    } finally {
      // The chain's last push done: none of this queue is on its way any more.
      if (this.pushing.get(q)?.last === last) this.pushing.delete(q);
    }
    this.count(tenant).held++;
    this.o.logger.debug({ tenant, systemId, command }, 'held for an ESME not bound here');
    if (this.o.sessionFor(tenant, systemId)) void this.drain(tenant, systemId);
  }

  /**
   * Do messages for `systemId` wait here: on their way into the store, or in
   * it and not handed on yet? A message sent to one of its sessions now
   * would overtake them; it is held behind them instead (in order per ESME,
   * on this replica; docs/design.md, "Replicas").
   */
  waiting(tenant: string, systemId: string): boolean {
    const q = queueOf(tenant, systemId);
    if (this.backlog.has(q)) return true;
    const chain = this.pushing.get(q);
    return chain !== undefined && this.o.clock.now() - chain.since < ORDER_WAIT_MS;
  }

  private count(tenant: string): { held: number; delivered: number } {
    let c = this.counts.get(tenant);
    if (!c) this.counts.set(tenant, (c = { held: 0, delivered: 0 }));
    return c;
  }

  private localPairs(): Map<string, [string, string]> {
    const out = new Map<string, [string, string]>();
    for (const c of this.o.bound()) if (c.tenant && c.bound) out.set(queueOf(c.tenant, c.systemId), [c.tenant, c.systemId]);
    return out;
  }

  private async poll(): Promise<void> {
    const pairs = this.localPairs();
    if (pairs.size > 0) {
      for (const q of await this.o.store.pending([...pairs.keys()])) {
        const p = pairs.get(q);
        if (!p) continue;
        this.backlog.add(q);
        void this.drain(p[0], p[1]);
      }
    }
    const now = this.o.clock.now();
    if (now - this.lastPrune >= PRUNE_MS) {
      this.lastPrune = now;
      const expired = await this.o.store.prune();
      this.expired += expired;
      if (expired > 0) this.o.logger.warn({ expired }, 'held messages expired undelivered');
    }
  }

  /** Directory entries of the sessions bound here outlive them by ttlMs at most. */
  private async refresh(): Promise<void> {
    for (const c of this.o.bound()) if (c.tenant && c.bound) await this.o.store.remember(sessionKey(c.tenant, c.id), c.systemId, this.o.ttlMs);
  }

  /** Deliver `tenant`'s items for `systemId` to a session of it bound here, batch by batch. One drain per queue at a time. */
  async drain(tenant: string, systemId: string): Promise<void> {
    const q = queueOf(tenant, systemId);
    if (this.draining.has(q)) {
      this.draining.set(q, true); // run again when the current one ends
      return;
    }
    this.draining.set(q, false);
    try {
      for (;;) {
        if (this.stopped || !this.o.sessionFor(tenant, systemId)) {
          // Its sessions here are gone: the next to bind is another session, to which no order is owed.
          this.backlog.delete(q);
          break;
        }
        const items = await this.o.store.claim(q, CLAIM_BATCH, this.o.claimMs);
        if (items.length === 0) {
          if (this.draining.get(q) !== true) {
            // Handed on, all of it: what comes next for this ESME may go to it directly.
            this.backlog.delete(q);
            break;
          }
          this.draining.set(q, false);
          continue;
        }
        // The session may have gone while the claim was out: one is picked for the batch, after it.
        const conn = this.o.sessionFor(tenant, systemId);
        const results = await Promise.all(items.map((it) => (conn ? this.deliver(conn, it.item) : false)));
        const done = items.filter((_, i) => results[i]).map((it) => it.id);
        const failed = items.filter((_, i) => !results[i]).map((it) => it.id);
        await this.o.store.ack(q, done);
        this.count(tenant).delivered += done.length;
        if (failed.length) {
          await this.o.store.unclaim(q, failed);
          break; // the session went away or stopped answering: the next bind or poll tries again
        }
      }
    } catch (err) {
      // The poll offers them again; meanwhile sends to sessions bound here do not wait on a failing store.
      this.backlog.delete(q);
      this.o.logger.warn({ tenant, systemId, err: (err as Error).message }, 'held messages: store error while delivering; they are offered again');
    } finally {
      this.draining.delete(q);
    }
  }

  /** True once the ESME answered (or the item can never be sent); false to offer it again. */
  private async deliver(conn: EsmeConnection, raw: string): Promise<boolean> {
    let wire: ReturnType<typeof toWireFields>;
    let command: string;
    try {
      const h = JSON.parse(raw) as Held;
      command = h.command;
      wire = toWireFields(command, jsonToBytes(h.fields) as Record<string, unknown>);
    } catch (err) {
      this.o.logger.error({ tenant: conn.tenant, systemId: conn.systemId, err: (err as Error).message }, 'held message cannot be sent; dropped');
      return true;
    }
    try {
      await this.o.send(conn, command, wire);
      return true;
    } catch {
      return false;
    }
  }
}

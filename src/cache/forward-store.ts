// One file on purpose: the journal's contract, its group commit and the overlay of writes not yet committed go
// together; the backends are forward-memory.ts, forward-sqlite.ts and forward-redis.ts.
import { realClock, type Clock, type TimerHandle } from '../util/clock';
import { afterTurnWrites } from '../util/turn';

/**
 * The store-and-forward journal: one row per message a tenant's ESME handed
 * to the gateway, from acceptance to its final receipt, plus delivery
 * receipts that arrived before their message's submit_sm_resp. The queue,
 * the receipt correlations and `query_sm` answers all read these rows.
 *
 * Writes are group-committed: every write made while a commit is running
 * goes into the next one, so under load one transaction carries a whole
 * window of messages and a durable write costs a fraction of a commit.
 * Reads see writes that are still waiting for their commit.
 */

/*
 * Every time in these rows (due, expires, created, claims, early receipts'
 * expiry) is wall-clock ms since the epoch: rows outlive the process that
 * wrote them and are read by other replicas (docs/design.md, "Time").
 */

/** A message's life in the journal. */
export const MSG_QUEUED = 0;
export const MSG_SENT = 1;
export const MSG_FINAL = 2;
/**
 * Not a message: a receipt on its way to an ESME (the outbox). Written in
 * the commit that records the receipt, so the upstream can be answered
 * before the ESME has it; deleted once the ESME answered it (or it was
 * held for another replica). `due` is when another process may take it
 * over (the one that wrote it delivers it at once); `route` is the ESME's
 * system_id.
 */
export const MSG_OUT = 3;

/** The states `claimDue` hands out: queued messages to send, receipts to deliver. */
export type ClaimState = typeof MSG_QUEUED | typeof MSG_OUT;

/** One message. `data` is the forwarder's JSON; the columns are what the store searches by. */
export interface MsgRow {
  /** `tenant/ourId`, each part URI-encoded. */
  key: string;
  tenant: string;
  /** Correlation key of the upstream id (tenant, upstream account, normalised id); null until an upstream accepted it. */
  up: string | null;
  state: number;
  /** Queued: earliest next attempt (ms since the epoch). */
  due: number;
  /** When the row may be swept (a queued row is never swept: it expires through the forwarder). */
  expires: number;
  created: number;
  /** Queued: the bind it waits for (the first of its chain), for queue metrics. */
  route: string | null;
  data: string;
}

/** A receipt that came before its message's submit_sm_resp, filed under one of its candidate correlation keys. */
export interface EarlyRow {
  up: string;
  /** The receipt's own id (its id as written and its stat): a re-sent early receipt replaces itself. */
  rid: string;
  expires: number;
  data: string;
}

/** A durable commit (see ForwardBackend.commit). */
export interface Committed {
  early: Promise<string[]>;
}

export type ForwardOp =
  /** `correlates`: the row's correlation key is new (an upstream just took the message); the commit reports receipts parked under it. */
  | { t: 'put'; row: MsgRow; correlates?: boolean }
  | { t: 'del'; key: string }
  /** Drop an early receipt (filing one is `park`: it must see the message rows as it files). */
  | { t: 'unearly'; up: string; rid: string };

/** Queue depth of one tenant's bind (route). */
export interface QueueDepth {
  tenant: string;
  route: string;
  count: number;
  oldest: number;
}

/**
 * What each backend does; `ForwardStore` adds the group commit around it.
 *
 * An early receipt and its message's correlation meet in the store, so no
 * ordering of two writers (two replicas, or a receipt and a response on one)
 * loses one: `park` files a receipt only if no message has any of its keys,
 * in one atomic step, and `commit` reports, after its rows are durable,
 * which of the correlation keys it wrote have receipts parked under them.
 * Whichever of the two lands second sees the other.
 */
export interface ForwardBackend {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  /**
   * Apply the ops atomically, in order; resolves once they are durable.
   * `early` then resolves to the correlation keys of rows put (at least those
   * put with `correlates`) that have early receipts parked, as read after
   * the commit: a backend that must read them separately does so off the
   * commit's path, so the writers waiting on it are not kept for that read.
   */
  commit(ops: readonly ForwardOp[]): Promise<Committed>;
  /** File one receipt under its candidate keys, atomically, unless a message row already has one of them: true if filed. */
  park(rows: readonly EarlyRow[]): Promise<boolean>;
  get(keys: readonly string[]): Promise<MsgRow[]>;
  byUp(ups: readonly string[]): Promise<MsgRow[]>;
  /**
   * Rows in `state` (queued messages, or outbox receipts) due by `now` and
   * not claimed, oldest due first, up to `limit`; each is claimed until
   * `until` (no other caller gets it before), atomically. Tenants outside
   * `tenants` are left alone.
   */
  claimDue(tenants: readonly string[], now: number, until: number, limit: number, state?: ClaimState): Promise<MsgRow[]>;
  /** Make every waiting queued row of `tenant` due now (a bind came up). */
  wake(tenant: string, now: number): Promise<number>;
  early(ups: readonly string[]): Promise<EarlyRow[]>;
  /** Early receipts whose message row now exists, up to `limit` (successive calls may go round the whole set). */
  earlyMatchable(limit: number): Promise<EarlyRow[]>;
  /** Early receipts whose `expires` is before `now`, up to `limit`. */
  earlyExpired(now: number, limit: number): Promise<EarlyRow[]>;
  /** Delete rows (not queued ones) whose `expires` is before `now`, and early receipts whose `expires` is before `earlyBefore`. */
  sweep(now: number, earlyBefore: number): Promise<number>;
  depth(): Promise<QueueDepth[]>;
  /** Take the write lock and give it back, writing nothing: rejects if the journal cannot be written. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** An early receipt's identity in the overlay and the memory journal. */
export const earlyId = (up: string, rid: string): string => `${up}\u0000${rid}`;
/** The row a health probe writes after a failed commit (no tenant's; swept with the expired rows). */
const PROBE_KEY = '\u0000probe';

/**
 * A backend behind a group commit. `write` resolves once its ops are durable
 * (committed), and rejects, with nothing applied, if their commit fails.
 */
export class ForwardStore {
  readonly kind: ForwardBackend['kind'];
  /** Commits run and ops written, for the benchmark and metrics. */
  readonly stats = { commits: 0, ops: 0 };
  /** The last commit's error, until a commit succeeds (health). */
  lastError: string | undefined;
  /** Told, after a commit, the correlation keys it wrote that have early receipts parked under them. */
  onEarly: ((ups: string[]) => void) | undefined;
  private queued: { ops: ForwardOp[]; waiters: { resolve: () => void; reject: (e: unknown) => void }[] } = { ops: [], waiters: [] };
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private lazyTimer: TimerHandle | undefined;
  /** Rows written but not yet committed (queued or in the running commit): key → row, or null for a delete. */
  private readonly overlay = new Map<string, MsgRow | null>();
  private readonly overlayUp = new Map<string, string>();
  /** The overlay's keys (see overlayKeys), and whether a read holds this set. */
  private keys = new Set<string>();
  private keysShared = false;
  /** Early receipts being dropped by a write not yet committed. */
  private readonly overlayUnearly = new Set<string>();
  private closed = false;
  /** Early-receipt reads of commits (see flush), awaited by close. */
  private readonly earlyReads = new Set<Promise<void>>();
  /** Reads made in one turn of the event loop go to the backend as one query. */
  private readonly getBatch: ReadBatch<MsgRow>;
  private readonly upBatch: ReadBatch<MsgRow>;

  private readonly clock: Clock;

  constructor(
    private readonly backend: ForwardBackend,
    /** Wall time for the health probe's row, and the timer of lazy writes. */
    clock: Clock = realClock,
  ) {
    this.clock = clock;
    this.kind = backend.kind;
    this.getBatch = new ReadBatch((keys) => backend.get(keys), (r) => r.key);
    this.upBatch = new ReadBatch((ups) => backend.byUp(ups), (r) => r.up ?? '');
  }

  /** Queue ops for the next commit; resolves once it committed them. */
  write(ops: readonly ForwardOp[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('forward store is closed'));
    if (ops.length === 0) return Promise.resolve();
    for (const op of ops) this.noteOverlay(op);
    return new Promise((resolve, reject) => {
      const q = this.queued;
      for (const op of ops) q.ops.push(op);
      q.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /**
   * The overlay's keys as a set a read may keep (byUp): shared until the
   * overlay next changes, then copied, so reads between two writes share one
   * copy instead of making one each.
   */
  private overlayKeys(): ReadonlySet<string> {
    this.keysShared = true;
    return this.keys;
  }

  private setOverlay(key: string, row: MsgRow | null): void {
    if (this.keysShared && !this.keys.has(key)) this.unshareKeys();
    this.keys.add(key);
    this.overlay.set(key, row);
  }

  private unshareKeys(): void {
    this.keys = new Set(this.keys);
    this.keysShared = false;
  }

  private noteOverlay(op: ForwardOp): void {
    if (op.t === 'put') {
      this.setOverlay(op.row.key, op.row);
      if (op.row.up) this.overlayUp.set(op.row.up, op.row.key);
    } else if (op.t === 'del') this.setOverlay(op.key, null);
    else this.overlayUnearly.add(earlyId(op.up, op.rid));
  }

  /**
   * Queue ops that need not be durable at once (an outbox row delivered:
   * lost in a crash, it is delivered once more): they ride with the next
   * commit, or one `lazyMs` from now if none comes. Failures are left to
   * the next write of the same rows.
   */
  writeLazily(ops: readonly ForwardOp[], lazyMs = 200): void {
    if (this.closed || ops.length === 0) return;
    for (const op of ops) this.noteOverlay(op);
    for (const op of ops) this.queued.ops.push(op);
    if (this.lazyTimer === undefined && !this.scheduled && !this.flushing) {
      this.lazyTimer = this.clock.setTimeout(() => {
        this.lazyTimer = undefined;
        if (this.queued.ops.length > 0) this.schedule();
      }, lazyMs);
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    this.clock.clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    // One turn of the event loop: everything written in this turn goes in one commit.
    afterTurnWrites(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.queued.ops.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    const q = this.queued;
    this.queued = { ops: [], waiters: [] };
    try {
      const { early } = await this.backend.commit(q.ops);
      this.lastError = undefined;
      this.stats.commits++;
      this.stats.ops += q.ops.length;
      for (const w of q.waiters) w.resolve();
      // Not awaited: the next commit need not wait for this read. A failed read leaves the
      // receipts parked for the poll, which finds them within a second.
      const read = early.then(
        (ups) => {
          if (ups.length > 0 && !this.closed) this.onEarly?.(ups);
        },
        () => undefined,
      );
      this.earlyReads.add(read);
      void read.finally(() => this.earlyReads.delete(read));
    } catch (err) {
      this.lastError = (err as Error).message;
      for (const w of q.waiters) w.reject(err);
    } finally {
      this.clearOverlay(q.ops);
    }
  }

  /** Forget the overlay entries these ops made, unless a later write (still queued) replaced them. */
  private clearOverlay(ops: readonly ForwardOp[]): void {
    const later = new Set<string>();
    for (const op of this.queued.ops) later.add(op.t === 'put' ? op.row.key : op.t === 'del' ? op.key : `e${earlyId(op.up, op.rid)}`);
    for (const op of ops) {
      if (op.t === 'put' || op.t === 'del') {
        const key = op.t === 'put' ? op.row.key : op.key;
        if (later.has(key)) continue;
        const row = this.overlay.get(key);
        if (row?.up && this.overlayUp.get(row.up) === key) this.overlayUp.delete(row.up);
        this.overlay.delete(key);
        if (this.keysShared) this.unshareKeys();
        this.keys.delete(key);
      } else {
        const id = earlyId(op.up, op.rid);
        if (!later.has(`e${id}`)) this.overlayUnearly.delete(id);
      }
    }
  }

  // Reads take the overlay as it is when they are asked, before they wait for the store: a
  // commit that lands meanwhile clears the overlay, and a store read begun before that commit
  // would not see it either.
  async get(keys: readonly string[]): Promise<(MsgRow | undefined)[]> {
    const pending = new Map<string, MsgRow | null>();
    for (const k of keys) if (this.overlay.has(k)) pending.set(k, this.overlay.get(k)!);
    const missing = keys.filter((k) => !pending.has(k));
    const found = new Map<string, MsgRow>();
    if (missing.length > 0) for (const r of await this.getBatch.read(missing)) found.set(r.key, r);
    return keys.map((k) => (pending.has(k) ? (pending.get(k) ?? undefined) : found.get(k)));
  }

  /** Rows whose correlation key is one of `ups` (pending writes included). */
  async byUp(ups: readonly string[]): Promise<MsgRow[]> {
    const pendingKeys = this.overlayKeys();
    const pending: MsgRow[] = [];
    for (const up of ups) {
      const key = this.overlayUp.get(up);
      const row = key === undefined ? undefined : this.overlay.get(key);
      if (row && row.up === up) pending.push(row);
    }
    const out = new Map<string, MsgRow>();
    for (const r of await this.upBatch.read(ups)) if (!pendingKeys.has(r.key)) out.set(r.key, r);
    for (const row of pending) out.set(row.key, row);
    return [...out.values()];
  }

  claimDue(tenants: readonly string[], now: number, until: number, limit: number, state: ClaimState = MSG_QUEUED): Promise<MsgRow[]> {
    if (tenants.length === 0) return Promise.resolve([]);
    return this.backend.claimDue(tenants, now, until, limit, state);
  }

  wake(tenant: string, now: number): Promise<number> {
    return this.backend.wake(tenant, now);
  }

  async early(ups: readonly string[]): Promise<EarlyRow[]> {
    const dropping = new Set(this.overlayUnearly);
    return (await this.backend.early(ups)).filter((r) => !dropping.has(earlyId(r.up, r.rid)));
  }

  /** File an early receipt (see ForwardBackend.park): durable once it resolves true. */
  park(rows: readonly EarlyRow[]): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('forward store is closed'));
    return this.backend.park(rows);
  }

  earlyMatchable(limit: number): Promise<EarlyRow[]> {
    return this.backend.earlyMatchable(limit);
  }

  earlyExpired(now: number, limit: number): Promise<EarlyRow[]> {
    return this.backend.earlyExpired(now, limit);
  }

  sweep(now: number, earlyBefore: number): Promise<number> {
    return this.backend.sweep(now, earlyBefore);
  }

  /**
   * Whether the journal can be written now: the backend's probe, and the
   * last commit not failed (a disk that fills fails commits, not a probe).
   */
  async probe(): Promise<void> {
    await this.backend.probe();
    // After a failed commit, only a commit that works says writes work again. It is made here, not
    // waited for: a gateway kept out of traffic while its health says "not writable" would wait for ever.
    if (this.lastError !== undefined) {
      const now = this.clock.wall();
      await this.write([{ t: 'put', row: { key: PROBE_KEY, tenant: '', up: null, state: MSG_FINAL, due: 0, expires: now, created: now, route: null, data: '{}' } }]);
    }
  }

  depth(): Promise<QueueDepth[]> {
    return this.backend.depth();
  }

  /** Let pending writes commit, then close. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing || this.scheduled || this.queued.ops.length > 0) {
      // Lazy ops waiting for a commit that no write brings: now.
      if (!this.flushing && !this.scheduled) this.schedule();
      if (this.flushing) await this.flushing.catch(() => undefined);
      else await new Promise((r) => setImmediate(r));
    }
    await Promise.all(this.earlyReads);
    this.closed = true;
    await this.backend.close();
  }
}

/**
 * Reads by key made in the same turn of the event loop, answered by one
 * backend query: under load, receipts arrive a window at a time.
 */
class ReadBatch<T> {
  private wanted: { keys: readonly string[]; resolve: (rows: T[]) => void; reject: (e: unknown) => void }[] = [];

  constructor(
    private readonly query: (keys: readonly string[]) => Promise<T[]>,
    private readonly keyOf: (row: T) => string,
  ) {}

  read(keys: readonly string[]): Promise<T[]> {
    return new Promise((resolve, reject) => {
      if (this.wanted.length === 0) afterTurnWrites(() => void this.run());
      this.wanted.push({ keys, resolve, reject });
    });
  }

  private async run(): Promise<void> {
    const wanted = this.wanted;
    this.wanted = [];
    try {
      const rows = await this.query([...new Set(wanted.flatMap((w) => w.keys))]);
      const by = new Map<string, T>();
      for (const r of rows) by.set(this.keyOf(r), r);
      for (const w of wanted) w.resolve(w.keys.flatMap((k) => (by.has(k) ? [by.get(k)!] : [])));
    } catch (err) {
      for (const w of wanted) w.reject(err);
    }
  }
}

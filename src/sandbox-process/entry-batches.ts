/**
 * Handlers that arrive together enter the isolate together: dispatches
 * queued in one turn of the event loop go in as one entry (one thread hop,
 * one copy) for up to a batch's worth, PDUs given as raw frames in one
 * buffer; host call results that arrive together are settled together the
 * same way. A batch's expected CPU stays at a quarter of handler_timeout_ms
 * (of inline_entry_ms when inline), from the tenant's measured CPU per call;
 * after a batch times out the tenant goes one per entry for a while, so the
 * next timeout lands on the handler that spun.
 */
import type { Clock } from '../util/clock';
import type { CpuBudget } from './cpu-budget';
import type { EntryError } from './isolate-failures';
import type { PolicyIsolate } from './policy-isolate';

/**
 * PDUs per isolate entry at most. On the isolate's thread smaller entries let
 * results leave while the isolate works on the next (measured: 16 beat 64 at
 * window 64, one ESME); an inline entry has no such overlap, so fewer and
 * larger ones cost less (measured: 64 beat 16 by 2-5% at window 64).
 */
const MAX_BATCH = 16;
const MAX_INLINE_BATCH = 64;

/** A PDU dispatched as its raw frame (the sandbox process's normal case); the isolate builds its view. */
interface FramePayload {
  frame: Uint8Array;
  session: unknown;
}

function isFrame(payload: unknown): boolean {
  return (payload as Partial<FramePayload> | undefined)?.frame instanceof Uint8Array;
}

export interface BatchSizing {
  /** The tenant's entries run inline now. */
  inline: boolean;
  /** The CPU one entry may take: handler_timeout_ms, or inline_entry_ms when less and inline. */
  budgetMs: number;
}

export class EntryBatches {
  private batch: { iso: PolicyIsolate; items: [number, string, unknown][] } | undefined;
  /** Host call results waiting to enter together, with the dispatch each call came from. */
  private resolves: { iso: PolicyIsolate; items: [number, boolean, unknown][]; origins: (number | undefined)[] } | undefined;
  /** Until then, one per entry (a batch timed out). */
  private singleUntil = 0;

  constructor(
    private readonly clock: Clock,
    private readonly cpu: CpuBudget,
    private readonly sizing: () => BatchSizing,
    /** An entry failed: called for each handler it carried (`origin`: its dispatch id; undefined for a result whose call came from no dispatch). */
    private readonly failed: (iso: PolicyIsolate, origin: number | undefined, err: EntryError) => void,
  ) {}

  /** Start handler `id` in `iso`, with whatever else is dispatched in this turn. */
  dispatch(iso: PolicyIsolate, id: number, kind: string, payload: unknown): void {
    if (this.batch && this.batch.iso !== iso) this.flushBatch();
    if (!this.batch) {
      this.batch = { iso, items: [] };
      queueMicrotask(() => this.flushBatch());
    }
    this.batch.items.push([id, kind, payload]);
  }

  /**
   * Hand a host call's result to the policy awaiting it. Results that arrive
   * together enter together, like dispatches: with a handler awaiting a cache
   * read per message, one entry per result made the thread hop, not the
   * policy, the cost of every message.
   */
  resolve(iso: PolicyIsolate, callId: number, ok: boolean, value: unknown, origin: number | undefined): void {
    if (this.resolves && this.resolves.iso !== iso) this.flushResolves();
    if (!this.resolves) {
      this.resolves = { iso, items: [], origins: [] };
      queueMicrotask(() => this.flushResolves());
    }
    this.resolves.items.push([callId, ok, value]);
    this.resolves.origins.push(origin);
  }

  /** Handlers per entry: a batch's expected CPU stays at a quarter of the entry's budget; one after a batch timed out. */
  private limit(): number {
    if (this.clock.now() < this.singleUntil) return 1;
    const perCall = Math.max(this.cpu.perCallMs, 0.005);
    const { inline, budgetMs } = this.sizing();
    return Math.max(1, Math.min(inline ? MAX_INLINE_BATCH : MAX_BATCH, Math.floor(budgetMs / 4 / perCall)));
  }

  private flushBatch(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    const limit = this.limit();
    const items = b.items;
    for (let i = 0; i < items.length; ) {
      // A run of PDUs given as raw frames, or of other dispatches, in arrival order.
      const frames = isFrame(items[i]![2]);
      let j = i + 1;
      while (j < items.length && j - i < limit && isFrame(items[j]![2]) === frames) j++;
      const chunk = items.slice(i, j);
      i = j;
      this.cpu.entered(chunk.length);
      const done = frames ? this.enterFrames(b.iso, chunk) : chunk.length === 1 ? b.iso.dispatch(chunk[0]![0], chunk[0]![1], chunk[0]![2]) : b.iso.dispatchMany(chunk);
      done.catch((err: EntryError) => this.chunkFailed(b.iso, chunk.map(([id]) => id), err));
    }
  }

  /** PDUs as raw frames: one fresh buffer with all of them goes in, and the isolate builds the views. */
  private enterFrames(iso: PolicyIsolate, chunk: [number, string, unknown][]): Promise<void> {
    let total = 0;
    for (const [, , p] of chunk) total += (p as FramePayload).frame.length;
    const bytes = new Uint8Array(total);
    const meta: number[] = [];
    const sessions: unknown[] = [];
    let off = 0;
    for (const [id, , p] of chunk) {
      const { frame, session } = p as FramePayload;
      bytes.set(frame, off);
      let s = sessions.indexOf(session);
      if (s === -1) s = sessions.push(session) - 1;
      meta.push(id, off, off + frame.length, s);
      off += frame.length;
    }
    return iso.dispatchFrames(bytes, meta, sessions);
  }

  private flushResolves(): void {
    const r = this.resolves;
    if (!r) return;
    this.resolves = undefined;
    if (r.iso.isDisposed) return;
    const limit = this.limit();
    for (let i = 0; i < r.items.length; i += limit) {
      const chunk = r.items.slice(i, i + limit);
      const origins = r.origins.slice(i, i + limit);
      const entered = chunk.length === 1 ? r.iso.resolve(...chunk[0]!) : r.iso.resolveMany(chunk);
      entered.catch((err: EntryError) => this.chunkFailed(r.iso, origins, err));
    }
  }

  /**
   * An entry for several handlers (dispatches, or results they awaited)
   * failed: every one of them fails with it, and after a timeout the tenant
   * goes one per entry for a while, so the next timeout lands on the one that spun.
   */
  private chunkFailed(iso: PolicyIsolate, origins: (number | undefined)[], err: EntryError): void {
    if (err.failure === 'timeout' && origins.length > 1) this.singleUntil = this.clock.now() + 10_000;
    for (const origin of origins) this.failed(iso, origin, err);
  }
}

/**
 * Every timer in Sluice goes through a Clock, so session, reconnect and
 * throttle behaviour can be tested on a manual clock against real sockets.
 *
 * A Clock tells two times (docs/design.md, "Time"):
 * - `now()`: monotonic milliseconds, for in-process timers and durations
 *   only. It starts near zero with each process, so it means nothing to the
 *   next process or to another replica and is never stored.
 * - `wall()`: milliseconds since the epoch, for everything persisted or
 *   shared (journal due times, expiries, holds, leases, receipt dates).
 */
export interface TimerHandle {
  /** Absolute due time on this clock's `now()`, in ms. */
  readonly due: number;
}

export interface Clock {
  /** Monotonic milliseconds (this process only). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (persisted and shared times). */
  wall(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

interface RealHandle extends TimerHandle {
  t: NodeJS.Timeout;
}

/** The process clock: `performance.now()`, `Date.now()` and unref'd Node timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    const h: RealHandle = { due: performance.now() + ms, t };
    return h;
  },
  clearTimeout(handle) {
    if (handle) clearTimeout((handle as RealHandle).t);
  },
};

/**
 * A loop on a clock: `fn` runs `ms` after the last run ended (a slow run
 * never overlaps the next), until `stop()`. It holds one timer handle at a
 * time, however long it runs.
 */
export class Repeat {
  private handle: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
    private readonly fn: () => Promise<void> | void,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.arm();
  }

  private arm(): void {
    this.handle = this.clock.setTimeout(() => {
      this.handle = undefined;
      if (this.stopped) return;
      let p: Promise<void> | void;
      try {
        p = this.fn();
      } catch (err) {
        this.onError(err as Error);
        p = undefined;
      }
      void Promise.resolve(p)
        .catch((err: Error) => this.onError(err))
        .finally(() => {
          if (!this.stopped) this.arm();
        });
    }, this.ms);
  }

  /** Whether a run is armed (for tests: one handle, never a growing list). */
  get armed(): boolean {
    return this.handle !== undefined;
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.handle);
    this.handle = undefined;
  }
}

interface ManualTimer extends TimerHandle {
  fn: () => void;
  seq: number;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to; timers fire in due order during
 * `advance`. Its wall time starts at `wallStart` (default 2026-01-01) and
 * moves with it; `jumpWall` moves the wall alone (a clock step, another
 * replica's clock).
 */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: ManualTimer[] = [];
  private wallOffset: number;

  constructor(wallStart = Date.UTC(2026, 0, 1)) {
    this.wallOffset = wallStart;
  }

  now(): number {
    return this.t;
  }

  wall(): number {
    return this.wallOffset + this.t;
  }

  /** Move the wall clock alone by `ms` (negative: back). */
  jumpWall(ms: number): void {
    this.wallOffset += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { due: this.t + Math.max(0, ms), fn, seq: this.seq++, cancelled: false };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) (handle as ManualTimer).cancelled = true;
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: ManualTimer | undefined;
      for (const t of this.timers) {
        if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.t = Math.max(this.t, next.due);
      next.cancelled = true;
      next.fn();
    }
    this.t = target;
  }
}

/**
 * Every timer in Sluice goes through a Clock, so session, reconnect and
 * throttle behaviour can be tested on a manual clock against real sockets.
 */
export interface TimerHandle {
  /** Absolute due time on this clock, in ms. */
  readonly due: number;
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

interface RealHandle extends TimerHandle {
  t: NodeJS.Timeout;
}

/** The process clock: `performance.now()` and unref'd Node timers. */
export const realClock: Clock = {
  now: () => performance.now(),
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

interface ManualTimer extends TimerHandle {
  fn: () => void;
  seq: number;
  cancelled: boolean;
}

/** A clock that only moves when told to; timers fire in due order during `advance`. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: ManualTimer[] = [];

  now(): number {
    return this.t;
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

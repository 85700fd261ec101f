import type { Clock, TimerHandle } from './clock';

/** Returned by `withDeadline` when the deadline passed first. */
export const DEADLINE: unique symbol = Symbol('deadline');

/** Race a promise against a wall-time deadline on `clock`; a late result is discarded. */
export function withDeadline<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | typeof DEADLINE> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => resolve(DEADLINE), ms);
    p.then(
      (v) => {
        clock.clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}

interface Entry {
  due: number;
  onExpire: () => void;
  done: boolean;
}

/**
 * Many deadlines of one fixed length on one timer: entries expire in the
 * order they were added, so a FIFO and a timer armed for its head replace a
 * timer per PDU on the hot path.
 */
export class DeadlineQueue {
  private entries: Entry[] = [];
  private head = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
  ) {}

  /** Call `onExpire` after `ms` unless the returned entry is settled first. */
  add(onExpire: () => void): { settle(): boolean } {
    const e: Entry = { due: this.clock.now() + this.ms, onExpire, done: false };
    this.entries.push(e);
    if (!this.timer) this.arm();
    return {
      // true when this call settled it (the deadline had not fired yet)
      settle: () => {
        if (e.done) return false;
        e.done = true;
        return true;
      },
    };
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  private arm(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.done) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    const first = this.entries[this.head];
    if (!first) {
      this.entries = [];
      this.head = 0;
      return;
    }
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, first.due - this.clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!;
      if (!e.done && e.due > now) break;
      this.head++;
      if (!e.done) {
        e.done = true;
        e.onExpire();
      }
    }
    this.arm();
  }
}

/**
 * Deadlines of one fixed length for numeric keys, without an object or a
 * closure per key: `onExpire(key)` runs for every key added `ms` ago, and the
 * owner ignores keys it has settled meanwhile (it keeps its own map of what
 * is live, so nothing needs cancelling here).
 */
export class KeyedDeadlines {
  private keys: number[] = [];
  private due: number[] = [];
  private head = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
    private readonly onExpire: (key: number) => void,
  ) {}

  add(key: number): void {
    this.keys.push(key);
    this.due.push(this.clock.now() + this.ms);
    this.timer ??= this.clock.setTimeout(() => this.fire(), this.ms);
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    while (this.head < this.keys.length && this.due[this.head]! <= now) this.onExpire(this.keys[this.head++]!);
    if (this.head === this.keys.length) {
      this.keys = [];
      this.due = [];
      this.head = 0;
      return;
    }
    if (this.head > 1024) {
      this.keys = this.keys.slice(this.head);
      this.due = this.due.slice(this.head);
      this.head = 0;
    }
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, this.due[this.head]! - now));
  }

  clear(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.keys = [];
    this.due = [];
    this.head = 0;
  }
}

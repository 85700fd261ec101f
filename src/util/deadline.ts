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

/** One deadline: settle it when the work finished first. */
export interface Deadline {
  /** True when this call settled it (the deadline had not fired yet). */
  settle(): boolean;
}

const spent = (): void => {};

class Entry implements Deadline {
  constructor(
    readonly due: number,
    public onExpire: () => void,
  ) {}

  get done(): boolean {
    return this.onExpire === spent;
  }

  settle(): boolean {
    if (this.onExpire === spent) return false;
    // Drop the closure now: a settled entry waiting for its turn in the FIFO
    // must not keep the PDU, session and callbacks it captured alive.
    this.onExpire = spent;
    return true;
  }
}

/**
 * Many deadlines of one fixed length on one timer: entries expire in the
 * order they were added, so a FIFO and a timer armed for its head replace a
 * timer per PDU on the hot path. Settled entries at the head are dropped as
 * new ones arrive, so the FIFO holds about what is in flight, not a whole
 * deadline's worth of traffic.
 */
export class DeadlineQueue {
  private entries: Entry[] = [];
  private head = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
  ) {}

  /** Call `onExpire` after `ms` unless the returned deadline is settled first. */
  add(onExpire: () => void): Deadline {
    this.dropSettled();
    const e = new Entry(this.clock.now() + this.ms, onExpire);
    this.entries.push(e);
    if (!this.timer) this.arm();
    return e;
  }

  /** Entries not yet settled or expired (and settled ones not yet dropped). */
  get size(): number {
    return this.entries.length - this.head;
  }

  private dropSettled(): void {
    const entries = this.entries;
    let head = this.head;
    while (head < entries.length && entries[head]!.done) head++;
    if (head === entries.length) {
      if (head > 0) this.entries = [];
      head = 0;
    } else if (head > 1024 && head * 2 > entries.length) {
      this.entries = entries.slice(head);
      head = 0;
    }
    this.head = head;
  }

  private arm(): void {
    this.dropSettled();
    const first = this.entries[this.head];
    if (!first) return;
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, first.due - this.clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!;
      if (!e.done && e.due > now) break;
      this.head++;
      const onExpire = e.onExpire;
      if (onExpire !== spent) {
        e.onExpire = spent;
        onExpire();
      }
    }
    this.arm();
  }
}

/**
 * Deadlines of one fixed length for numeric keys, without an object or a
 * closure per key: `onExpire(key)` runs for every key added `ms` ago that
 * `isLive(key)` still reports live. The owner keeps its own map of what is
 * live, so nothing needs cancelling here; keys no longer live at the head
 * are dropped as new ones arrive, so the arrays hold about what is in flight.
 */
export class KeyedDeadlines {
  private keys: number[] = [];
  private due: number[] = [];
  private head = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
    private readonly isLive: (key: number) => boolean,
    private readonly onExpire: (key: number) => void,
  ) {}

  add(key: number): void {
    this.dropSettled();
    this.keys.push(key);
    this.due.push(this.clock.now() + this.ms);
    this.timer ??= this.clock.setTimeout(() => this.fire(), this.ms);
  }

  /** Keys held (live or not yet dropped). */
  get size(): number {
    return this.keys.length - this.head;
  }

  private dropSettled(): void {
    const keys = this.keys;
    let head = this.head;
    while (head < keys.length && !this.isLive(keys[head]!)) head++;
    if (head === keys.length) {
      if (head > 0) {
        this.keys = [];
        this.due = [];
      }
      head = 0;
    } else if (head > 1024 && head * 2 > keys.length) {
      this.keys = keys.slice(head);
      this.due = this.due.slice(head);
      head = 0;
    }
    this.head = head;
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    while (this.head < this.keys.length && this.due[this.head]! <= now) {
      const key = this.keys[this.head++]!;
      if (this.isLive(key)) this.onExpire(key);
    }
    this.dropSettled();
    if (this.head < this.keys.length) this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, this.due[this.head]! - now));
  }

  clear(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.keys = [];
    this.due = [];
    this.head = 0;
  }
}

import { doubling } from './backoff';

/**
 * The one strike policy of the sandbox: each strike against a tenant (its
 * isolate killed at a limit, its sandbox process crashed under it) keeps
 * it out for a doubling delay, and `quarantineAfter` strikes within
 * `windowMs` quarantine it until a new version or config of it starts
 * (the caller then calls `reset`). Times are the caller's monotonic clock.
 * The tenant runtime counts kills of isolates in a sandbox process; the pool
 * counts crashes of whole sandbox processes (docs/design.md, "Tenants").
 */
export interface StrikeOptions {
  /** The delay after the first strike; doubles with each strike in the window. */
  baseMs: number;
  capMs: number;
  windowMs: number;
  quarantineAfter: number;
}

export const STRIKE_DEFAULTS: StrikeOptions = { baseMs: 1000, capMs: 60_000, windowMs: 600_000, quarantineAfter: 3 };

export interface StrikeVerdict {
  /** Strikes in the window, this one included. */
  count: number;
  /** Quarantine now: nothing more of the tenant runs until a new version or config. */
  quarantine: boolean;
  /** Otherwise: keep the tenant out this long. */
  delayMs: number;
}

export class Strikes {
  private at: number[] = [];

  constructor(private readonly opts: StrikeOptions = STRIKE_DEFAULTS) {}

  strike(now: number): StrikeVerdict {
    this.at = this.at.filter((t) => now - t < this.opts.windowMs);
    this.at.push(now);
    const count = this.at.length;
    return { count, quarantine: count >= this.opts.quarantineAfter, delayMs: doubling(this.opts.baseMs, count, this.opts.capMs) };
  }

  /** Strikes within the window at `now`. */
  count(now: number): number {
    return this.at.filter((t) => now - t < this.opts.windowMs).length;
  }

  /** A new version or config started: a clean sheet. */
  reset(): void {
    this.at = [];
  }
}

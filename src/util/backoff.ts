/**
 * The one doubling delay in Sluice: `baseMs` after the first failure,
 * twice that after the second, and so on, never above `capMs`. Reconnects,
 * sandbox restarts, penalties, inline bars, failed-bind delays and queue
 * retries all take their delays from it.
 */
export function doubling(baseMs: number, failures: number, capMs = Number.POSITIVE_INFINITY): number {
  // 2 ** 30 × any sane base is past every cap; the exponent stops there so the result stays finite.
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

/** Reconnect delays: `doubling` from `baseMs`, full jitter in [50%, 100%], capped. */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

export const RECONNECT_CAP_MS = 60_000;

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;
  constructor(private readonly opts: BackoffOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next attempt; each call counts as one failure. */
  next(): number {
    this.attempt++;
    const exp = doubling(this.opts.baseMs, this.attempt, this.opts.maxMs);
    return Math.min(this.opts.maxMs, Math.round(exp * (0.5 + 0.5 * this.random())));
  }

  /** After a healthy session the next failure starts again from `baseMs`. */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}

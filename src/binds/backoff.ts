/** Reconnect delays: exponential from `baseMs`, full jitter in [50%, 100%], capped. */
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
    const exp = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
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

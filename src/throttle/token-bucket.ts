import type { Clock } from '../util/clock';

/**
 * A token bucket of `rate` tokens per second holding at most `burst`.
 * `rate` 0 means unlimited. Time comes from the injected clock. The one
 * bucket of the code base: message rates (a token per PDU), log lines, and
 * a tenant's CPU budget (tokens are CPU ms, spent after the fact, so the
 * balance may go below zero).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private _rate: number;
  private _burst: number;

  constructor(rate: number, private readonly clock: Clock, burst = Math.max(1, rate)) {
    this._rate = rate;
    this._burst = burst;
    this.tokens = burst;
    this.last = clock.now();
  }

  get rate(): number {
    return this._rate;
  }

  get burst(): number {
    return this._burst;
  }

  /** New limits (a config reload): what was earned at the old rate is kept, up to the new burst. */
  setRate(rate: number, burst = Math.max(1, rate)): void {
    this.refill();
    this._rate = rate;
    this._burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Tokens there now (below zero after spending more than there was). */
  balance(): number {
    this.refill();
    return this.tokens;
  }

  /** Take `n` tokens whether or not they are there: the balance may go below zero. */
  spend(n: number): void {
    if (this.unlimited) return;
    this.refill();
    this.tokens -= n;
  }

  /** Ms until the balance is back to `level` (0 when it is there now). */
  msUntil(level = 0): number {
    if (this.unlimited) return 0;
    this.refill();
    return this.tokens >= level ? 0 : Math.ceil(((level - this.tokens) * 1000) / this._rate);
  }

  get unlimited(): boolean {
    return this._rate <= 0;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last) {
      // A balance below zero earns its way back; one above the burst (a lowered burst) is cut.
      this.tokens = Math.min(this._burst, this.tokens + ((now - this.last) * this._rate) / 1000);
      this.last = now;
    }
  }

  /** Take a token now if one is there. */
  tryTake(): boolean {
    if (this.unlimited) return true;
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /**
   * Reserve a token and return how many ms the caller must wait before using
   * it (0 = now). Reservations queue in order: the balance may go negative.
   */
  reserve(): number {
    if (this.unlimited) return 0;
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this._rate);
  }

  /** Give back a reservation that will not be used. */
  refund(): void {
    if (!this.unlimited) this.tokens = Math.min(this._burst, this.tokens + 1);
  }
}

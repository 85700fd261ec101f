import type { Clock } from '../util/clock';

/**
 * A token bucket of `rate` tokens per second holding at most `burst`.
 * `rate` 0 means unlimited. Time comes from the injected clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly rate: number;
  readonly burst: number;

  constructor(rate: number, private readonly clock: Clock, burst = Math.max(1, rate)) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = clock.now();
  }

  get unlimited(): boolean {
    return this.rate <= 0;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
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
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }

  /** Give back a reservation that will not be used. */
  refund(): void {
    if (!this.unlimited) this.tokens = Math.min(this.burst, this.tokens + 1);
  }
}

/**
 * A tenant's CPU in its sandbox process: what its isolates have used (read
 * from isolated-vm's CPU time, so a VM that takes the core away is not the
 * tenant's doing), its CPU budget — ms of CPU earned at `cpu_ms_per_s` up to
 * one second's worth, spent as the policy runs, so the balance goes below
 * zero after the fact (throttle/token-bucket.ts) — and the average CPU per
 * call that sizes its batches.
 */
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock } from '../util/clock';

export class CpuBudget {
  private readonly bucket: TokenBucket;
  /** The measured isolate's CPU time when last read. */
  private seen = 0;
  private total = 0;
  /** Isolate CPU per call, ms (moving average). */
  private perCall = 0;
  private callsSinceSample = 0;

  constructor(cpuMsPerS: number, clock: Clock) {
    this.bucket = new TokenBucket(cpuMsPerS, clock);
  }

  setRate(cpuMsPerS: number): void {
    this.bucket.setRate(cpuMsPerS);
  }

  /** Another isolate is measured from now on: its CPU time counts from its own zero. */
  restart(): void {
    this.seen = 0;
  }

  /** `n` more calls entered the isolate (the per-call average is taken once 8 have). */
  entered(n: number): void {
    this.callsSinceSample += n;
  }

  /** Charge what the measured isolate used since the last read (none there, or disposed: nothing new). */
  charge(iso: { readonly isDisposed: boolean; readonly cpuMs: number } | undefined): void {
    const used = iso && !iso.isDisposed ? iso.cpuMs : this.seen;
    const delta = Math.max(0, used - this.seen);
    this.seen = used;
    this.total += delta;
    if (this.callsSinceSample >= 8) {
      this.perCall = this.perCall === 0 ? delta / this.callsSinceSample : 0.8 * this.perCall + (0.2 * delta) / this.callsSinceSample;
      this.callsSinceSample = 0;
    }
    this.bucket.spend(delta);
  }

  /** Spent more than it earned: new work waits. */
  overdrawn(): boolean {
    return this.bucket.balance() < 0;
  }

  /** Ms until the balance is back above zero at this tenant's rate. */
  msUntilBack(): number {
    return this.bucket.msUntil(0);
  }

  /** CPU used by the tenant's isolates in this process, ms. */
  get totalMs(): number {
    return this.total;
  }

  /** Average CPU per call, ms; 0 until measured. */
  get perCallMs(): number {
    return this.perCall;
  }
}

/**
 * A tenant's CPU in its sandbox process: what its isolates have used (read
 * from isolated-vm's CPU time, scaled to the CPU the process really got: see
 * CpuScale), its CPU budget — ms of CPU earned at `cpu_ms_per_s` up to
 * one second's worth, spent as the policy runs, so the balance goes below
 * zero after the fact (throttle/token-bucket.ts) — and the average CPU per
 * call that sizes its batches.
 */
import { TokenBucket } from '../throttle/token-bucket';
import { realClock, type Clock } from '../util/clock';

/** How long CpuScale measures at least before it takes a new factor… */
const SCALE_WINDOW_MS = 20;
/** …once the isolates ran this long in it (less says little)… */
const SCALE_MIN_MS = 5;
/** …or, whatever they ran, after this long. */
const SCALE_MAX_WINDOW_MS = 1000;

/**
 * isolated-vm's `cpuTime` is the time its thread spent inside the isolate by
 * the clock on the wall, not the CPU it got: measured here, 1,872 ms of
 * `cpuTime` for 1,001 ms of CPU while the cores were shared. On a host whose
 * cores are busy, a tenant would pay for the time its thread waited for one
 * (and be throttled for the host's load, not its own). So the isolates'
 * times are scaled, per sandbox process, to what the process really got:
 * over each window (20 ms once the isolates ran 5 ms in it, else at most a
 * second), the factor is the process's CPU over the isolates' time, at most
 * 1, and the next window is charged at it. The
 * process's CPU includes its own work besides the isolates, so the factor
 * errs towards charging in full: it is below 1 only when the isolates' time
 * cannot all have been CPU.
 */
export class CpuScale {
  private factor = 1;
  private isolateMs = 0;
  private windowStart: number;
  private cpuStart: number;

  constructor(
    private readonly now: () => number,
    /** The process's CPU so far, user and system, ms. */
    private readonly processCpuMs: () => number,
  ) {
    this.windowStart = now();
    this.cpuStart = processCpuMs();
  }

  /** The CPU that `isolateMs` of isolate time stands for. */
  scale(isolateMs: number): number {
    this.isolateMs += isolateMs;
    const t = this.now();
    const age = t - this.windowStart;
    if ((age >= SCALE_WINDOW_MS && this.isolateMs >= SCALE_MIN_MS) || age >= SCALE_MAX_WINDOW_MS) {
      const cpu = this.processCpuMs();
      if (this.isolateMs > 0) this.factor = Math.min(1, Math.max(0, cpu - this.cpuStart) / this.isolateMs);
      this.windowStart = t;
      this.cpuStart = cpu;
      this.isolateMs = 0;
    }
    return isolateMs * this.factor;
  }

  /** The factor charges are taken at now. */
  get current(): number {
    return this.factor;
  }
}

let processScale: CpuScale | undefined;
/** This process's scale, shared by its tenants. */
function sharedScale(): CpuScale {
  processScale ??= new CpuScale(
    () => realClock.now(),
    () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
  );
  return processScale;
}

export class CpuBudget {
  private readonly bucket: TokenBucket;
  /** The measured isolate's CPU time (isolated-vm's) when last read. */
  private seen = 0;
  private total = 0;
  /** Isolate CPU per call, ms (moving average). */
  private perCall = 0;
  private callsSinceSample = 0;

  constructor(
    cpuMsPerS: number,
    clock: Clock,
    private readonly scale: CpuScale = sharedScale(),
  ) {
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
    const delta = this.scale.scale(Math.max(0, used - this.seen));
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

/**
 * A tenant's policy log lines, rate-limited again in its sandbox process:
 * the prelude's own limit runs inside the isolate on intrinsics the policy
 * can tamper with, and every line that gets past this point costs the core
 * an IPC message. A backstop, so it allows twice the burst (lines the
 * prelude passed fairly are not dropped a second time); what it drops is
 * counted on the next line that passes, or reported within a second.
 */
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock, TimerHandle } from '../util/clock';

export type LogLine = (level: string, msg: string, fields?: unknown) => void;

export class PolicyLogGate {
  private readonly bucket: TokenBucket;
  private dropped = 0;
  private report: TimerHandle | undefined;

  constructor(
    maxLogPerS: number,
    private readonly clock: Clock,
    /** Where lines that pass go (the host's log, for this tenant). */
    private readonly emit: LogLine,
  ) {
    this.bucket = new TokenBucket(maxLogPerS, clock, 2 * maxLogPerS);
  }

  setRate(maxLogPerS: number): void {
    this.bucket.setRate(maxLogPerS, 2 * maxLogPerS);
  }

  /** A line the policy logged; `dropped`: lines the prelude dropped before it. */
  line(e: { level: string; msg: string; fields?: unknown; dropped?: number }): void {
    const carried = typeof e.dropped === 'number' ? e.dropped : 0;
    if (!this.bucket.tryTake()) {
      // This line, and the drops the prelude was carrying on it, are reported later.
      this.dropped += 1 + carried;
      this.reportLater();
      return;
    }
    const dropped = carried + this.dropped;
    this.dropped = 0;
    const fields = dropped ? { ...(e.fields as object), logs_dropped: dropped } : e.fields;
    this.emit(String(e.level), String(e.msg).slice(0, 2049), fields);
  }

  /** Drops are reported within a second even if the policy logs nothing more. */
  private reportLater(): void {
    if (this.report) return;
    this.report = this.clock.setTimeout(() => {
      this.report = undefined;
      if (this.dropped === 0) return;
      const n = this.dropped;
      this.dropped = 0;
      this.emit('warn', 'policy log lines dropped over max_log_per_s', { logs_dropped: n });
    }, 1000);
  }

  dispose(): void {
    this.clock.clearTimeout(this.report);
  }
}

/**
 * A tenant's standing for inline entries (policy code run on its sandbox
 * process's own thread, PolicyIsolate's `enterInline`): whether its entries
 * may go inline, how long they stay off the thread after one held it, and
 * the one slow entry an hour that passes. The standing is the tenant's, not
 * its version's: it holds across reloads.
 */
import { doubling } from '../util/backoff';
import type { Clock } from '../util/clock';

/**
 * Tenants allowed a longer handler_timeout_ms never run inline: one inline
 * entry that spins holds every other tenant of the process for that long,
 * once, before the tenant is barred.
 */
export const INLINE_MAX_TIMEOUT_MS = 100;
/** One slow (not failed) inline entry per this long passes without a demotion; see `tolerate`. */
export const SLOW_GRACE_MS = 3_600_000;

export interface InlineStandingOptions {
  /** `sandbox.inline_entry_ms` (for the log lines). */
  inlineEntryMs?: number;
  /** First time a tenant's entries stay off this thread after an inline one ran long; doubles per offence, to an hour. */
  inlineBarBaseMs?: number;
}

export class InlineStanding {
  /** Inline entries that ran long or failed. */
  private offences = 0;
  /** Until when (clock ms) this tenant's entries stay off the process's thread. */
  private barredUntil = 0;
  /** When (clock ms) a slow inline entry last passed as a one-off. */
  private slowToleratedAt = -Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly opts: InlineStandingOptions,
    /** The tenant's log (through the host). */
    private readonly log: (level: string, msg: string, fields?: unknown) => void,
  ) {}

  get inlineOffences(): number {
    return this.offences;
  }

  /** May its entries go inline now, with this handler_timeout_ms? */
  allows(handlerTimeoutMs: number): boolean {
    return handlerTimeoutMs <= INLINE_MAX_TIMEOUT_MS && this.clock.now() >= this.barredUntil;
  }

  /**
   * One inline entry an hour may finish over inline_entry_ms without a
   * demotion: on a shared machine a well-behaved entry is sometimes charged
   * a collection of its heap, or time the VM took the core away, and a
   * minute on its own thread for that costs its tenant a tenth of its
   * throughput. A policy that is really slow runs over again within the hour
   * and is demoted then; one that fails (timeout, memory) is at once.
   */
  tolerate(ms: number): boolean {
    const now = this.clock.now();
    if (now - this.slowToleratedAt < SLOW_GRACE_MS) return false;
    this.slowToleratedAt = now;
    this.log('info', 'policy entry ran over inline_entry_ms once; its entries stay inline (one such entry an hour)', {
      entry_ms: Math.round(ms * 100) / 100,
      inline_entry_ms: this.opts.inlineEntryMs,
    });
    return true;
  }

  /**
   * An inline entry ran over inline_entry_ms, or failed: every other tenant
   * of this process waited for it. The tenant's entries are back on the
   * isolate's thread, and stay there for a minute, doubling per offence up
   * to an hour, before a new trial.
   */
  demoted(ms: number, why: string): void {
    this.offences++;
    const bar = doubling(this.opts.inlineBarBaseMs ?? 60_000, this.offences, 3_600_000);
    this.barredUntil = this.clock.now() + bar;
    this.log('warn', 'policy entry held the sandbox thread; its entries run on their own thread again', {
      reason: why,
      entry_ms: Math.round(ms * 100) / 100,
      inline_entry_ms: this.opts.inlineEntryMs,
      barred_ms: bar,
    });
  }
}

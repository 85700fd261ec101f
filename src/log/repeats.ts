import type { Logger } from 'pino';
import type { Clock } from '../util/clock';

/**
 * Identical warnings collapsed: the first of a kind is logged at once; the
 * same one again within `windowMs` is only counted, and the count is logged
 * once the window ends. A tenant removed under load then gives one line and
 * a count, not one line per PDU that was in flight. At most `maxKinds` kinds
 * are held open; past that, warnings are logged as they come.
 */
export class RepeatedWarnings {
  private readonly open = new Map<string, { repeats: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 10_000,
    private readonly maxKinds = 256,
  ) {}

  warn(log: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
    const seen = this.open.get(key);
    if (seen) {
      seen.repeats++;
      return;
    }
    log.warn(fields, msg);
    if (this.open.size >= this.maxKinds) return;
    const entry = { repeats: 0 };
    this.open.set(key, entry);
    this.clock.setTimeout(() => {
      this.open.delete(key);
      if (entry.repeats > 0) log.warn({ ...fields, repeats: entry.repeats }, `${msg} (the same ${entry.repeats} more times in ${this.windowMs / 1000} s)`);
    }, this.windowMs);
  }
}

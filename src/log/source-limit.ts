import type { Logger } from 'pino';
import type { Clock } from '../util/clock';

/** The log methods a peer's own lines go through. */
export interface PeerLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

interface Window {
  start: number;
  lines: number;
  suppressed: number;
}

const WINDOW_MS = 60_000;
/** Sources tracked at once; past it, every new source shares one budget. */
const MAX_SOURCES = 10_000;
const OVERFLOW = '*';

/**
 * Lines a peer can make us write, limited per source (a client address, an
 * upstream bind): what it sends before it authenticates, malformed PDUs,
 * refused binds. A peer that floods is not to flood the log (a 16 KB
 * system_id at every bind made 162 MB in 10 s; malformed PDUs, 46 MB). Each
 * source gets `perMinute` lines a minute; the first line over says so, once,
 * and the first line of the next minute carries how many were left out.
 */
export class SourceLogLimiter {
  private readonly sources = new Map<string, Window>();
  /** Lines left out, all sources, since start (for metrics). */
  suppressed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly perMinute: number,
  ) {}

  /** A logger for one source's lines, over `log`. */
  for(log: Logger, source: string): PeerLog {
    const write = (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string): void => {
      const t = this.take(source);
      if (!t.write) return;
      const line = t.leftOut > 0 ? { ...obj, lines_left_out: t.leftOut } : obj;
      if (t.last) log.warn(line, `${msg} (further lines from this source are left out for the rest of the minute)`);
      else log[level](line, msg);
    };
    return { info: (obj, msg) => write('info', obj, msg), warn: (obj, msg) => write('warn', obj, msg) };
  }

  /**
   * Whether a line about `source` may be written now, whether it is the last
   * of its minute, and how many of the source's lines the minute before left out.
   */
  take(source: string): { write: boolean; last: boolean; leftOut: number } {
    const now = this.clock.now();
    let w = this.sources.get(source);
    if (!w) {
      if (this.sources.size >= MAX_SOURCES) this.sweep(now);
      const key = this.sources.size >= MAX_SOURCES ? OVERFLOW : source;
      w = this.sources.get(key);
      if (!w) this.sources.set(key, (w = { start: now, lines: 0, suppressed: 0 }));
    }
    let leftOut = 0;
    if (now - w.start >= WINDOW_MS) {
      leftOut = w.suppressed;
      w.start = now;
      w.lines = 0;
      w.suppressed = 0;
    }
    if (w.lines >= this.perMinute) {
      w.suppressed++;
      this.suppressed++;
      return { write: false, last: false, leftOut: 0 };
    }
    w.lines++;
    return { write: true, last: w.lines === this.perMinute, leftOut };
  }

  private sweep(now: number): void {
    for (const [k, w] of this.sources) if (now - w.start >= WINDOW_MS && w.suppressed === 0) this.sources.delete(k);
  }
}

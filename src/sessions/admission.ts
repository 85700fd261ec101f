import type { Logger } from 'pino';
import type { AdmissionConfig } from '../config/schema';
import { SourceLogLimiter } from '../log/source-limit';
import type { Clock } from '../util/clock';
import { doubling } from '../util/backoff';

/**
 * Who may connect and how often they may fail to bind: the edge's limits
 * against bind guessing and connection floods.
 *
 * - Connections: at most `max_connections` in all and
 *   `max_connections_per_ip` from one address; more are closed at once.
 * - Failed binds are counted per source address, and per (address,
 *   system_id), over `bind_failure_window_ms`. Each failure is answered
 *   later than the one before (doubling from `bind_failure_delay_ms`, at
 *   most 5 s), and a connection is closed after `bind_failures_per_connection`.
 * - An address with `bind_failures_per_ip` failures, or one that failed
 *   `bind_failures_per_system_id` times for one system_id, is locked out for
 *   `bind_lockout_ms`: its binds are answered ESME_RBINDFAIL without asking
 *   the policy. The lockout is the guessing address's own: the right
 *   password from any other address still binds at once, so an attacker
 *   cannot lock a customer out by guessing its password.
 *
 * Each lockout is logged once while it lasts, and everything is counted.
 */
export class Admission {
  /** For /metrics. */
  readonly counts = { refusedTotal: 0, refusedPerIp: 0, bindFailures: 0, lockouts: 0, lockedOut: 0 };
  private open = 0;
  private readonly perIp = new Map<string, number>();
  /** Failure times per key (`ip` or `ip\0system_id`), and lockouts in force. */
  private readonly failures = new Map<string, number[]>();
  private readonly locked = new Map<string, number>();
  private lastPrune = 0;
  /** Lines a peer can make us write (refused binds, malformed PDUs), limited per source address. */
  readonly logs: SourceLogLimiter;

  constructor(
    private readonly cfg: AdmissionConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.logs = new SourceLogLimiter(clock, cfg.log_lines_per_minute);
  }

  /** A new connection from `ip`: true to serve it (then `closed(ip)` once it ends), false to close it now. */
  connect(ip: string): boolean {
    if (this.open >= this.cfg.max_connections) {
      this.counts.refusedTotal++;
      return false;
    }
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.cfg.max_connections_per_ip) {
      this.counts.refusedPerIp++;
      return false;
    }
    this.open++;
    this.perIp.set(ip, n + 1);
    return true;
  }

  closed(ip: string): void {
    this.open--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }

  /** Whether binds from `ip` as `systemId` are locked out now (answered ESME_RBINDFAIL, the policy not asked). */
  lockedOut(ip: string, systemId: string): boolean {
    const now = this.clock.now();
    for (const key of [ip, `${ip}\u0000${systemId}`]) {
      const until = this.locked.get(key);
      if (until === undefined) continue;
      if (until > now) {
        this.counts.lockedOut++;
        return true;
      }
      this.locked.delete(key);
    }
    return false;
  }

  /** A bind from `ip` as `systemId` failed; resolves how long to wait before answering it. */
  failed(ip: string, systemId: string): number {
    const now = this.clock.now();
    this.counts.bindFailures++;
    this.prune(now);
    let worst = 0;
    for (const [key, limit] of [
      [ip, this.cfg.bind_failures_per_ip],
      [`${ip}\u0000${systemId}`, this.cfg.bind_failures_per_system_id],
    ] as const) {
      const times = (this.failures.get(key) ?? []).filter((t) => now - t < this.cfg.bind_failure_window_ms);
      times.push(now);
      this.failures.set(key, times);
      worst = Math.max(worst, times.length);
      if (times.length >= limit && !this.locked.has(key)) {
        this.locked.set(key, now + this.cfg.bind_lockout_ms);
        this.counts.lockouts++;
        this.log.warn({ client: ip, system_id: key === ip ? undefined : systemId.slice(0, 32), failures: times.length, lockout_ms: this.cfg.bind_lockout_ms }, 'too many failed binds: locked out');
      }
    }
    return doubling(this.cfg.bind_failure_delay_ms, worst, 5000);
  }

  /** Forget failures older than the window, and lockouts that ran out (at most once a minute). */
  private prune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    for (const [k, times] of this.failures) if (times.every((t) => now - t >= this.cfg.bind_failure_window_ms)) this.failures.delete(k);
    for (const [k, until] of this.locked) if (until <= now) this.locked.delete(k);
  }

  get connections(): number {
    return this.open;
  }
}

/**
 * What the core knows and keeps of one tenant of the pool: its config, the
 * sandbox process it is placed on, the policy source registered for it, and
 * its standing — strikes for sandbox processes that died under it, the
 * penalty and quarantine they lead to (util/strikes.ts, docs/design.md,
 * "Tenants"), the CPU-budget refusals its sandbox asked for, its cache and
 * the rate of its policy's log lines.
 */
import { isDeepStrictEqual } from 'node:util';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { CacheStore, TenantCache } from '../cache';
import type { TenantConfig } from '../config/schema';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import { TokenBucket } from '../throttle/token-bucket';
import type { Clock } from '../util/clock';
import { STRIKE_DEFAULTS, Strikes } from '../util/strikes';

/** A tenant's running totals in the pool (they only grow; the metrics read them). */
export interface TenantTotals {
  crashes: number;
  quarantines: number;
  /** New versions started and swapped in (file change, upload, rollback, config reload). */
  reloads: number;
  /** New versions that did not start: the previous one kept serving. */
  reloadFailures: number;
}

/** What the core knows of a tenant's sandbox (the admin API and the status page show it). */
export interface TenantPoolState {
  quarantined: boolean;
  penalised: boolean;
  /** Strikes within the strike window. */
  crashes: number;
  /** PDUs refused in the core for the CPU budget. */
  cpuThrottled: number;
  /** How long ago its sandbox last said it was over its CPU budget; null: never. */
  throttledAgoMs: number | null;
  loadError?: PolicyDiagnostic[];
}

export interface PoolTenantDeps {
  cache: CacheStore;
  clock: Clock;
  /** The gateway's logger: a policy's own lines go to a child of it. */
  logger: Logger;
  /** The pool's logger: penalties and quarantines. */
  log: Logger;
  /** Sandbox process crashes within 10 minutes that quarantine a tenant. */
  quarantineAfter?: number;
  /** First penalty delay after a crash; doubles per crash. */
  penaltyBaseMs?: number;
}

/** The sandbox process a tenant is placed on: a hash of its id, so it stays there across restarts and reloads. */
export function placement(tenant: string, processes: number): number {
  return fnv(tenant) % processes;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function policyFilename(config: TenantConfig): string {
  return config.policy ? path.basename(config.policy) : `${config.id}.policy`;
}

export class PoolTenant {
  /** The policy source registered (or serving); undefined: none yet. */
  source?: string;
  filename: string;
  loadError?: PolicyDiagnostic[];
  /** Running totals for the metrics: sandbox crashes laid to it, quarantines, versions swapped in and refused. */
  readonly totals: TenantTotals = { crashes: 0, quarantines: 0, reloads: 0, reloadFailures: 0 };
  cache!: TenantCache;
  /** Sandbox process crashes laid to this tenant. */
  private readonly strikes: Strikes;
  private quarantined = false;
  private penaltyUntil = 0;
  /** Until then the tenant is over its CPU budget: its message PDUs get ESME_RTHROTTLED here. */
  private throttledUntil = 0;
  /** clock.now() when its sandbox last said it was over its CPU budget; 0: never. */
  private throttledAt = 0;
  private cpuThrottled = 0;
  private logBucket!: TokenBucket;
  private readonly logger: Logger;

  constructor(
    public config: TenantConfig,
    /** Index of the sandbox process hosting it. */
    readonly proc: number,
    private readonly deps: PoolTenantDeps,
  ) {
    this.filename = policyFilename(config);
    this.strikes = new Strikes({ ...STRIKE_DEFAULTS, baseMs: deps.penaltyBaseMs ?? STRIKE_DEFAULTS.baseMs, quarantineAfter: deps.quarantineAfter ?? STRIKE_DEFAULTS.quarantineAfter });
    this.applyLimits();
    this.logger = deps.logger.child({ tenant: config.id, source: 'policy' });
  }

  get id(): string {
    return this.config.id;
  }

  /** Its cache quota and log rate, from `config.limits`. */
  private applyLimits(): void {
    const limits = this.config.limits;
    this.cache = this.deps.cache.forTenant(this.config.id, { maxBytes: limits.max_cache_mb * 1048576, maxValueBytes: limits.max_value_kb * 1024 });
    this.logBucket = new TokenBucket(limits.max_log_per_s, this.deps.clock);
  }

  /** A config reload's new config: new limits take effect now. Returns the config it had. */
  reconfigure(config: TenantConfig): TenantConfig {
    const before = this.config;
    this.config = config;
    if (!isDeepStrictEqual(before.limits, config.limits)) this.applyLimits();
    return before;
  }

  /** A sandbox process died under it: a strike, and a penalty or quarantine. */
  penalise(why: string): void {
    const now = this.deps.clock.now();
    const v = this.strikes.strike(now);
    this.totals.crashes++;
    if (v.quarantine) {
      if (!this.quarantined) this.totals.quarantines++;
      this.quarantined = true;
      this.deps.log.error({ tenant: this.id, crashes: v.count, reason: why }, 'tenant quarantined');
      return;
    }
    this.penaltyUntil = now + v.delayMs;
    this.deps.log.warn({ tenant: this.id, reason: why, until_ms: this.penaltyUntil - now }, 'tenant penalised');
  }

  /** A version started and swapped in: its quarantine and crash penalties are behind it. */
  cleared(): void {
    this.quarantined = false;
    this.strikes.reset();
    this.penaltyUntil = 0;
  }

  /** Why nothing of it may run now (no policy, quarantined, penalised); undefined: it may. */
  unavailable(): string | undefined {
    if (this.source === undefined) return 'tenant has no policy';
    if (this.quarantined) return 'tenant is quarantined';
    if (this.deps.clock.now() < this.penaltyUntil) return 'tenant is penalised after a sandbox crash';
    return undefined;
  }

  /** Its sandbox said it is over its CPU budget, back in `retryInMs`: its PDUs are refused here meanwhile (for a second at most). */
  throttled(retryInMs: number | undefined): void {
    if (!retryInMs) return;
    this.throttledAt = this.deps.clock.now();
    this.throttledUntil = this.throttledAt + Math.min(retryInMs, 1000);
  }

  /** True (and counted) while it is over its CPU budget. */
  refuse(): boolean {
    if (this.deps.clock.now() >= this.throttledUntil) return false;
    this.cpuThrottled++;
    return true;
  }

  /** A line its policy logged, within `max_log_per_s`. */
  policyLog(level: string, msg: string, fields: unknown): void {
    if (!this.logBucket.tryTake()) return;
    const lvl = level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? level : 'info';
    this.logger[lvl]({ policy_fields: fields }, String(msg).slice(0, 2048));
  }

  state(): TenantPoolState {
    const now = this.deps.clock.now();
    const s: TenantPoolState = {
      quarantined: this.quarantined,
      penalised: now < this.penaltyUntil,
      crashes: this.strikes.count(now),
      cpuThrottled: this.cpuThrottled,
      throttledAgoMs: this.throttledAt === 0 ? null : now - this.throttledAt,
    };
    if (this.loadError) s.loadError = this.loadError;
    return s;
  }
}

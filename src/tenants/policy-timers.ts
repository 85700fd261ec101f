import { SluiceError } from '../errors';
import type { TimerCall } from '../sandbox-protocol/host-calls';
import type { Clock, TimerHandle } from '../util/clock';

/**
 * Core-owned timers for policies (`smpp.timers.after/every/cancel`). They
 * live in the trusted core, so they survive reloads and sandbox restarts, and
 * fire into whatever script version is current. Bounded per tenant.
 */
export interface TimerLimits {
  maxTimers: number;
  minMs: number;
  maxMs: number;
  maxPayloadBytes: number;
}

export const DEFAULT_TIMER_LIMITS: TimerLimits = { maxTimers: 1000, minMs: 10, maxMs: 30 * 86_400_000, maxPayloadBytes: 64 * 1024 };

interface Entry {
  handle: TimerHandle;
  every?: number;
}

export class PolicyTimers {
  private readonly byTenant = new Map<string, Map<string, Entry>>();

  constructor(
    private readonly clock: Clock,
    private readonly fire: (tenant: string, name: string, payload: unknown) => void,
    private readonly limits: TimerLimits = DEFAULT_TIMER_LIMITS,
  ) {}

  /** Handle a policy's timer call: `{ kind: 'after' | 'every' | 'cancel', ms?, name, payload? }`. */
  call(tenant: string, args: TimerCall): boolean {
    const a = args as { kind?: unknown; ms?: unknown; name?: unknown; payload?: unknown };
    const name = typeof a.name === 'string' ? a.name : '';
    if (!name || name.length > 128) throw new SluiceError('INVALID_FIELD', 'timer name must be 1..128 characters');
    if (a.kind === 'cancel') return this.cancel(tenant, name);
    if (a.kind !== 'after' && a.kind !== 'every') throw new SluiceError('INVALID_FIELD', 'unknown timer call');
    const ms = a.ms;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < this.limits.minMs || ms > this.limits.maxMs) {
      throw new SluiceError('INVALID_FIELD', `timer ms must be ${this.limits.minMs}..${this.limits.maxMs}`);
    }
    if (a.payload !== undefined && JSON.stringify(a.payload).length > this.limits.maxPayloadBytes) {
      throw new SluiceError('INVALID_FIELD', `timer payload over ${this.limits.maxPayloadBytes} bytes`);
    }
    let timers = this.byTenant.get(tenant);
    if (!timers) this.byTenant.set(tenant, (timers = new Map()));
    if (!timers.has(name) && timers.size >= this.limits.maxTimers) throw new SluiceError('QUOTA_EXCEEDED', `at most ${this.limits.maxTimers} timers per tenant`);
    this.cancel(tenant, name);
    const schedule = (): void => {
      const entry: Entry = {
        handle: this.clock.setTimeout(() => {
          if (a.kind === 'every') schedule();
          else timers!.delete(name);
          this.fire(tenant, name, a.payload);
        }, ms),
      };
      if (a.kind === 'every') entry.every = ms;
      timers!.set(name, entry);
    };
    schedule();
    return true;
  }

  cancel(tenant: string, name: string): boolean {
    const timers = this.byTenant.get(tenant);
    const e = timers?.get(name);
    if (!e) return false;
    this.clock.clearTimeout(e.handle);
    timers!.delete(name);
    return true;
  }

  clearTenant(tenant: string): void {
    for (const name of [...(this.byTenant.get(tenant)?.keys() ?? [])]) this.cancel(tenant, name);
    this.byTenant.delete(tenant);
  }

  count(tenant: string): number {
    return this.byTenant.get(tenant)?.size ?? 0;
  }
}

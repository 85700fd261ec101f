import type { Logger } from 'pino';
import type { CacheStore } from './store';
import { realClock, Repeat, type Clock, type TimerHandle } from '../util/clock';

/**
 * Whether the store can be written, as `/healthz` and `sluice_store_writable`
 * say it: the store's probe, run every `intervalMs` and on demand (at most
 * once a second; a probe that takes longer than `timeoutMs` counts as a
 * failure). A change either way is logged once: an error when writes start
 * failing (submits are then refused, never acked), info when they work again.
 */
export interface StoreHealthOptions {
  clock?: Clock;
  logger: Logger;
  /** 5000 */
  intervalMs?: number;
  /** 2000 */
  timeoutMs?: number;
}

export interface StoreHealthState {
  writable: boolean;
  /** The probe's error (for the log; never sent to HTTP clients: it may name a path). */
  error?: string;
}

const FRESH_MS = 1000;

export class StoreHealth {
  private state: StoreHealthState = { writable: true };
  private checkedAt = 0;
  private running: Promise<StoreHealthState> | undefined;
  private storeProbe: Promise<void> | undefined;
  private loop: Repeat | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly store: CacheStore,
    o: StoreHealthOptions,
  ) {
    this.log = o.logger.child({ component: 'cache' });
    this.clock = o.clock ?? realClock;
    this.intervalMs = o.intervalMs ?? 5000;
    this.timeoutMs = o.timeoutMs ?? 2000;
  }

  /** The last probe's answer (writable until a probe says otherwise). */
  get writable(): boolean {
    return this.state.writable;
  }

  start(): void {
    this.loop ??= new Repeat(this.clock, this.intervalMs, async () => void (await this.check(true)));
  }

  stop(): void {
    this.loop?.stop();
    this.loop = undefined;
  }

  /** Probe the store (or give the answer of one under a second old). Never rejects. */
  check(fresh = false): Promise<StoreHealthState> {
    if (this.running) return this.running;
    if (!fresh && this.clock.now() - this.checkedAt < FRESH_MS) return Promise.resolve(this.state);
    this.running = this.probe().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async probe(): Promise<StoreHealthState> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    // A probe that outlives its timeout is not started again until it settles: checks never pile up on a stuck store.
    this.storeProbe ??= this.store.probe().finally(() => {
      this.storeProbe = undefined;
    });
    let next: StoreHealthState;
    try {
      await Promise.race([this.storeProbe, timeout]);
      next = { writable: true };
    } catch (err) {
      next = { writable: false, error: (err as Error)?.message ?? String(err) };
    } finally {
      this.clock.clearTimeout(timer);
    }
    this.checkedAt = this.clock.now();
    if (next.writable !== this.state.writable) {
      if (next.writable) this.log.info('cache store is writable again');
      else this.log.error({ err: next.error }, 'cache store cannot be written: submits are refused until it can');
    }
    this.state = next;
    return next;
  }
}

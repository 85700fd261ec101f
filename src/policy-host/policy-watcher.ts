import { watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { TenantConfig } from '../config/schema';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

/**
 * Watches the tenants' policy files (one watcher per directory, not per
 * tenant) and asks for a reload when one changes. Editors write files in
 * bursts, so changes are debounced per file.
 */
export class PolicyWatcher {
  private readonly watchers: FSWatcher[] = [];
  private readonly timers = new Map<string, TimerHandle>();

  constructor(
    private tenants: readonly TenantConfig[],
    private readonly onChange: (tenant: string) => void,
    private readonly logger: Logger,
    private readonly cwd = process.cwd(),
    private readonly debounceMs = 50,
    private readonly clock: Clock = realClock,
  ) {}

  start(): void {
    const byFile = new Map<string, string[]>();
    for (const t of this.tenants) {
      if (!t.policy) continue;
      const file = path.resolve(this.cwd, t.policy);
      byFile.set(file, [...(byFile.get(file) ?? []), t.id]);
    }
    const dirs = new Set([...byFile.keys()].map((f) => path.dirname(f)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, (_event, name) => {
          if (!name) return;
          const file = path.join(dir, name.toString());
          const tenants = byFile.get(file);
          if (!tenants) return;
          this.clock.clearTimeout(this.timers.get(file));
          this.timers.set(
            file,
            this.clock.setTimeout(() => {
              this.timers.delete(file);
              for (const t of tenants) this.onChange(t);
            }, this.debounceMs),
          );
        });
        w.on('error', (err) => this.logger.warn({ dir, err: err.message }, 'policy watcher error'));
        this.watchers.push(w);
      } catch (err) {
        this.logger.warn({ dir, err: (err as Error).message }, 'cannot watch policy directory');
      }
    }
  }

  /** Watch another tenant list's files from now on (a config reload). */
  setTenants(tenants: readonly TenantConfig[]): void {
    this.close();
    this.tenants = tenants;
    this.start();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.watchers.length = 0;
  }
}

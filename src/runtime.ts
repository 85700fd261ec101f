import type { Logger } from 'pino';
import { AdminServer } from './admin/server';
import { CacheStore } from './cache';
import type { SluiceConfig } from './config/schema';
import { Gateway } from './gateway';
import { PolicyWatcher } from './isolates/policy-watcher';
import { SandboxPool } from './isolates/sandbox-pool';
import type { Clock } from './util/clock';

/** A running Sluice: gateway, sandbox processes, cache and policy watcher, started and stopped together. */
export interface Sluice {
  gateway: Gateway;
  sandbox: SandboxPool;
  cache: CacheStore;
  port: number;
  tlsPort?: number;
  adminPort?: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: SluiceConfig;
  logger: Logger;
  clock?: Clock;
  cwd?: string;
  /** Watch policy files and reload on change (default true). */
  watch?: boolean;
  idleEvictMs?: number;
  reconnectBaseMs?: number;
  /** Serve the admin API on `admin.listen` (default false; `sluice start` turns it on). */
  admin?: boolean;
}

/** Start everything in order: cache, sandbox processes, then the listeners. */
export async function startSluice(o: StartOptions): Promise<Sluice> {
  const cwd = o.cwd ?? process.cwd();
  const cache = await CacheStore.open(o.config.cache.url, { cwd, logger: o.logger, sweepIntervalMs: 60_000 });
  const sandbox = new SandboxPool({ processes: o.config.sandbox.processes, inlineEntryMs: o.config.sandbox.inline_entry_ms, tenants: o.config.tenants, logger: o.logger, cache, clock: o.clock, cwd, idleEvictMs: o.idleEvictMs });
  const gateway = new Gateway({ config: o.config, logger: o.logger, policy: sandbox, clock: o.clock, reconnectBaseMs: o.reconnectBaseMs });
  sandbox.attach(gateway);
  await sandbox.start();
  const watcher =
    o.watch === false
      ? undefined
      : new PolicyWatcher(
          o.config.tenants,
          (tenant) => {
            void sandbox.reload(tenant).then(
              (r) => {
                if (!r.ok) o.logger.error({ tenant, errors: r.errors }, 'policy change rejected; the previous version keeps serving');
              },
              (err: Error) => o.logger.error({ tenant, err: err.message }, 'policy reload failed'),
            );
          },
          o.logger,
          cwd,
        );
  watcher?.start();
  const ports = await gateway.start();
  const admin = o.admin ? new AdminServer({ config: o.config, gateway, sandbox, logger: o.logger }) : undefined;
  const adminPort = admin ? await admin.listen() : undefined;
  const s: Sluice = {
    gateway,
    sandbox,
    cache,
    port: ports.port,
    async stop() {
      watcher?.close();
      await admin?.close();
      await gateway.stop();
      await sandbox.close();
      await cache.close();
    },
  };
  if (ports.tlsPort !== undefined) s.tlsPort = ports.tlsPort;
  if (adminPort !== undefined) s.adminPort = adminPort;
  return s;
}

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { AdminServer, type ConfigReloadResult } from './admin/server';
import { CacheStore } from './cache';
import { StoreHealth } from './cache/health';
import { loadConfig } from './config/load';
import type { SluiceConfig, TenantConfig } from './config/schema';
import { SluiceError } from './errors';
import { Gateway } from './gateway';
import { PolicyVersions } from './policy-host/policy-versions';
import { PolicyWatcher } from './policy-host/policy-watcher';
import { SandboxPool } from './policy-host/sandbox-pool';
import type { Clock } from './util/clock';
import { replicaName } from './util/ids';

/** A running Sluice: gateway, sandbox processes, cache, policy versions and watcher, started and stopped together. */
export interface Sluice {
  gateway: Gateway;
  sandbox: SandboxPool;
  cache: CacheStore;
  versions: PolicyVersions;
  port: number;
  tlsPort?: number;
  adminPort?: number;
  /**
   * Re-read the config file (SIGHUP, `POST /v1/reload`): tenants, their
   * limits, binds and routing change in one step, unchanged tenants are not
   * touched. A file that does not load is refused whole — this throws its
   * config error and nothing changes. The other sections (listeners, cache,
   * sandbox, admin, log) take effect at the next start; what changed in them
   * is reported.
   */
  reloadConfig(): Promise<ConfigReloadResult>;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: SluiceConfig;
  logger: Logger;
  clock?: Clock;
  /**
   * Base for relative paths left in `config` (policies, a `sqlite://` file);
   * default `process.cwd()`. A config from `loadConfig` or `parseConfig` has
   * none left: they resolved against the config file's directory.
   */
  cwd?: string;
  /** Watch policy files and reload on change (default true). */
  watch?: boolean;
  idleEvictMs?: number;
  reconnectBaseMs?: number;
  /** Serve the admin API on `admin.listen` (default false; `sluice start` turns it on). */
  admin?: boolean;
  /** The file `config` was loaded from, re-read by `reloadConfig()` (without one, a reload is refused). */
  configFile?: string;
  /** Environment for `${VAR}` in the config file on reload (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** This replica's name in the lease store (default: host, pid and a random suffix). */
  replica?: string;
}

/** Top-level sections a running Sluice cannot change: `section.key` for each key that differs. */
function restartOnlyChanges(a: SluiceConfig, b: SluiceConfig): string[] {
  const out: string[] = [];
  for (const section of ['server', 'cache', 'sandbox', 'admin', 'log'] as const) {
    const x = a[section] as unknown as Record<string, unknown>;
    const y = b[section] as unknown as Record<string, unknown>;
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (!isDeepStrictEqual(x[key], y[key])) out.push(`${section}.${key}`);
    }
  }
  return out;
}

/** A store URL as it may be logged: `redis://user:secret@host` without its secret. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Start everything in order: cache, sandbox processes, then the listeners. */
export async function startSluice(opts: StartOptions): Promise<Sluice> {
  // Every line this process logs names its replica (and, from the root logger, its host).
  const replica = opts.replica ?? replicaName();
  const o: StartOptions = { ...opts, replica, logger: opts.logger.child({ replica }) };
  const cwd = o.cwd ?? process.cwd();
  const clock = o.clock;
  const cache = await CacheStore.open(o.config.cache.url, { cwd, logger: o.logger, sweepIntervalMs: 60_000, ...(clock ? { clock } : {}) });
  // A store that opens but cannot be written (a read-only file or WAL, a Redis replica) would
  // acknowledge nothing: refuse to start, before a sandbox or a port.
  try {
    await cache.probe();
  } catch (err) {
    await cache.close().catch(() => undefined);
    throw new SluiceError('STORE_UNAVAILABLE', `cache store ${withoutPassword(o.config.cache.url)} cannot be written: ${(err as Error).message}`);
  }
  const storeHealth = new StoreHealth(cache, { logger: o.logger, ...(clock ? { clock } : {}) });
  const sandbox = new SandboxPool({ processes: o.config.sandbox.processes, inlineEntryMs: o.config.sandbox.inline_entry_ms, tenants: o.config.tenants, logger: o.logger, cache, clock: o.clock, cwd, idleEvictMs: o.idleEvictMs });
  // Tenants pinned to an uploaded version register it, not their file: read before the sandbox registers anyone.
  const versions = new PolicyVersions({ store: cache.policies, sandbox, logger: o.logger, cwd, ...(clock ? { clock } : {}) });
  try {
    await versions.restore(o.config.tenants);
  } catch (err) {
    await cache.close().catch(() => undefined);
    throw new SluiceError('STORE_UNAVAILABLE', `cache store ${withoutPassword(o.config.cache.url)}: cannot read the uploaded policy versions: ${(err as Error).message}`);
  }
  const gateway = new Gateway({ config: o.config, logger: o.logger, policy: sandbox, clock: o.clock, reconnectBaseMs: o.reconnectBaseMs, leases: cache.leases, replica: o.replica, holds: cache.holds, forward: cache.forward });
  sandbox.attach(gateway);
  await sandbox.start();
  const watcher =
    o.watch === false
      ? undefined
      : new PolicyWatcher(
          o.config.tenants,
          (tenant) => versions.fileChanged(tenant),
          o.logger,
          cwd,
          50,
          clock,
        );
  watcher?.start();
  // A port that cannot be opened (taken, not allowed) stops everything started so far:
  // the caller gets the error, not a process that runs with no listener.
  const abandon = async (err: unknown): Promise<never> => {
    storeHealth.stop();
    watcher?.close();
    await versions.close();
    await gateway.stop().catch(() => undefined);
    await sandbox.close().catch(() => undefined);
    await cache.close().catch(() => undefined);
    throw err;
  };
  const ports = await gateway.start().catch(abandon);
  storeHealth.start();
  versions.start();
  let config = o.config;
  let reloading: Promise<unknown> = Promise.resolve();
  const reloadConfig = (): Promise<ConfigReloadResult> => {
    const run = async (): Promise<ConfigReloadResult> => {
      if (!o.configFile) throw new SluiceError('SLUICE_ERR_CONFIG', 'started without a config file: nothing to re-read');
      const next = loadConfig(o.configFile, o.env ?? process.env);
      const restart_required = restartOnlyChanges(config, next);
      // Only the tenants change; the rest stays as started until a restart.
      const previous = config.tenants;
      const applied: SluiceConfig = { ...config, tenants: next.tenants };
      config = applied;
      // Pins first: a new tenant pinned in the store registers its uploaded version, not its file.
      const filesChanged = await versions.applyTenants(next.tenants);
      // The sandbox next: its registrations go out before the gateway lets a new tenant's ESMEs bind.
      const policies = sandbox.applyTenants(next.tenants);
      const tenants = gateway.applyTenants(next.tenants);
      // A pinned tenant whose file changed since its pin gets its file back (the rule in PolicyVersions).
      const policy_errors = [...(await policies), ...(await versions.releasePins(filesChanged))];
      // smpp.binds() and smpp.sessions() of the tenants whose binds may have changed.
      for (const id of [...tenants.added, ...tenants.changed]) sandbox.pushViews(id);
      // The watcher restarts only when the set of policy files changed.
      const files = (ts: readonly TenantConfig[]): string => JSON.stringify(ts.map((t) => [t.id, t.policy]));
      if (files(next.tenants) !== files(previous)) watcher?.setTenants(next.tenants);
      admin?.setConfig(applied);
      const result: ConfigReloadResult = { ...tenants, policy_errors, restart_required };
      o.logger.info({ ...tenants, policy_errors: policy_errors.map((e) => e.tenant), restart_required }, 'config reloaded');
      return result;
    };
    const p = reloading.then(run, run);
    reloading = p.catch(() => undefined);
    return p;
  };
  const admin = o.admin ? new AdminServer({ config: o.config, gateway, sandbox, versions, logger: o.logger, storeHealth, reloadConfig: o.configFile ? reloadConfig : undefined }) : undefined;
  const adminPort = admin ? await admin.listen().catch(async (err: unknown) => {
    await admin.close().catch(() => undefined);
    return abandon(err);
  }) : undefined;
  const s: Sluice = {
    gateway,
    sandbox,
    cache,
    versions,
    port: ports.port,
    reloadConfig,
    async stop() {
      storeHealth.stop();
      watcher?.close();
      await admin?.close();
      await versions.close();
      await gateway.stop();
      await sandbox.close();
      await cache.close();
    },
  };
  if (ports.tlsPort !== undefined) s.tlsPort = ports.tlsPort;
  if (adminPort !== undefined) s.adminPort = adminPort;
  return s;
}

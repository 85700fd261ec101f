/**
 * Getting each tenant's policy into its sandbox process: the source read
 * (an uploaded version pinned to the tenant, else its policy file),
 * registered at start and after a restart (compiled ahead of use, started
 * on first use), and loaded into a fresh isolate and swapped in on a reload
 * or a config change — the old version serving on whenever the new one does
 * not start. Records which versions started and which were rejected (the
 * tenant's load errors). Durable uploads and rollbacks are
 * policy-versions.ts; this is what the pool does with a source.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { TenantConfig } from '../config/schema';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import { publicConfig } from '../sandbox-protocol/boot';
import type { BootInfo, LoadResult } from '../sandbox-protocol/messages';
import { policyFilename, type PoolTenant } from './pool-tenant';
import type { SandboxChild } from './sandbox-child';

/** A tenant whose policy did not load, and why. */
export interface PolicyFailure {
  tenant: string;
  errors: PolicyDiagnostic[];
}

export interface PolicyLoaderDeps {
  log: Logger;
  /** Resolve tenants' relative policy paths against this directory. */
  cwd?: string;
  /** The pool's request ids. */
  nextId(): number;
  /** The sandbox process hosting a tenant. */
  childOf(t: PoolTenant): SandboxChild;
}

export class PolicyLoader {
  /** Uploaded sources that serve instead of tenants' files (see `pin`). */
  private readonly pinned = new Map<string, string>();
  /** Registrations sent, by request id, waiting for their `loaded`. */
  private readonly loads = new Map<number, (r: LoadResult) => void>();

  constructor(private readonly deps: PolicyLoaderDeps) {}

  /**
   * An uploaded version serves `tenant` instead of its file: from now on a
   * registration (at start, a new or changed tenant in a config reload) takes
   * `source`. It does not load anything itself; `reload` does.
   */
  pin(tenant: string, source: string): void {
    this.pinned.set(tenant, source);
  }

  /** The tenant's file serves again at its next registration. */
  unpin(tenant: string): void {
    this.pinned.delete(tenant);
  }

  /** Read a tenant's pinned source, else its policy file, into `source`; false (with `loadError` set and logged) when it has neither or the file cannot be read. */
  readSource(t: PoolTenant): boolean {
    const pinned = this.pinned.get(t.config.id);
    if (pinned !== undefined) {
      t.source = pinned;
      return true;
    }
    const file = this.policyPath(t);
    if (!file) return false;
    try {
      t.source = readFileSync(file, 'utf8');
      return true;
    } catch (err) {
      t.loadError = [{ file: t.filename, line: 0, column: 0, message: `cannot read policy: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }];
      this.deps.log.error({ tenant: t.config.id, policy: t.config.policy }, 'cannot read policy file');
      return false;
    }
  }

  private policyPath(t: PoolTenant): string | undefined {
    return t.config.policy ? path.resolve(this.deps.cwd ?? process.cwd(), t.config.policy) : undefined;
  }

  /** Send the tenant's source to its sandbox process: registered to start on first use, or (`activate`) started now and swapped in. */
  register(t: PoolTenant, activate: boolean): Promise<LoadResult> {
    const reqId = this.deps.nextId();
    const boot: BootInfo = { tenant: t.config.id, config: publicConfig(t.config), routing: t.config.routing, settings: t.config.settings };
    return new Promise<LoadResult>((resolve) => {
      this.loads.set(reqId, resolve);
      const sent = this.deps.childOf(t).load({ t: 'register', reqId, tenant: t.config.id, source: t.source ?? '', filename: t.filename, limits: t.config.limits, boot, activate });
      if (!sent) {
        this.loads.delete(reqId);
        resolve({ ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: 'sandbox process unavailable' }] });
      }
    }).then((result) => {
      if (activate) {
        if (result.ok) t.totals.reloads++;
        else t.totals.reloadFailures++;
      }
      if (!result.ok) {
        this.rejected(t, result.errors);
      } else {
        t.loadError = undefined;
      }
      return result;
    });
  }

  /** A sandbox process answered registration `reqId`. */
  loaded(reqId: number, result: LoadResult): void {
    const r = this.loads.get(reqId);
    this.loads.delete(reqId);
    r?.(result);
  }

  /** A sandbox process died: every registration waiting for an answer fails. */
  failAll(): void {
    for (const [reqId, r] of this.loads) {
      this.loads.delete(reqId);
      r({ ok: false, errors: [{ file: '', line: 0, column: 0, message: 'sandbox process died while loading' }] });
    }
  }

  /**
   * Replace a tenant's policy: compiled and started in a fresh isolate under
   * the limits, swapped in only if that succeeds. The old version keeps
   * serving otherwise, and the errors (line:column in the tenant's source)
   * come back.
   */
  async reload(t: PoolTenant, source?: string): Promise<LoadResult> {
    let text = source;
    if (text === undefined) {
      const file = this.policyPath(t);
      if (!file) return { ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: 'tenant has no policy file' }] };
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        return { ok: false, errors: [{ file: t.filename, line: 0, column: 0, message: `cannot read policy: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }] };
      }
    }
    const previous = t.source;
    t.source = text;
    const r = await this.register(t, true);
    if (!r.ok) {
      // The old version keeps serving; so must the source we re-register after a crash.
      t.source = previous;
      return r;
    }
    this.activated(t, r);
    return r;
  }

  /** A tenant new in a config reload: registered as at start (its isolate starts on first use). */
  added(t: PoolTenant): Promise<PolicyFailure | undefined> | undefined {
    if (this.readSource(t)) return this.register(t, false).then((r) => failure(t.id, r));
    if (t.loadError) return Promise.resolve({ tenant: t.id, errors: t.loadError });
    return undefined;
  }

  /**
   * A tenant changed by a config reload: it takes its new limits and config
   * views with its policy (re-read if its file changed) started in a fresh
   * isolate and swapped in, as any reload; if that fails, its old version
   * keeps serving.
   */
  reconfigured(t: PoolTenant, config: TenantConfig): Promise<PolicyFailure | undefined> | undefined {
    const before = t.reconfigure(config);
    if (before.policy !== config.policy) {
      // The old version keeps serving if the new file cannot be read.
      const previous = { source: t.source, filename: t.filename };
      t.filename = policyFilename(config);
      if (!this.readSource(t)) {
        t.source = previous.source;
        t.filename = previous.filename;
        return Promise.resolve({ tenant: config.id, errors: t.loadError ?? [{ file: t.filename, line: 0, column: 0, message: 'tenant has no policy file; its previous version keeps serving' }] });
      }
    }
    if (t.source === undefined) return undefined;
    // As an upload does, a version started with the new config lifts a quarantine (new limits, a new chance).
    return this.register(t, true).then((r) => {
      if (r.ok) this.activated(t, r);
      return failure(config.id, r);
    });
  }

  /** A version started and swapped in: the tenant's quarantine and crash penalties are behind it. */
  private activated(t: PoolTenant, r: { version: number; hash: string }): void {
    t.cleared();
    this.deps.log.info({ tenant: t.config.id, version: r.version, hash: r.hash }, 'policy version active');
  }

  /** A version of the tenant's policy did not load (at registration, ahead of use, or on a reload): its load errors, logged. */
  rejected(t: PoolTenant, errors: PolicyDiagnostic[]): void {
    t.loadError = errors;
    this.deps.log.error({ tenant: t.config.id, errors }, 'policy rejected');
  }
}

function failure(tenant: string, r: LoadResult): PolicyFailure | undefined {
  return r.ok ? undefined : { tenant, errors: r.errors };
}

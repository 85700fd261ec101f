// One file on purpose: uploads, rollbacks, pins and the poll that shares them between replicas are one state per tenant
// (docs/policy-versions.md).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { PolicyStore, PolicyVersion, Unpinner } from '../cache/policy-store';
import type { TenantConfig } from '../config/schema';
import { SluiceError } from '../errors';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import type { SandboxPool } from './sandbox-pool';
import { realClock, Repeat, type Clock } from '../util/clock';

/** What PolicyVersions works with: the store's history, the sandbox that serves, and where tenants' files are. */
export interface PolicyVersionsOptions {
  store: PolicyStore;
  sandbox: SandboxPool;
  logger: Logger;
  /** Resolve tenants' relative policy paths against this directory. */
  cwd?: string;
  /** Times of uploads and the poll's timer (default the process clock). */
  clock?: Clock;
}

/** What the admin API asks of PolicyVersions (counted for the metrics). */
export type PolicyAction = 'upload' | 'rollback' | 'unpin';

/** How often a replica asks the store for changes made on the others. */
export const POLL_MS = 2000;

/** What an upload, a rollback or an unpin did. */
export type PolicyChange =
  | { ok: true; version: number | null; hash: string; rollbackOf?: number }
  | { ok: false; errors: PolicyDiagnostic[] }
  | { ok: false; refused: 'not-pinned' | 'nothing-earlier' | 'no-such-version' | 'store'; message: string };

/** The versions kept for a tenant, and which one is pinned (null: the file serves). */
export interface VersionList {
  pinned: boolean;
  current: number | null;
  versions: PolicyVersion[];
}

/** sha256 (hex) of a policy source's UTF-8: what the store, the logs and the admin API call its hash. */
export function sourceHash(source: string): string {
  return createHash('sha256').update(source, 'utf8').digest('hex');
}

interface Pin {
  version: number;
  hash: string;
  /** The file's hash when the pin was taken. */
  fileHash: string;
}

interface TenantState {
  config: TenantConfig;
  /** The seq of the newest change of this tenant served here; -1: not read from the store yet. */
  seq: number;
  /** The uploaded version serving; absent: the file serves. */
  pin?: Pin;
  /** The file hash last warned about, so a change is warned about once. */
  warned?: string;
  chain: Promise<unknown>;
}

const STORE_DOWN = 'the store did not answer: nothing changed, and the version serving before serves on';

const short = (hash: string): string => hash.slice(0, 12);

/**
 * Uploaded policy versions, durable and shared by the replicas of one store.
 *
 * The rule between a tenant's file and its uploads: an upload (or a
 * rollback) pins the tenant, and the pinned version serves — after a
 * restart too — until the pin is released. A change of the file while
 * pinned is not loaded; it is logged once per change. The pin is released
 * by `DELETE /v1/tenants/:id/policy/pin` (admin token), or by a config
 * reload (`POST /v1/reload`, SIGHUP) when the file's hash differs from the
 * one it had when the pin was taken; the file then serves again (one that
 * does not load leaves the pin in place). A restart never releases a pin.
 *
 * Every change is kept in the store before it is answered, and the other
 * replicas follow it within a poll (POLL_MS) through the same reload path:
 * a fresh isolate swapped in, the old version serving on if the new one does
 * not load. Changes of one tenant run one at a time on this replica.
 */
export class PolicyVersions {
  private readonly tenants = new Map<string, TenantState>();
  private readonly log: Logger;
  /** The newest seq the poll has seen. */
  private seen = 0;
  private loop: Repeat | undefined;
  private readonly clock: Clock;
  private polling: Promise<void> | undefined;
  /** `tenant\0action\0result` → how many (changeCounts). */
  private readonly changes = new Map<string, number>();
  private pollFailing = false;

  constructor(private readonly o: PolicyVersionsOptions) {
    this.log = o.logger.child({ component: 'policy' });
    this.clock = o.clock ?? realClock;
  }

  /**
   * At start, before the sandbox registers anyone: each tenant pinned in the
   * store gets its uploaded version registered instead of its file. Rejects
   * if the store cannot be read (what should serve is then unknown).
   */
  async restore(tenants: readonly TenantConfig[]): Promise<void> {
    const c = await this.o.store.changes(0);
    this.seen = c.seq;
    for (const t of tenants) this.tenants.set(t.id, { config: t, seq: 0, chain: Promise.resolve() });
    for (const id of c.tenants) if (this.tenants.has(id)) await this.restoreOne(this.tenants.get(id)!);
  }

  /** Poll the store for changes made on other replicas, every POLL_MS. */
  start(): void {
    this.loop ??= new Repeat(this.clock, POLL_MS, () => this.poll());
  }

  async close(): Promise<void> {
    this.loop?.stop();
    this.loop = undefined;
    await this.polling;
    await Promise.all([...this.tenants.values()].map((s) => s.chain));
  }

  /** Serve `source` (an upload through the admin API) and pin the tenant to it. */
  upload(tenant: string, source: string, uploader: 'admin' | 'tenant'): Promise<PolicyChange> {
    return this.noted(tenant, 'upload', this.serial(tenant, (s) => this.pinTo(s, source, uploader)));
  }

  /** Uploads, rollbacks and unpins asked of this replica, by tenant, action and result (`ok`, `rejected`: it did not load, else why it was refused). */
  changeCounts(): { tenant: string; action: PolicyAction; result: string; count: number }[] {
    return [...this.changes].map(([k, count]) => {
      const [tenant, action, result] = k.split('\u0000') as [string, PolicyAction, string];
      return { tenant, action, result, count };
    });
  }

  private async noted(tenant: string, action: PolicyAction, change: Promise<PolicyChange>): Promise<PolicyChange> {
    const r = await change;
    const result = r.ok ? 'ok' : 'errors' in r ? 'rejected' : r.refused;
    const k = `${tenant}\u0000${action}\u0000${result}`;
    this.changes.set(k, (this.changes.get(k) ?? 0) + 1);
    return r;
  }

  /**
   * Serve a kept version again, recorded as a new version (the history only
   * grows). Without `version`: the one before the version serving — for a
   * rollback, before the version it rolled back to — so a second rollback
   * goes one further back.
   */
  rollback(tenant: string, version: number | undefined, uploader: 'admin' | 'tenant'): Promise<PolicyChange> {
    return this.noted(tenant, 'rollback', this.serial(tenant, async (s) => {
      let target = version;
      let source: string | undefined;
      try {
        if (target === undefined) {
          const head = await this.o.store.head(tenant);
          if (!head?.pinned) return { ok: false, refused: 'not-pinned', message: 'the file serves, not an uploaded version: name the version to roll back to ({ "version": N })' };
          const from = head.pinned.rollbackOf ?? head.pinned.version;
          target = (await this.o.store.versions(tenant)).filter((v) => v.version < from).at(-1)?.version;
          if (target === undefined) return { ok: false, refused: 'nothing-earlier', message: 'no earlier version is kept' };
        }
        source = await this.o.store.source(tenant, target);
      } catch (err) {
        return this.storeFailed(tenant, err);
      }
      if (source === undefined) return { ok: false, refused: 'no-such-version', message: `no version ${target} is kept` };
      return this.pinTo(s, source, uploader, target);
    }));
  }

  /** Release the tenant's pin: its file serves again (if the file does not load, the pin stays). */
  unpin(tenant: string, by: Unpinner): Promise<PolicyChange> {
    return this.noted(tenant, 'unpin', this.serial(tenant, (s) => this.release(s, by)));
  }

  /** The versions kept for a tenant, oldest first. */
  async versions(tenant: string): Promise<VersionList> {
    const [head, versions] = await Promise.all([this.o.store.head(tenant), this.o.store.versions(tenant)]);
    return { pinned: !!head?.pinned, current: head?.pinned?.version ?? null, versions };
  }

  /** A kept version's source. */
  source(tenant: string, version: number): Promise<string | undefined> {
    return this.o.store.source(tenant, version);
  }

  /** What serves a tenant here: the pinned version's number (null: its file), and the hash of the source serving. */
  view(tenant: string): { version: number | null; hash: string | null; pinned: boolean } {
    const pin = this.tenants.get(tenant)?.pin;
    const source = this.o.sandbox.currentSource(tenant);
    return { version: pin?.version ?? null, hash: source === undefined ? null : sourceHash(source), pinned: !!pin };
  }

  /** The policy watcher saw the tenant's file change: loaded, unless the tenant is pinned (then warned about, once per change). */
  fileChanged(tenant: string): void {
    if (!this.tenants.has(tenant)) return;
    void this.serial(tenant, async (s) => {
      if (s.pin) return this.warnIfFileChanged(s);
      const r = await this.o.sandbox.reload(tenant);
      if (!r.ok) this.log.error({ tenant, errors: r.errors }, 'policy change rejected; the previous version keeps serving');
    });
  }

  /**
   * A config reload's tenant list, before the sandbox takes it: a new
   * tenant pinned in the store gets its uploaded version, a removed one is
   * forgotten. Resolves with the pinned tenants whose file differs from the
   * one their pin was taken over: `releasePins` gives them their files once
   * the sandbox has the new list.
   */
  async applyTenants(next: readonly TenantConfig[]): Promise<string[]> {
    const ids = new Set(next.map((t) => t.id));
    for (const id of [...this.tenants.keys()]) {
      if (ids.has(id)) continue;
      this.tenants.delete(id);
      this.o.sandbox.unpin(id);
    }
    const changed: string[] = [];
    for (const cfg of next) {
      const s = this.tenants.get(cfg.id);
      if (!s) {
        const added: TenantState = { config: cfg, seq: -1, chain: Promise.resolve() };
        this.tenants.set(cfg.id, added);
        // A store that does not answer now: the file serves until the poll reads the tenant's head.
        await this.restoreOne(added).catch((err: Error) => this.log.error({ tenant: cfg.id, err: err.message }, 'policy: cannot read the store; the file serves until it answers'));
        continue;
      }
      s.config = cfg;
      const file = this.fileHash(cfg);
      if (s.pin && file !== undefined && file !== s.pin.fileHash) changed.push(cfg.id);
    }
    return changed;
  }

  /** Release the pins of tenants whose file changed (a config reload); the errors of those whose file does not load (they stay pinned). */
  async releasePins(tenants: readonly string[]): Promise<{ tenant: string; errors: PolicyDiagnostic[] }[]> {
    const failed: { tenant: string; errors: PolicyDiagnostic[] }[] = [];
    for (const tenant of tenants) {
      if (!this.tenants.has(tenant)) continue;
      const r = await this.unpin(tenant, 'reload');
      if (r.ok) continue;
      if ('errors' in r) failed.push({ tenant, errors: r.errors });
      else if (r.refused === 'store') failed.push({ tenant, errors: [{ file: this.tenants.get(tenant)?.config.policy ?? '', line: 0, column: 0, message: r.message }] });
    }
    return failed;
  }

  /** Follow the changes made since the last poll (on any replica); the next poll retries a tenant whose change could not be read. */
  poll(): Promise<void> {
    this.polling ??= (async () => {
      try {
        const c = await this.o.store.changes(this.seen);
        const due = new Set(c.tenants.filter((t) => this.tenants.has(t)));
        for (const [id, s] of this.tenants) if (s.seq < 0) due.add(id);
        const results = await Promise.allSettled([...due].map((id) => this.serial(id, (s) => this.follow(s))));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        this.seen = c.seq;
        if (this.pollFailing) this.log.info('policy: the store answers again; following uploads made on other replicas');
        this.pollFailing = false;
      } catch (err) {
        if (!this.pollFailing) this.log.warn({ err: (err as Error).message }, 'policy: cannot read the store; uploads made on other replicas are not followed until it answers');
        this.pollFailing = true;
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  private serial<T>(tenant: string, fn: (s: TenantState) => Promise<T>): Promise<T> {
    const s = this.tenants.get(tenant);
    if (!s) return Promise.reject(new SluiceError('UNKNOWN_TENANT'));
    const run = (): Promise<T> => fn(s);
    const p = s.chain.then(run, run);
    s.chain = p.catch(() => undefined);
    return p;
  }

  /** At start or when a tenant is added: its pinned version (if any) is what the sandbox registers. */
  private async restoreOne(s: TenantState): Promise<void> {
    const id = s.config.id;
    const head = await this.o.store.head(id);
    if (!head?.pinned) {
      s.seq = head?.seq ?? 0;
      return;
    }
    const source = await this.o.store.source(id, head.pinned.version);
    if (source === undefined) throw new Error(`version ${head.pinned.version} of ${id} is missing from the store`);
    s.seq = head.seq;
    s.pin = { version: head.pinned.version, hash: head.pinned.hash, fileHash: head.pinned.fileHash };
    this.o.sandbox.pin(id, source);
    const file = s.config.policy ?? '(none)';
    this.log.info(
      { tenant: id, version: s.pin.version, hash: s.pin.hash, file },
      `policy: serving uploaded version ${s.pin.version} (hash ${short(s.pin.hash)}) pinned over file ${file}`,
    );
    this.warnIfFileChanged(s);
  }

  /** Load `source`, then keep it in the store as the tenant's pinned version; if the store fails, the previous version goes back. */
  private async pinTo(s: TenantState, source: string, uploader: 'admin' | 'tenant', rollbackOf?: number): Promise<PolicyChange> {
    const id = s.config.id;
    const before = this.o.sandbox.currentSource(id);
    const r = await this.o.sandbox.reload(id, source);
    if (!r.ok) return r;
    const hash = sourceHash(source);
    let head;
    try {
      head = await this.o.store.pin(
        id,
        { source, hash, at: this.clock.wall(), uploader, ...(rollbackOf !== undefined ? { rollbackOf } : {}) },
        // The tenant's file (or the version it served) is kept as a version of its own when the pin is taken: a rollback can return to it.
        { fileHash: this.fileHash(s.config) ?? '', ...(!s.pin && before !== undefined ? { serving: { source: before, hash: sourceHash(before) } } : {}) },
      );
    } catch (err) {
      // Served here but not kept would leave this replica apart from the others and from the next start.
      if (before !== undefined) await this.o.sandbox.reload(id, before);
      return this.storeFailed(id, err);
    }
    this.o.sandbox.pin(id, source);
    s.seq = head.seq;
    s.pin = { version: head.pinned.version, hash, fileHash: head.pinned.fileHash };
    const msg = rollbackOf === undefined ? `policy: uploaded version ${s.pin.version} (hash ${short(hash)})` : `policy: rolled back to version ${rollbackOf}, serving as version ${s.pin.version} (hash ${short(hash)})`;
    this.log.info({ tenant: id, version: s.pin.version, hash, uploader, ...(rollbackOf !== undefined ? { rollback_of: rollbackOf } : {}) }, msg);
    return { ok: true, version: s.pin.version, hash, ...(rollbackOf !== undefined ? { rollbackOf } : {}) };
  }

  /** Load the file, then record the unpin; if the file does not load the pin stays, and if the store fails the pinned version goes back. */
  private async release(s: TenantState, by: Unpinner): Promise<PolicyChange> {
    const id = s.config.id;
    try {
      if (!(await this.o.store.head(id))?.pinned) return { ok: false, refused: 'not-pinned', message: 'not pinned: the file serves' };
    } catch (err) {
      return this.storeFailed(id, err);
    }
    const before = this.o.sandbox.currentSource(id);
    const r = await this.o.sandbox.reload(id);
    if (!r.ok) {
      this.log.error({ tenant: id, by, errors: r.errors }, `policy: the file does not load; tenant stays pinned to uploaded version ${s.pin?.version}`);
      return r;
    }
    let seq;
    try {
      seq = await this.o.store.unpin(id, by, this.clock.wall());
    } catch (err) {
      if (before !== undefined) await this.o.sandbox.reload(id, before);
      return this.storeFailed(id, err);
    }
    this.o.sandbox.unpin(id);
    if (seq !== undefined) s.seq = seq;
    const was = s.pin?.version;
    s.pin = undefined;
    s.warned = undefined;
    const hash = sourceHash(this.o.sandbox.currentSource(id) ?? '');
    const file = s.config.policy ?? '(none)';
    const why = by === 'admin' ? 'unpinned through the admin API' : 'unpinned by a config reload (the file changed since the pin)';
    this.log.info({ tenant: id, by, was, file, hash }, `policy: ${why}: the file ${file} serves again (hash ${short(hash)})`);
    return { ok: true, version: null, hash };
  }

  /** A newer change of the tenant in the store (made on another replica): served through the same reload. */
  private async follow(s: TenantState): Promise<void> {
    const id = s.config.id;
    const head = await this.o.store.head(id);
    if (!head || head.seq <= s.seq) {
      if (s.seq < 0) s.seq = head?.seq ?? 0;
      return;
    }
    if (!head.pinned) {
      s.seq = head.seq;
      if (!s.pin) return;
      const r = await this.o.sandbox.reload(id);
      if (!r.ok) {
        this.log.error({ tenant: id, errors: r.errors }, `policy: unpinned on another replica, but the file does not load here; uploaded version ${s.pin.version} keeps serving`);
        return;
      }
      this.o.sandbox.unpin(id);
      s.pin = undefined;
      s.warned = undefined;
      this.log.info({ tenant: id, file: s.config.policy }, `policy: unpinned on another replica: the file ${s.config.policy ?? '(none)'} serves again`);
      return;
    }
    const v = head.pinned;
    const source = await this.o.store.source(id, v.version);
    s.seq = head.seq;
    if (source === undefined) return;
    const r = await this.o.sandbox.reload(id, source);
    if (!r.ok) {
      this.log.error({ tenant: id, version: v.version, errors: r.errors }, `policy: version ${v.version} from the store does not load here; the previous version keeps serving`);
      return;
    }
    this.o.sandbox.pin(id, source);
    s.pin = { version: v.version, hash: v.hash, fileHash: v.fileHash };
    this.log.info({ tenant: id, version: v.version, hash: v.hash, uploader: v.uploader }, `policy: serving version ${v.version} (hash ${short(v.hash)}) from the store, pinned on another replica`);
    this.warnIfFileChanged(s);
  }

  /** Pinned, with a file that differs from the one the pin was taken over: say so, once per change of the file. */
  private warnIfFileChanged(s: TenantState): void {
    const hash = this.fileHash(s.config);
    if (!s.pin || hash === undefined || hash === s.pin.fileHash) {
      s.warned = undefined;
      return;
    }
    if (hash === s.warned) return;
    s.warned = hash;
    const id = s.config.id;
    this.log.warn(
      { tenant: id, file: s.config.policy, version: s.pin.version, file_hash: hash },
      `policy file changed but tenant is pinned to uploaded version ${s.pin.version}; POST /v1/reload or \`sluice unpin ${id}\` to unpin`,
    );
  }

  /** sha256 of the tenant's policy file now; '' when it has none configured, undefined when it cannot be read. */
  private fileHash(config: TenantConfig): string | undefined {
    if (!config.policy) return '';
    try {
      return sourceHash(readFileSync(path.resolve(this.o.cwd ?? process.cwd(), config.policy), 'utf8'));
    } catch {
      return undefined;
    }
  }

  private storeFailed(tenant: string, err: unknown): PolicyChange {
    this.log.error({ tenant, err: (err as Error)?.message }, `policy: ${STORE_DOWN}`);
    return { ok: false, refused: 'store', message: STORE_DOWN };
  }
}

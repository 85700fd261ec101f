// One file on purpose: the admin HTTP API: routes, authentication and the status page share one request path.
import { timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { StoreHealth } from '../cache/health';
import type { PolicyVersion } from '../cache/policy-store';
import type { SluiceConfig } from '../config/schema';
import { parseListenAddress } from '../config/load';
import type { Gateway } from '../gateway';
import type { PolicyDiagnostic } from '../policy-compiler/compile';
import type { PolicyChange, PolicyVersions } from '../policy-host/policy-versions';
import type { SandboxPool } from '../policy-host/sandbox-pool';
import { isSluiceError } from '../errors';
import { cookieValue, LoginLimiter, LoginSessions, sessionCookie, SESSION_COOKIE, type LoginSession } from './login';
import { Metrics } from './metrics';
import { htmlHeaders, newNonce, renderLogin, renderStatus, statusSnapshot, type StatusSources } from './status-page';
import { tenantState } from './tenant-state';

/**
 * The HTTP admin API (README, "Admin API"). A bearer token is required for
 * everything but /healthz: `admin.token` reaches every tenant, a tenant's
 * `upload_token` reaches only that tenant's own endpoints. With no
 * `admin.token` configured, only tenant tokens work.
 */
/** What a config reload did. */
export interface ConfigReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  /** Tenants whose new policy, limits or views did not start: their previous version keeps serving. */
  policy_errors: { tenant: string; errors: PolicyDiagnostic[] }[];
  /** Keys outside `tenants` that changed and wait for a restart (`server.port`, …). */
  restart_required: string[];
}

export interface AdminOptions {
  config: SluiceConfig;
  gateway: Gateway;
  sandbox: SandboxPool;
  /** Uploads, rollbacks, the versions kept and the pins (durable and shared through the store). */
  versions: PolicyVersions;
  logger: Logger;
  /** Whether the store can be written: `/healthz` answers 503 while it cannot (absent: always ok). */
  storeHealth?: StoreHealth;
  /** `POST /v1/reload`: re-read the config file (absent when Sluice was started without one). */
  reloadConfig?: () => Promise<ConfigReloadResult>;
}

type Access = { all: true } | { all: false; tenant: string };

function tokenEquals(given: string, expected: string | undefined): boolean {
  if (!expected) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
  res.end(text);
}

function readBody(req: http.IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) {
        // Answered 413 by the caller; the connection is closed once that answer is out.
        req.off('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A rollback's body: empty for the version before the current one, or `{ "version": N }`; null when it is neither. */
function rollbackTarget(body: string): number | undefined | null {
  if (body.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const keys = Object.keys(parsed);
  if (keys.length === 0) return undefined;
  const v = (parsed as { version?: unknown }).version;
  return keys.length === 1 && Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : null;
}

/** A kept version as the admin API shows it: when as ISO time and epoch ms, its size, whether it is the one pinned. */
function versionView(v: PolicyVersion, current: number | null): Record<string, unknown> {
  return {
    version: v.version,
    hash: v.hash,
    at: new Date(v.at).toISOString(),
    at_ms: v.at,
    uploader: v.uploader,
    current: v.version === current,
    bytes: v.bytes,
    ...(v.rollbackOf !== undefined ? { rollback_of: v.rollbackOf } : {}),
  };
}

/** A percent-encoded path segment, or undefined where it does not decode (`%ff`: regression, it answered 500). */
function pathSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

export class AdminServer {
  private readonly server: http.Server;
  /** `GET /metrics` (src/admin/metrics.ts, docs/metrics.md). */
  readonly metrics: Metrics;
  /** The tenants (and their upload tokens) change with a config reload; the admin section itself does not. */
  private config: SluiceConfig;
  /** Browser logins to the status page, and the limit on failed ones (src/admin/login.ts). */
  private readonly logins: LoginSessions;
  private readonly loginLimiter: LoginLimiter;

  constructor(private readonly o: AdminOptions) {
    this.config = o.config;
    this.logins = new LoginSessions(o.gateway.clock);
    this.loginLimiter = new LoginLimiter(o.gateway.clock);
    // Timeouts are checked every second (Node's default, 30 s, let a slow client hold a connection for 40 s).
    this.server = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
      // A body is read only by the route that wants it, after the token is checked: a request
      // answered without reading its body (401, 404, 413) is answered and its connection closed,
      // never read whole (regression: a 100 MB unauthenticated body was read before the 401).
      if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.setHeader('connection', 'close');
      res.on('finish', () => {
        if (req.complete) return;
        // Half-close so the answer reaches the client (a reset could discard it), drop what
        // still arrives, and give up on the connection after a second.
        req.resume();
        req.socket.end();
        this.o.gateway.clock.setTimeout(() => req.socket.destroy(), 1000);
      });
      this.handle(req, res).catch((err: Error) => {
        // A tenant removed by a config reload while its request was under way.
        if (isSluiceError(err, 'UNKNOWN_TENANT')) {
          if (!res.headersSent) send(res, 404, { error: 'no such tenant' });
          return;
        }
        o.logger.error({ err: err.message }, 'admin request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
      });
    });
    // Slow clients: headers within 10 s, a whole request within 60 s, idle keep-alive 5 s.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 60_000;
    this.server.keepAliveTimeout = 5000;
    this.metrics = new Metrics({ gateway: o.gateway, sandbox: o.sandbox, versions: o.versions, ...(o.storeHealth ? { storeHealth: o.storeHealth } : {}) });
  }

  async listen(): Promise<number> {
    const addr = parseListenAddress(this.config.admin.listen)!;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(addr.port, addr.host, () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;
    this.o.logger.info({ address: addr.host, port }, 'admin listening');
    return port;
  }

  /** The config after a reload: tenant tokens and limits from now on. */
  setConfig(config: SluiceConfig): void {
    this.config = config;
  }

  close(): Promise<void> {
    this.metrics.close();
    return new Promise((r) => this.server.close(() => r()));
  }

  private access(req: http.IncomingMessage): Access | undefined {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!m) return undefined;
    if (tokenEquals(m[1]!, this.config.admin.token)) return { all: true };
    for (const t of this.config.tenants) if (tokenEquals(m[1]!, t.upload_token)) return { all: false, tenant: t.id };
    return undefined;
  }

  /**
   * Ready to take traffic: the store can be written and every listener is up
   * (docs/operations.md, "Health"). Tenants that cannot serve (a policy that
   * did not load, a quarantine) are counted, not named (this answer needs no
   * token), and do not make the host unready: the others serve, and a load
   * balancer that took the host out would take every tenant down for one.
   */
  private async ready(res: http.ServerResponse): Promise<void> {
    const store = await this.o.storeHealth?.check();
    const writable = !store || store.writable;
    const listening = this.o.gateway.listening;
    let degraded = 0;
    for (const id of this.o.gateway.tenantIds()) {
      const s = this.o.sandbox.tenantState(id);
      if (s && (s.loadError || s.quarantined)) degraded++;
    }
    const ready = writable && listening;
    const body: Record<string, unknown> = { ready, store: writable ? 'writable' : 'not writable', listeners: listening ? 'up' : 'down', tenants_degraded: degraded };
    return send(res, ready ? 200 : 503, body);
  }

  /**
   * One line per admin action: who (the admin token, a tenant's upload token,
   * or no valid token; never the token itself), what, and how it ended.
   */
  private audit(method: string, path: string, access: Access | undefined, status: number): void {
    const who = !access ? 'none' : access.all ? 'admin' : `tenant:${access.tenant}`;
    const line = { audit: true, who, action: `${method} ${path.slice(0, 200)}`, status };
    if (status < 400) this.o.logger.info(line, 'admin action');
    else this.o.logger.warn(line, 'admin action refused');
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const p = url.pathname;
    if (req.method === 'GET' && p === '/healthz') {
      // Unauthenticated: says what is wrong, never a path or a URL.
      const store = await this.o.storeHealth?.check();
      if (store && !store.writable) return send(res, 503, { ok: false, store: 'not writable' });
      return send(res, 200, { ok: true });
    }
    if (req.method === 'GET' && p === '/readyz') return this.ready(res);
    if (await this.statusRoutes(req, res, p)) return;
    const access = this.access(req);
    // Every request that could change something is audited once answered, refused ones included.
    if (req.method !== 'GET' && req.method !== 'HEAD') res.once('finish', () => this.audit(req.method!, p, access, res.statusCode));
    if (!access) return send(res, 401, { error: 'a valid bearer token is required' });
    const tenantIds = this.o.gateway.tenantIds();
    const allowed = (t: string): boolean => tenantIds.includes(t) && (access.all || access.tenant === t);

    if (req.method === 'GET' && p === '/metrics' && access.all) {
      const text = await this.metrics.render();
      res.writeHead(200, { 'content-type': this.metrics.contentType });
      res.end(text);
      return;
    }
    if (req.method === 'POST' && p === '/v1/reload' && access.all) return this.reload(res);
    if (req.method === 'GET' && p === '/v1/tenants') {
      const stats = await this.o.sandbox.stats();
      const visible = tenantIds.filter(allowed);
      return send(
        res,
        200,
        visible.map((id) => ({ id, state: tenantState(this.o.sandbox.tenantState(id), stats.tenants.find((s) => s.tenant === id)?.state), sessions: this.o.gateway.sessions(id).length })),
      );
    }
    const m = /^\/v1\/tenants\/([^/]+)(\/.*)?$/.exec(p);
    if (!m) return send(res, 404, { error: 'not found' });
    const tenant = pathSegment(m[1]!);
    if (tenant === undefined) return send(res, 400, { error: 'malformed path' });
    // Another tenant's id answers exactly like one that does not exist.
    if (!allowed(tenant)) return send(res, 404, { error: 'no such tenant' });
    const rest = m[2] ?? '';
    if (req.method === 'GET' && rest === '') return send(res, 200, await this.tenantView(tenant));
    const uploader = access.all ? 'admin' : 'tenant';
    if (req.method === 'PUT' && rest === '/policy') {
      const cfg = this.config.tenants.find((t) => t.id === tenant)!;
      const body = await readBody(req, cfg.limits.max_script_kb * 1024);
      if (body === undefined) return send(res, 413, { error: `policy larger than max_script_kb ${cfg.limits.max_script_kb}` });
      return this.changed(res, await this.o.versions.upload(tenant, body, uploader));
    }
    if (req.method === 'POST' && rest === '/policy/rollback') {
      const body = await readBody(req, 1024);
      if (body === undefined) return send(res, 413, { error: 'body larger than 1 KB' });
      const version = rollbackTarget(body);
      if (version === null) return send(res, 400, { error: 'body must be empty or { "version": N }' });
      return this.changed(res, await this.o.versions.rollback(tenant, version, uploader));
    }
    if (req.method === 'DELETE' && rest === '/policy/pin' && access.all) return this.changed(res, await this.o.versions.unpin(tenant, 'admin'));
    if (req.method === 'GET' && rest === '/policy/versions') return this.versionList(res, tenant, url.searchParams.get('source') === '1');
    const v = /^\/policy\/versions\/([^/]+)$/.exec(rest);
    if (req.method === 'GET' && v) {
      const n = pathSegment(v[1]!);
      if (n === undefined) return send(res, 400, { error: 'malformed path' });
      return this.oneVersion(res, tenant, /^[1-9]\d{0,14}$/.test(n) ? Number(n) : undefined);
    }
    const b = /^\/binds\/([^/]+)\/(stop|start)$/.exec(rest);
    if (req.method === 'POST' && b && access.all) {
      const name = pathSegment(b[1]!);
      if (name === undefined) return send(res, 400, { error: 'malformed path' });
      const bind = this.o.gateway.bind(tenant, name);
      if (!bind) return send(res, 404, { error: 'no such bind' });
      if (b[2] === 'stop') await bind.stop();
      else bind.start();
      return send(res, 200, { name: bind.cfg.name, state: bind.state });
    }
    return send(res, 404, { error: 'not found' });
  }

  /** Re-read the config file, as SIGHUP does; an invalid file is refused whole (422, naming the key). */
  private async reload(res: http.ServerResponse): Promise<void> {
    if (!this.o.reloadConfig) return send(res, 409, { error: 'started without a config file: nothing to re-read' });
    try {
      return send(res, 200, await this.o.reloadConfig());
    } catch (err) {
      if (isSluiceError(err, 'SLUICE_ERR_CONFIG')) return send(res, 422, { error: (err as Error).message });
      throw err;
    }
  }

  /** An upload, rollback or unpin: 200 with what serves now, 422 with the errors of a source that does not load, else why nothing changed. */
  private changed(res: http.ServerResponse, r: PolicyChange): void {
    if (r.ok) {
      if (r.version === null) return send(res, 200, { pinned: false, hash: r.hash });
      return send(res, 200, { version: r.version, hash: r.hash, ...(r.rollbackOf !== undefined ? { rollback_of: r.rollbackOf } : {}) });
    }
    if ('errors' in r) return send(res, 422, { errors: r.errors });
    const status = { 'not-pinned': 409, 'nothing-earlier': 409, 'no-such-version': 404, store: 503 }[r.refused];
    return send(res, status, { error: r.message });
  }

  /** The versions kept, newest last; their sources only when asked for. */
  private async versionList(res: http.ServerResponse, tenant: string, withSource: boolean): Promise<void> {
    try {
      const list = await this.o.versions.versions(tenant);
      const versions = await Promise.all(
        list.versions.map(async (v) => ({ ...versionView(v, list.current), ...(withSource ? { source: (await this.o.versions.source(tenant, v.version)) ?? null } : {}) })),
      );
      return send(res, 200, { pinned: list.pinned, current: list.current, versions });
    } catch (err) {
      this.o.logger.error({ tenant, err: (err as Error).message }, 'admin: cannot read policy versions from the store');
      return send(res, 503, { error: 'the store did not answer' });
    }
  }

  private async oneVersion(res: http.ServerResponse, tenant: string, n: number | undefined): Promise<void> {
    try {
      const list = n === undefined ? undefined : await this.o.versions.versions(tenant);
      const v = list?.versions.find((x) => x.version === n);
      const source = v ? await this.o.versions.source(tenant, v.version) : undefined;
      if (!v || source === undefined) return send(res, 404, { error: 'no such version' });
      return send(res, 200, { ...versionView(v, list!.current), source });
    } catch (err) {
      this.o.logger.error({ tenant, err: (err as Error).message }, 'admin: cannot read policy versions from the store');
      return send(res, 503, { error: 'the store did not answer' });
    }
  }

  private async tenantView(tenant: string): Promise<unknown> {
    const stats = (await this.o.sandbox.stats()).tenants.find((s) => s.tenant === tenant);
    const state = this.o.sandbox.tenantState(tenant);
    const policy = this.o.versions.view(tenant);
    return {
      id: tenant,
      // The uploaded version serving (null: the tenant's file), the sha256 of the source serving, and whether an upload pins it.
      version: policy.version,
      hash: policy.hash,
      pinned: policy.pinned,
      // A policy that never loaded (no file, or it does not compile) is 'failed', not 'idle'.
      state: tenantState(state, stats?.state),
      cpu_ms: stats?.cpuMs ?? 0,
      heap_used: stats?.heapUsed ?? 0,
      heap_limit: stats?.heapLimit ?? 0,
      // Its policy calls run on the sandbox process's own thread (sandbox.inline_entry_ms).
      inline: stats?.inline ?? false,
      counts: {
        ...this.o.gateway.counters(tenant),
        timeouts: stats?.timeouts ?? 0,
        memory_kills: stats?.memoryKills ?? 0,
        sandbox_crashes: state?.crashes ?? 0,
        cpu_throttled: (stats?.throttled ?? 0) + (state?.cpuThrottled ?? 0),
        inline_offences: stats?.inlineOffences ?? 0,
      },
      // What did not load: the core's read of the file or the upload, or a compile in the sandbox (at start, ahead of use).
      load_errors: state?.loadError ?? [],
      sessions: this.o.gateway.sessions(tenant),
      binds: this.o.gateway.binds(tenant),
      queue: await this.queueOf(tenant),
      forward: { ...this.o.gateway.forwarder.count(tenant) },
    };
  }

  /** Queued messages of a tenant per bind they wait for, read from the journal now: depth and the oldest one's age. */
  private async queueOf(tenant: string): Promise<{ bind: string; depth: number; oldest_age_ms: number }[]> {
    // The journal's times are wall-clock (docs/design.md, "Time").
    const now = this.o.gateway.clock.wall();
    const depth = await this.o.gateway.forwarder.store.depth().catch(() => []);
    return depth.filter((d) => d.tenant === tenant).map((d) => ({ bind: d.route, depth: Number(d.count), oldest_age_ms: Math.max(0, now - Number(d.oldest)) }));
  }

  /**
   * The status page's routes (docs/status-page.md): GET / (the login form, or
   * the page), POST /login, POST /logout, GET /status.json. A login cookie
   * reaches these and nothing else; the admin bearer token reaches them too.
   * Answers false for any other route.
   */
  private async statusRoutes(req: http.IncomingMessage, res: http.ServerResponse, p: string): Promise<boolean> {
    const isPage = p === '/' && req.method === 'GET';
    const isData = p === '/status.json' && req.method === 'GET';
    const isLogin = p === '/login' && req.method === 'POST';
    const isLogout = p === '/logout' && req.method === 'POST';
    if (!isPage && !isData && !isLogin && !isLogout) return false;
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const session = this.logins.get(cookie);
    if (isLogin) return this.login(req, res).then(() => true);
    if (isLogout) return this.logout(req, res, cookie, session).then(() => true);
    const bearer = this.access(req);
    const admin = bearer?.all === true;
    if (isData) {
      if (!admin && !session) return send(res, bearer ? 404 : 401, bearer ? { error: 'not found' } : { error: 'log in, or a valid bearer token is required' }), true;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(JSON.stringify(await statusSnapshot(this.statusSources())));
      return true;
    }
    const nonce = newNonce();
    if (!admin && !session) {
      // A browser with no login (or an expired one) gets the form; a wrong bearer token is still a 401.
      res.writeHead(req.headers.authorization === undefined ? 200 : 401, htmlHeaders(nonce));
      res.end(renderLogin(nonce));
      return true;
    }
    const snapshot = await statusSnapshot(this.statusSources());
    res.writeHead(200, htmlHeaders(nonce));
    res.end(renderStatus(nonce, snapshot, session?.csrf));
    return true;
  }

  private statusSources(): StatusSources {
    return { gateway: this.o.gateway, sandbox: this.o.sandbox, versions: this.o.versions, registry: this.metrics.registry, ...(this.o.storeHealth ? { storeHealth: this.o.storeHealth } : {}) };
  }

  /** A form posted from elsewhere (an Origin that is not ours) is refused; browsers send Origin with every POST. */
  private sameOrigin(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  /** POST /login: the admin token as the form field `token`; a cookie and a redirect to the page, or a 401 page. */
  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const nonce = newNonce();
    const page = (status: number, message: string, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { ...htmlHeaders(nonce), ...extra });
      res.end(renderLogin(nonce, message));
    };
    if (!this.sameOrigin(req)) return page(403, 'This form must be sent from the status page itself.');
    const address = req.socket.remoteAddress ?? '';
    const wait = this.loginLimiter.retryAfterS(address);
    if (wait > 0) return page(429, `Too many failed logins: try again in ${wait} s.`, { 'retry-after': String(wait) });
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return page(415, 'Send the form.');
    const body = await readBody(req, 4096);
    if (body === undefined) return page(413, 'The form is too large.');
    const token = new URLSearchParams(body).get('token') ?? '';
    if (!tokenEquals(token, this.config.admin.token)) {
      this.loginLimiter.failed(address);
      this.o.logger.warn({ address }, 'admin: failed status page login');
      return page(401, 'That is not the admin token.');
    }
    const { id } = this.logins.create();
    res.writeHead(303, { location: '/', 'set-cookie': sessionCookie(id, isTls(req)), 'cache-control': 'no-store' });
    res.end();
  }

  /** POST /logout: with the page's CSRF token, the login ends and its cookie is cleared. */
  private async logout(req: http.IncomingMessage, res: http.ServerResponse, cookie: string | undefined, session: LoginSession | undefined): Promise<void> {
    if (!this.sameOrigin(req)) return send(res, 403, { error: 'cross-origin form' });
    if (session) {
      const body = await readBody(req, 4096);
      const csrf = body === undefined ? '' : (new URLSearchParams(body).get('csrf') ?? '');
      if (!tokenEquals(csrf, session.csrf)) return send(res, 403, { error: 'the form did not come from the status page' });
      this.logins.delete(cookie);
    }
    res.writeHead(303, { location: '/', 'set-cookie': sessionCookie(undefined, isTls(req)), 'cache-control': 'no-store' });
    res.end();
  }
}

/** Whether the request came over TLS (the cookie is then Secure). */
function isTls(req: http.IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

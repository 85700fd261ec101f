/**
 * Browser logins to the status page (docs/status-page.md): a session cookie
 * for the admin token, and a limit on failed logins. The cookie reaches the
 * page and its data only; every route that changes something keeps the
 * bearer token (a cookie is sent by the browser on its own, a header is not).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock';

/** The cookie's name. */
export const SESSION_COOKIE = 'sluice_session';
/** A login lasts 12 hours, then the page asks for the token again. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** At most this many live logins; the oldest goes first (a flood of logins cannot grow the map). */
const MAX_SESSIONS = 1000;

export interface LoginSession {
  /** Sent back with the logout form (its CSRF token). */
  readonly csrf: string;
  readonly expires: number;
}

/**
 * Live logins, server side. The map is keyed by the sha256 of the cookie's
 * value, so neither a lookup's timing nor a dump of the map gives a usable id.
 */
export class LoginSessions {
  private readonly byHash = new Map<string, LoginSession>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = SESSION_TTL_MS,
  ) {}

  /** A new login: the cookie value (256 random bits) and its session. */
  create(): { id: string; session: LoginSession } {
    this.sweep();
    while (this.byHash.size >= MAX_SESSIONS) this.byHash.delete(this.byHash.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(24).toString('base64url'), expires: this.clock.now() + this.ttlMs };
    this.byHash.set(hash(id), session);
    return { id, session };
  }

  /** The live session a cookie value names, if any. */
  get(id: string | undefined): LoginSession | undefined {
    if (!id) return undefined;
    const k = hash(id);
    const s = this.byHash.get(k);
    if (!s) return undefined;
    if (this.clock.now() >= s.expires) {
      this.byHash.delete(k);
      return undefined;
    }
    return s;
  }

  delete(id: string | undefined): void {
    if (id) this.byHash.delete(hash(id));
  }

  get size(): number {
    return this.byHash.size;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [k, s] of this.byHash) if (now >= s.expires) this.byHash.delete(k);
  }
}

function hash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Failed logins allowed per client address per window, and from everyone together. */
const PER_ADDRESS = 5;
const OVERALL = 50;
const WINDOW_MS = 60_000;
const MAX_ADDRESSES = 10_000;

/**
 * Failed logins, limited per client address and overall (a guesser with many
 * addresses still gets OVERALL tries a minute). Only failures count: a
 * right token is never refused while fewer than the limits have failed.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  private all: number[] = [];

  constructor(private readonly clock: Clock) {}

  /** 0 when `address` may try now, else the seconds until it may. */
  retryAfterS(address: string): number {
    const now = this.clock.now();
    const mine = this.recent(this.failures.get(address) ?? [], now);
    this.all = this.recent(this.all, now);
    const waits: number[] = [];
    if (mine.length >= PER_ADDRESS) waits.push(mine[0]! + WINDOW_MS - now);
    if (this.all.length >= OVERALL) waits.push(this.all[0]! + WINDOW_MS - now);
    return waits.length === 0 ? 0 : Math.max(1, Math.ceil(Math.max(...waits) / 1000));
  }

  failed(address: string): void {
    const now = this.clock.now();
    if (!this.failures.has(address) && this.failures.size >= MAX_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(address, [...this.recent(this.failures.get(address) ?? [], now), now]);
    this.all.push(now);
  }

  private recent(times: number[], now: number): number[] {
    return times.filter((t) => now - t < WINDOW_MS);
  }
}

/** A cookie header's value by name ('' and absent alike: undefined). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** The Set-Cookie value for a login (`id`), or one that clears it (`undefined`). */
export function sessionCookie(id: string | undefined, secure: boolean): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  return id === undefined ? [`${SESSION_COOKIE}=`, 'Max-Age=0', ...attrs].join('; ') : [`${SESSION_COOKIE}=${id}`, `Max-Age=${SESSION_TTL_MS / 1000}`, ...attrs].join('; ');
}

/**
 * The status page over plain HTTP (no browser): the login form, the cookie
 * and its attributes, logout with its CSRF token, what the cookie does not
 * reach, the Content-Security-Policy, escaping, failed-login limits and the
 * session expiry. The browser test is status-page.browser.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LoginLimiter, LoginSessions, SESSION_TTL_MS, cookieValue } from '../../src/admin/login';
import { esc, renderStatus, scriptJson, type StatusSnapshot } from '../../src/admin/status-page';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { ManualClock } from '../../src/util/clock';
import { freePort, sandboxedSetup } from '../helpers/harness';

const POLICY = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'x' }));\n";
/** A policy whose load fails with markup in its error text. */
const HOSTILE = "throw new Error('</script><img src=x id=pwned onerror=alert(1)>');\n";
const TOKEN = 'root-token-0123456789';

interface Answer {
  status: number;
  text: string;
  headers: Headers;
}

describe('status page over HTTP', () => {
  let s: Sluice;
  let base: string;
  before(async () => {
    const x = sandboxedSetup(
      { acme: POLICY, evil: HOSTILE },
      {
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        tenants: [
          { id: 'acme', policy: 'acme.ts', system_ids: ['acme'], upload_token: 'acme-token', binds: [{ name: 'up', host: '127.0.0.1', port: await freePort(), system_id: 'acme', password: 'bindpw1' }] },
          { id: 'evil', policy: 'evil.ts', system_ids: ['evil'] },
        ],
      },
    );
    s = await startSluice({ config: x.config, logger: silentLogger, cwd: x.dir, watch: false, admin: true });
    base = `http://127.0.0.1:${s.adminPort}`;
    // A tenant's isolate starts at its first use: a bind attempt makes the hostile policy fail to load.
    const c = await EsmeClient.connect({ port: s.port });
    assert.notEqual((await c.bind('evil', 'x')).command_status, 0);
    c.close();
  });
  after(() => s.stop());

  const call = async (method: string, p: string, o: { cookie?: string; bearer?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.cookie) headers.cookie = `sluice_session=${o.cookie}`;
    if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
    let body: string | undefined;
    if (o.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(o.form).toString();
    }
    const r = await fetch(base + p, { method, headers, body, redirect: 'manual' });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };

  const login = async (): Promise<{ id: string; setCookie: string }> => {
    const r = await call('POST', '/login', { form: { token: TOKEN } });
    assert.equal(r.status, 303);
    const setCookie = r.headers.get('set-cookie') ?? '';
    const id = cookieValue(setCookie.split(';')[0], 'sluice_session');
    assert.ok(id, setCookie);
    return { id, setCookie };
  };

  /** The CSP's nonce, and that every script and style element carries it. */
  const checkCsp = (r: Answer): void => {
    const csp = r.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`style-src 'nonce-${nonce.replace(/[+/]/g, '\\$&')}'`));
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.match(csp, /frame-ancestors 'none'/);
    for (const m of r.text.matchAll(/<(script|style)\b([^>]*)>/g)) assert.ok(m[2]!.includes(`nonce="${nonce}"`), `${m[0]} carries the nonce`);
    assert.doesNotMatch(r.text, /<[a-z]+\b[^>]*\s(src|href)=/i, 'nothing loaded from elsewhere');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
  };

  it('GET / without credentials is the login form, with no data in it', async () => {
    const r = await call('GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(r.text, /<form class="login" method="post" action="\/login">/);
    assert.match(r.text, /name="token" type="password"/);
    for (const needle of ['acme', 'evil', 'bindpw1', TOKEN, 'snapshot']) assert.ok(!r.text.includes(needle), needle);
    assert.equal(r.headers.get('set-cookie'), null);
    checkCsp(r);
  });

  it('a wrong token is a 401 page and no cookie; a tenant token does not log in; a token in the URL does nothing', async () => {
    for (const token of ['wrong', 'acme-token', `${TOKEN}x`]) {
      const r = await call('POST', '/login', { form: { token } });
      assert.equal(r.status, 401, token);
      assert.equal(r.headers.get('set-cookie'), null);
      assert.match(r.text, /not the admin token/);
    }
    const viaUrl = await call('GET', `/?token=${TOKEN}`);
    assert.match(viaUrl.text, /action="\/login"/);
    assert.equal((await call('GET', `/login?token=${TOKEN}`)).status, 401, 'GET /login is no route: the bearer check answers');
    assert.equal((await call('POST', `/login?token=${TOKEN}`, { headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 401);
  });

  it('the right token sets an HttpOnly, SameSite=Strict session cookie of 256 random bits and redirects to /; the page then shows the data', async () => {
    const { id, setCookie } = await login();
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.match(setCookie, /; Path=\//);
    assert.match(setCookie, /; Max-Age=43200/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP: not Secure');
    assert.ok(!setCookie.includes(TOKEN));
    assert.equal(Buffer.from(id, 'base64url').length, 32);
    assert.notEqual((await login()).id, id, 'every login its own id');
    const page = await call('GET', '/', { cookie: id });
    assert.equal(page.status, 200);
    checkCsp(page);
    assert.match(page.text, /Sluice status/);
    assert.match(page.text, /action="\/logout"/);
    assert.match(page.text, /"id":"acme"/);
    assert.ok(!page.text.includes(TOKEN) && !page.text.includes('bindpw1'));
  });

  it('/status.json: 401 without a login, 404 for a tenant token, the snapshot for the cookie and for the admin token', async () => {
    assert.equal((await call('GET', '/status.json')).status, 401);
    assert.equal((await call('GET', '/status.json', { cookie: 'made-up' })).status, 401);
    assert.equal((await call('GET', '/status.json', { bearer: 'acme-token' })).status, 404);
    const { id } = await login();
    const viaCookie = await call('GET', '/status.json', { cookie: id });
    assert.equal(viaCookie.status, 200);
    const snap = JSON.parse(viaCookie.text) as StatusSnapshot;
    assert.deepEqual(snap.tenants.map((t) => t.id), ['acme', 'evil']);
    const acme = snap.tenants.find((t) => t.id === 'acme')!;
    for (const k of ['state', 'version', 'hash', 'cpu_ms', 'cpu_ms_per_s', 'throttled', 'refused', 'heap_used', 'heap_limit', 'sessions', 'binds', 'queue', 'totals', 'errors_by_status']) assert.ok(k in acme, k);
    assert.equal(acme.cpu_ms_per_s, 250);
    assert.equal((await call('GET', '/status.json', { bearer: TOKEN })).status, 200);
  });

  it('problems come first: the bind that cannot connect with its error, the tenant whose policy did not load with the reason', async () => {
    const { id } = await login();
    let snap!: StatusSnapshot;
    const deadline = Date.now() + 10_000;
    for (;;) {
      snap = JSON.parse((await call('GET', '/status.json', { cookie: id })).text) as StatusSnapshot;
      if (snap.problems.some((p) => p.bind === 'up') || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const bind = snap.problems.find((p) => p.bind === 'up');
    assert.ok(bind, JSON.stringify(snap.problems));
    assert.equal(bind.level, 'error');
    assert.match(bind.detail ?? '', /connect failed: .*ECONNREFUSED/);
    const failed = snap.problems.find((p) => p.tenant === 'evil');
    assert.ok(failed, JSON.stringify(snap.problems));
    assert.match(failed.detail ?? '', /<img src=x id=pwned/, 'the JSON carries the text as it is');
    assert.equal(snap.tenants.find((t) => t.id === 'acme')!.binds[0]!.last_error?.includes('ECONNREFUSED'), true);
  });

  it('error texts are never markup in the page: the snapshot inside the page has no < or >', async () => {
    const { id } = await login();
    const page = await call('GET', '/', { cookie: id });
    assert.ok(!page.text.includes('<img'), 'no <img from the error text');
    assert.ok(!page.text.includes('</script><img'));
    assert.match(page.text, /\\u003c\/script\\u003e\\u003cimg src=x id=pwned/);
    assert.equal(esc(`<a href="x">'&`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;');
    assert.equal(scriptJson({ s: '</script>\u2028<!--' }), '{"s":"\\u003c/script\\u003e\\u2028\\u003c!--"}');
    const hostile: StatusSnapshot = { at: '<b>', at_ms: 0, refresh_ms: 3000, store: { writable: true }, problems: [{ level: 'error', what: '</script><script>alert(1)</script>' }], tenants: [] };
    const html = renderStatus('n0nce', hostile, '"><script>');
    assert.ok(!html.includes('<b>') && !html.includes('<script>alert') && !html.includes('"><script>'), html.slice(0, 400));
  });

  it('the cookie reaches the page and its data only: every other route, and every route that changes something, still wants the bearer token', async () => {
    const { id } = await login();
    const routes: [string, string][] = [
      ['POST', '/v1/reload'],
      ['POST', '/v1/tenants/acme/binds/up/stop'],
      ['POST', '/v1/tenants/acme/binds/up/start'],
      ['PUT', '/v1/tenants/acme/policy'],
      ['POST', '/v1/tenants/acme/policy/rollback'],
      ['DELETE', '/v1/tenants/acme/policy/pin'],
      ['GET', '/v1/tenants'],
      ['GET', '/v1/tenants/acme'],
      ['GET', '/metrics'],
    ];
    for (const [method, p] of routes) assert.equal((await call(method, p, { cookie: id })).status, 401, `${method} ${p} with the cookie`);
    assert.equal(s.gateway.bind('acme', 'up')!.state === 'stopped', false, 'the bind was not stopped');
  });

  it('logout needs the page\'s CSRF token, clears the cookie and ends the session; a form from another origin is refused', async () => {
    const { id } = await login();
    const page = await call('GET', '/', { cookie: id });
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(csrf);
    assert.equal((await call('POST', '/logout', { cookie: id, form: { csrf: 'forged' } })).status, 403);
    assert.equal((await call('POST', '/logout', { cookie: id, form: { csrf }, headers: { origin: 'http://evil.example' } })).status, 403);
    assert.equal((await call('GET', '/status.json', { cookie: id })).status, 200, 'still logged in');
    const out = await call('POST', '/logout', { cookie: id, form: { csrf } });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /^sluice_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict/);
    assert.equal((await call('GET', '/status.json', { cookie: id })).status, 401);
    assert.match((await call('GET', '/', { cookie: id })).text, /action="\/login"/);
    const cross = await call('POST', '/login', { form: { token: TOKEN }, headers: { origin: 'http://evil.example' } });
    assert.equal(cross.status, 403);
    assert.equal(cross.headers.get('set-cookie'), null);
  });

  it('failed logins are limited per address: after 5 a minute, even the right token waits (429 with Retry-After)', async () => {
    // The earlier tests failed 4 times (three wrong tokens, one empty form): one more reaches the limit.
    const r = await call('POST', '/login', { form: { token: 'wrong-again' } });
    assert.equal(r.status, 401);
    const limited = await call('POST', '/login', { form: { token: TOKEN } });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.equal(limited.headers.get('set-cookie'), null);
  });
});

describe('login sessions and the failed-login limit', () => {
  it('a session expires after 12 hours; an unknown or empty id is none', () => {
    const clock = new ManualClock();
    const sessions = new LoginSessions(clock);
    const { id } = sessions.create();
    assert.ok(sessions.get(id));
    assert.equal(sessions.get(undefined), undefined);
    assert.equal(sessions.get(`${id}x`), undefined);
    clock.advance(SESSION_TTL_MS - 1);
    assert.ok(sessions.get(id));
    clock.advance(1);
    assert.equal(sessions.get(id), undefined);
    assert.equal(sessions.size, 0);
  });

  it('logins are capped: a flood of them drops the oldest, the map stays bounded', () => {
    const sessions = new LoginSessions(new ManualClock());
    const first = sessions.create().id;
    for (let i = 0; i < 1100; i++) sessions.create();
    assert.equal(sessions.size, 1000);
    assert.equal(sessions.get(first), undefined);
  });

  it('5 failures a minute per address, 50 overall; the window slides', () => {
    const clock = new ManualClock();
    const l = new LoginLimiter(clock);
    for (let i = 0; i < 5; i++) {
      assert.equal(l.retryAfterS('a'), 0);
      l.failed('a');
    }
    assert.equal(l.retryAfterS('a'), 60);
    assert.equal(l.retryAfterS('b'), 0, 'another address is not held up');
    clock.advance(60_000);
    assert.equal(l.retryAfterS('a'), 0);
    for (let i = 0; i < 50; i++) l.failed(`addr${i}`);
    assert.ok(l.retryAfterS('fresh') > 0, 'many addresses together are limited too');
  });
});

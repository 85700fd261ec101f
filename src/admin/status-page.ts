/**
 * The status page (docs/status-page.md): what `GET /status.json` answers, and
 * the HTML of the page and of its login form. The page is one server-rendered
 * document with the first snapshot in it and a small inline script that
 * renders it and fetches a new one every few seconds; the script builds the
 * DOM with textContent only, so a tenant id or an error text is never markup.
 * Nothing is loaded from elsewhere, and the Content-Security-Policy allows
 * only this document's own nonce'd script and style.
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { StoreHealth } from '../cache/health';
import type { Gateway } from '../gateway';
import type { PolicyVersions } from '../policy-host/policy-versions';
import type { SandboxPool } from '../policy-host/sandbox-pool';
import { tenantState } from './tenant-state';

/** The page fetches a new snapshot this often. */
export const REFRESH_MS = 3000;
/** A tenant whose sandbox said it was over its CPU budget within this long is shown as throttled. */
const THROTTLED_RECENTLY_MS = 15_000;
/** A queue whose oldest message waited this long is a warning; 5 minutes is an error. */
const QUEUE_OLD_MS = 60_000;
const QUEUE_VERY_OLD_MS = 300_000;

export interface StatusSources {
  gateway: Gateway;
  sandbox: SandboxPool;
  versions: PolicyVersions;
  storeHealth?: StoreHealth;
  /** The metrics registry: errors by status and the submit and receipt counters are read from it. */
  registry: Registry;
}

export interface Problem {
  level: 'error' | 'warn';
  tenant?: string;
  bind?: string;
  what: string;
  detail?: string;
}

export interface BindStatus {
  name: string;
  state: string;
  upstream: string;
  reconnects: number;
  failures: number;
  last_error: string | null;
  last_failure_at: string | null;
}

export interface TenantStatus {
  id: string;
  state: string;
  reason: string | null;
  version: number | null;
  hash: string | null;
  pinned: boolean;
  cpu_ms: number;
  cpu_ms_per_s: number;
  throttled_ago_ms: number | null;
  /** Throttled by the sandbox (over its budget) and refused in the core while over it. */
  throttled: number;
  refused: number;
  heap_used: number;
  heap_limit: number;
  sessions: { id: string; system_id: string }[];
  binds: BindStatus[];
  queue: { bind: string; depth: number; oldest_age_ms: number }[];
  /** Running totals the page turns into rates between refreshes. */
  totals: { pdus: number; submits: number; receipts: number; deliveries: number };
  errors_by_status: Record<string, number>;
}

export interface StatusSnapshot {
  at: string;
  at_ms: number;
  refresh_ms: number;
  store: { writable: boolean | null };
  problems: Problem[];
  tenants: TenantStatus[];
}

type Values = { labels: Record<string, string | number>; value: number }[];

async function values(registry: Registry, name: string): Promise<Values> {
  const m = registry.getSingleMetric(name);
  return m ? ((await m.get()).values as Values) : [];
}

function sum(v: Values, where: (l: Record<string, string | number>) => boolean): number {
  let n = 0;
  for (const x of v) if (where(x.labels)) n += x.value;
  return n;
}

/** Everything the page shows, read now. */
export async function statusSnapshot(s: StatusSources): Promise<StatusSnapshot> {
  const { gateway } = s;
  const atMs = gateway.clock.wall();
  const [stats, depth, esmeRequests, esmeSent, receipts] = await Promise.all([
    s.sandbox.stats(),
    gateway.forwarder.store.depth().catch(() => []),
    values(s.registry, 'sluice_esme_requests_total'),
    values(s.registry, 'sluice_esme_sent_total'),
    values(s.registry, 'sluice_receipts_by_stat_total'),
  ]);
  const problems: Problem[] = [];
  const writable = s.storeHealth ? s.storeHealth.writable : null;
  if (writable === false) problems.push({ level: 'error', what: 'store not writable', detail: 'the journal and the cache cannot be written; /healthz answers 503' });
  const tenants: TenantStatus[] = [];
  for (const id of gateway.tenantIds()) {
    const st = stats.tenants.find((x) => x.tenant === id);
    const pool = s.sandbox.tenantState(id);
    const policy = s.versions.view(id);
    const cfg = gateway.tenantConfig(id);
    const counters = gateway.counters(id);
    const state = tenantState(pool, st?.state);
    let reason: string | null = null;
    const loadError = pool?.loadError?.[0];
    if (pool?.quarantined) reason = `quarantined after ${pool.crashes} sandbox crashes or kills; a new version or config lifts it`;
    else if (pool?.penalised) reason = 'penalised after its sandbox process died: its PDUs are answered ESME_RSYSERR for a while';
    else if (st?.state === 'failed' || st?.state === 'backoff') reason = st.loadError ?? (st.memoryKills > 0 ? 'killed at its memory limit' : st.timeouts > 0 ? 'killed by the watchdog' : null);
    if (loadError) reason = `${reason ? `${reason}; ` : ''}policy did not load: ${loadError.line > 0 ? `line ${loadError.line}:${loadError.column}: ` : ''}${loadError.message}`;
    if (['failed', 'quarantined', 'penalised', 'backoff'].includes(state)) problems.push({ level: 'error', tenant: id, what: `tenant ${state}`, ...(reason ? { detail: reason } : {}) });
    // A new version that did not load while an older one serves: the tenant works, its operator should know.
    else if (loadError) problems.push({ level: 'warn', tenant: id, what: 'new policy version did not load; the previous one serves', ...(reason ? { detail: reason } : {}) });
    const budget = cfg?.limits.cpu_ms_per_s ?? 0;
    const throttledAgo = pool?.throttledAgoMs ?? null;
    if (throttledAgo !== null && throttledAgo < THROTTLED_RECENTLY_MS) {
      problems.push({ level: 'warn', tenant: id, what: 'throttled by its CPU budget', detail: `over ${budget} ms of CPU per second ${(throttledAgo / 1000).toFixed(0)} s ago; its ESMEs' messages get ESME_RTHROTTLED (${pool?.cpuThrottled ?? 0} refused so far)` });
    }
    const binds: BindStatus[] = gateway.binds(id).map((b) => {
      const ob = gateway.bind(id, b.name);
      const lastFailureAt = ob?.lastFailureAt ? new Date(ob.lastFailureAt).toISOString() : null;
      const v: BindStatus = { name: b.name, state: b.state, upstream: `${b.host}:${b.port}`, reconnects: ob?.reconnects ?? 0, failures: ob?.failures ?? 0, last_error: ob?.lastError ?? null, last_failure_at: lastFailureAt };
      const down = b.state === 'backoff' || ((b.state === 'connecting' || b.state === 'binding') && v.failures > 0);
      if (down) problems.push({ level: 'error', tenant: id, bind: b.name, what: `bind ${b.name} ${b.state === 'backoff' ? 'down, backing off' : `down, ${b.state} again`}`, detail: `${v.last_error ?? 'no error yet'} (${v.failures} failed attempts in a row, ${v.reconnects} reconnects)` });
      else if (b.state === 'stopped') problems.push({ level: 'warn', tenant: id, bind: b.name, what: `bind ${b.name} stopped`, detail: 'stopped through the admin API or not started' });
      return v;
    });
    const queue = depth.filter((d) => d.tenant === id).map((d) => ({ bind: d.route, depth: Number(d.count), oldest_age_ms: Math.max(0, atMs - Number(d.oldest)) }));
    for (const q of queue) {
      if (q.oldest_age_ms >= QUEUE_OLD_MS) problems.push({ level: q.oldest_age_ms >= QUEUE_VERY_OLD_MS ? 'error' : 'warn', tenant: id, bind: q.bind, what: `queue for ${q.bind}: oldest waiting ${Math.round(q.oldest_age_ms / 1000)} s`, detail: `${q.depth} messages queued` });
    }
    const mine = (l: Record<string, string | number>): boolean => l.tenant === id;
    const errorsByStatus: Record<string, number> = {};
    for (const x of esmeRequests) {
      if (!mine(x.labels) || x.labels.command_status === 'ESME_ROK' || x.value === 0) continue;
      const k = String(x.labels.command_status);
      errorsByStatus[k] = (errorsByStatus[k] ?? 0) + x.value;
    }
    tenants.push({
      id,
      state,
      reason,
      version: policy.version,
      hash: policy.hash,
      pinned: policy.pinned,
      cpu_ms: st?.cpuMs ?? 0,
      cpu_ms_per_s: budget,
      throttled_ago_ms: throttledAgo === null ? null : Math.round(throttledAgo),
      throttled: st?.throttled ?? 0,
      refused: pool?.cpuThrottled ?? 0,
      heap_used: st?.heapUsed ?? 0,
      heap_limit: st?.heapLimit ?? 0,
      sessions: gateway.sessions(id).map((x) => ({ id: x.sessionId, system_id: x.systemId })),
      binds,
      queue,
      totals: {
        pdus: counters.pdus,
        submits: sum(esmeRequests, (l) => mine(l) && l.command === 'submit_sm'),
        receipts: sum(receipts, mine),
        deliveries: sum(esmeSent, (l) => mine(l) && l.command === 'deliver_sm'),
      },
      errors_by_status: errorsByStatus,
    });
  }
  problems.sort((a, b) => (a.level === b.level ? 0 : a.level === 'error' ? -1 : 1));
  return { at: new Date(atMs).toISOString(), at_ms: atMs, refresh_ms: REFRESH_MS, store: { writable }, problems, tenants };
}

/** A fresh nonce for one response's script and style. */
export function newNonce(): string {
  return randomBytes(18).toString('base64');
}

/** Headers every HTML answer of the page carries: only its own nonce'd script and style run, nothing frames it, nothing is cached. */
export function htmlHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Not no-referrer: with it Chromium sends its forms' Origin as "null", which /login refuses.
    'referrer-policy': 'same-origin',
  };
}

/** Text for HTML: the five characters that could end it, as entities. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON to put inside a <script> element: nothing in it can close the element or start a comment. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{display:flex;align-items:center;gap:1em;padding:.6em 1em;background:#1d2330;color:#fff}
header h1{font-size:1.1em;margin:0}header .at{opacity:.8;margin-left:auto}
header form{margin:0}button{font:inherit;padding:.3em .8em;cursor:pointer}
main{padding:1em;max-width:80em}
h2{font-size:1em;margin:1.2em 0 .4em}
.problems{list-style:none;padding:0;margin:0}
.problems li{padding:.5em .8em;margin:.3em 0;border-radius:4px;border-left:6px solid}
.problems .error{background:#fde8e8;border-color:#c81e1e;color:#771d1d}
.problems .warn{background:#fdf6e3;border-color:#c27803;color:#723b13}
.problems .detail{display:block;font-family:ui-monospace,monospace;font-size:.9em;word-break:break-word}
.ok{padding:.5em .8em;background:#def7ec;border-left:6px solid #0e9f6e;color:#03543f;border-radius:4px}
.stale{padding:.5em .8em;background:#fde8e8;color:#771d1d;border-radius:4px}
.tenant{background:#fff;border:1px solid #d2d6dc;border-radius:6px;margin:.8em 0;padding:.6em 1em}
.tenant h3{margin:.2em 0 .5em;font-size:1.05em}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;font-size:.85em;margin-left:.5em;background:#e5e7eb}
.badge.bad{background:#c81e1e;color:#fff}.badge.warn{background:#c27803;color:#fff}.badge.good{background:#0e9f6e;color:#fff}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#4b5563}
.kv th{width:12em}.mono{font-family:ui-monospace,monospace;word-break:break-word}
tr.bad td{color:#c81e1e}
.bar{display:inline-block;width:10em;height:.7em;background:#e5e7eb;border-radius:3px;vertical-align:middle;margin-left:.5em;overflow:hidden}
.bar i{display:block;height:100%;background:#0e9f6e}.bar i.over{background:#c81e1e}
.w0{width:0}.w10{width:10%}.w20{width:20%}.w30{width:30%}.w40{width:40%}.w50{width:50%}.w60{width:60%}.w70{width:70%}.w80{width:80%}.w90{width:90%}.w100{width:100%}
.login{max-width:24em;margin:5em auto;background:#fff;padding:1.5em;border:1px solid #d2d6dc;border-radius:6px}
.login input{width:100%;box-sizing:border-box;font:inherit;padding:.4em;margin:.4em 0 1em}
.login .err{color:#c81e1e}
`;

/** The login form; `message` (plain text) above it when a login failed. */
export function renderLogin(nonce: string, message?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Sluice: log in</title><style nonce="${nonce}">${STYLE}</style></head>
<body><form class="login" method="post" action="/login"><h1>Sluice status</h1>${message ? `<p class="err" role="alert">${esc(message)}</p>` : ''}
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>`;
}

/** The status page with its first snapshot; `csrf` goes back with the logout form (absent: shown to a bearer token, no logout). */
export function renderStatus(nonce: string, snapshot: StatusSnapshot, csrf?: string): string {
  const logout = csrf === undefined ? '' : `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit">Log out</button></form>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Sluice status</title><style nonce="${nonce}">${STYLE}</style></head>
<body><header><h1>Sluice status</h1><span class="at">data at <time id="at">${esc(snapshot.at)}</time></span>${logout}</header>
<main><h2>Problems</h2><div id="problems"></div><h2>Tenants</h2><div id="tenants"></div></main>
<script type="application/json" id="snapshot" nonce="${nonce}">${scriptJson(snapshot)}</script>
<script nonce="${nonce}">${SCRIPT}</script></body></html>`;
}

// The page's script: plain ES2020 for the browser, not compiled with the rest. DOM built with textContent only.
// Its timers are the browser's (window.setTimeout), not the core's Clock.
const SCRIPT = `
'use strict';
(function () {
  var prev = null;
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; }
  function row(table, k, v, cls) { var tr = el('tr', cls); tr.appendChild(el('th', '', k)); var td = el('td'); if (v instanceof Node) td.appendChild(v); else td.textContent = String(v); tr.appendChild(td); table.appendChild(tr); return tr; }
  function mb(n) { return (n / 1048576).toFixed(1) + ' MB'; }
  function age(ms) { return ms < 1000 ? Math.round(ms) + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : (ms / 60000).toFixed(1) + ' min'; }
  function rate(t, key, now) { if (!prev) return null; var p = prev.byId[t.id]; if (!p) return null; var dt = (now.at_ms - prev.at_ms) / 1000; if (dt <= 0) return null; return Math.max(0, (key(t) - key(p)) / dt); }
  function fmt(r, unit) { return r === null ? '… (next refresh)' : r.toFixed(1) + ' ' + unit; }
  function bar(used, limit) { var s = el('span', 'bar'); var pct = limit > 0 ? Math.min(100, Math.round(used / limit * 10) * 10) : 0; s.appendChild(el('i', 'w' + pct + (used > limit ? ' over' : ''))); return s; }
  function badge(state) { var cls = ['failed', 'quarantined', 'penalised', 'backoff'].indexOf(state) >= 0 ? 'bad' : state === 'ready' || state === 'bound' ? 'good' : ''; return el('span', 'badge ' + cls, state); }
  function render(s) {
    document.getElementById('at').textContent = s.at;
    var pr = document.getElementById('problems'); pr.textContent = '';
    if (s.problems.length === 0) pr.appendChild(el('div', 'ok', 'No problems.'));
    else { var ul = el('ul', 'problems'); s.problems.forEach(function (p) { var li = el('li', p.level); li.appendChild(el('strong', '', (p.tenant !== undefined ? p.tenant + ': ' : '') + p.what)); if (p.detail) li.appendChild(el('span', 'detail', p.detail)); ul.appendChild(li); }); pr.appendChild(ul); }
    var ts = document.getElementById('tenants'); ts.textContent = '';
    s.tenants.forEach(function (t) {
      var box = el('section', 'tenant'); box.setAttribute('data-tenant', t.id);
      var h = el('h3', '', t.id); h.appendChild(badge(t.state)); box.appendChild(h);
      var kv = el('table', 'kv');
      if (t.reason) row(kv, 'reason', t.reason, 'bad');
      row(kv, 'policy', (t.version === null ? 'its file' : 'version ' + t.version) + (t.pinned ? ' (pinned)' : '') + (t.hash ? ', sha256 ' + t.hash.slice(0, 12) : ''));
      var cpuRate = rate(t, function (x) { return x.cpu_ms; }, s);
      var cpu = el('span', '', (cpuRate === null ? '…' : cpuRate.toFixed(0)) + ' of ' + t.cpu_ms_per_s + ' ms/s');
      if (cpuRate !== null) cpu.appendChild(bar(cpuRate, t.cpu_ms_per_s));
      row(kv, 'CPU', cpu, t.throttled_ago_ms !== null && t.throttled_ago_ms < 15000 ? 'bad' : '');
      row(kv, 'throttled / refused', t.throttled + ' / ' + t.refused + (t.throttled_ago_ms === null ? '' : ' (last ' + age(t.throttled_ago_ms) + ' ago)'));
      row(kv, 'heap', mb(t.heap_used) + ' of ' + mb(t.heap_limit)).querySelector('td').appendChild(bar(t.heap_used, t.heap_limit));
      row(kv, 'sessions', t.sessions.length + (t.sessions.length ? ': ' + t.sessions.map(function (x) { return x.system_id; }).join(', ') : ''));
      row(kv, 'submits', fmt(rate(t, function (x) { return x.totals.submits; }, s), '/s') + ' (' + t.totals.submits + ' in all)');
      row(kv, 'receipts', fmt(rate(t, function (x) { return x.totals.receipts; }, s), '/s') + ' from upstreams, ' + fmt(rate(t, function (x) { return x.totals.deliveries; }, s), 'deliver_sm/s') + ' to ESMEs');
      var errs = Object.keys(t.errors_by_status);
      row(kv, 'errors by status', errs.length ? errs.map(function (k) { return k + ': ' + t.errors_by_status[k]; }).join(', ') : 'none');
      box.appendChild(kv);
      if (t.binds.length) {
        var bt = el('table', 'binds'); var hr = el('tr'); ['bind', 'state', 'upstream', 'reconnects', 'last error'].forEach(function (c) { hr.appendChild(el('th', '', c)); }); bt.appendChild(hr);
        t.binds.forEach(function (b) { var tr = el('tr', b.state === 'bound' ? '' : 'bad'); tr.setAttribute('data-bind', b.name); var st = el('td'); st.appendChild(badge(b.state)); [el('td', '', b.name), st, el('td', 'mono', b.upstream), el('td', '', b.reconnects), el('td', 'mono', b.last_error === null ? '' : b.last_error + ' (' + b.last_failure_at + ')')].forEach(function (c) { tr.appendChild(c); }); bt.appendChild(tr); });
        box.appendChild(bt);
      }
      var qt = el('table', 'queue'); var qh = el('tr'); ['queue for', 'depth', 'oldest'].forEach(function (c) { qh.appendChild(el('th', '', c)); }); qt.appendChild(qh);
      if (t.queue.length === 0) { var e = el('tr'); e.appendChild(el('td', '', 'nothing queued')); qt.appendChild(e); }
      t.queue.forEach(function (q) { var tr = el('tr', q.oldest_age_ms >= 60000 ? 'bad' : ''); [q.bind, q.depth, age(q.oldest_age_ms)].forEach(function (c) { tr.appendChild(el('td', '', c)); }); qt.appendChild(tr); });
      box.appendChild(qt);
      ts.appendChild(box);
    });
    var byId = {}; s.tenants.forEach(function (t) { byId[t.id] = t; }); prev = { at_ms: s.at_ms, byId: byId };
  }
  function stale(text) { var pr = document.getElementById('problems'); var d = document.getElementById('stale') || el('div', 'stale'); d.id = 'stale'; d.textContent = text; pr.insertBefore(d, pr.firstChild); }
  var first = JSON.parse(document.getElementById('snapshot').textContent);
  render(first);
  function tick() {
    fetch('/status.json', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { stale('Logged out or the login expired: reload to log in again.'); return; }
      if (!r.ok) throw new Error('status ' + r.status);
      return r.json().then(function (s) { render(s); window.setTimeout(tick, s.refresh_ms); });
    }).catch(function (e) { stale('Could not refresh (' + e.message + '): the data below is from the time shown.'); window.setTimeout(tick, first.refresh_ms); });
  }
  window.setTimeout(tick, first.refresh_ms);
})();
`;

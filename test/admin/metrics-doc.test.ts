/**
 * docs/metrics.md, deploy/prometheus/alerts.yml and deploy/grafana/sluice.json
 * against the metrics the admin API registers: every `sluice_*` metric is
 * documented and every one documented exists; the alert rules and the
 * dashboard query only documented metrics; promtool checks and unit-tests
 * the rules (skipped, saying so, where promtool is not installed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/admin/metrics';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { sandboxedSetup } from '../helpers/harness';

const ROOT = path.resolve(__dirname, '../../..');
const read = (p: string): string => readFileSync(path.join(ROOT, p), 'utf8');
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
const promtoolSkip: string | false = promtool ? false : 'promtool not installed (Debian: apt-get install prometheus)';

/** Metric names documented: the first column of docs/metrics.md's tables. */
function documented(): Set<string> {
  const names = new Set<string>();
  for (const m of read('docs/metrics.md').matchAll(/^\| `(sluice_[a-z0-9_]+)` \|/gm)) names.add(m[1]!);
  return names;
}

/** A query's metric names: `sluice_…` words, a histogram's _bucket/_sum/_count taken back to its own name. */
function queried(expr: string): string[] {
  return [...expr.matchAll(/\bsluice_[a-z0-9_]+/g)].map((m) => m[0]);
}

function known(name: string, docs: Set<string>): boolean {
  return docs.has(name) || docs.has(name.replace(/_(bucket|sum|count)$/, ''));
}

describe('metrics documentation and deploy files', () => {
  let s: Sluice;
  let registered: Set<string>;
  before(async () => {
    const { dir, config } = sandboxedSetup({ a: 'smpp.onBind((b) => b.accept());\n' }, { tenants: [{ id: 'a', policy: 'a.ts', system_ids: ['a'] }] });
    s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false });
    // With a store health probe, as `sluice start` runs it: sluice_store_writable is registered too.
    const m = new Metrics({ gateway: s.gateway, sandbox: s.sandbox, versions: s.versions, storeHealth: { writable: true } as never });
    registered = new Set(m.registry.getMetricsAsArray().map((x) => x.name).filter((n) => n.startsWith('sluice_')));
    m.close();
  });
  after(() => s?.stop());

  it('every registered sluice_* metric is in docs/metrics.md, and every one there is registered', () => {
    const docs = documented();
    assert.ok(registered.size > 30, `${registered.size} metrics registered`);
    assert.deepEqual([...registered].filter((n) => !docs.has(n)).sort(), [], 'registered but not in docs/metrics.md');
    assert.deepEqual([...docs].filter((n) => !registered.has(n)).sort(), [], 'in docs/metrics.md but not registered');
  });

  it('the Grafana dashboard parses and queries only documented metrics', () => {
    const dash = JSON.parse(read('deploy/grafana/sluice.json')) as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: { definition?: string }[] } };
    const docs = documented();
    const exprs = [...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dash.templating.list.map((t) => t.definition ?? '')];
    assert.ok(dash.panels.length >= 10);
    const names = exprs.flatMap(queried);
    assert.ok(names.length > 20);
    assert.deepEqual(names.filter((n) => !known(n, docs)), [], 'queried but not documented');
    // What an operator looks at first is on it.
    for (const n of ['sluice_esme_response_seconds', 'sluice_upstream_response_seconds', 'sluice_receipt_round_trip_seconds', 'sluice_queue_depth', 'sluice_queue_oldest_age_seconds', 'sluice_tenant_cpu_seconds_total', 'sluice_tenant_cpu_budget_seconds_per_second', 'sluice_tenant_heap_used_bytes', 'sluice_throttled_total', 'sluice_bind_state', 'sluice_receipts_by_stat_total']) {
      assert.ok(names.some((q) => q === n || q.startsWith(`${n}_`)), `${n} on the dashboard`);
    }
  });

  it('the alert rules query only documented metrics', () => {
    const docs = documented();
    const exprs = [...read('deploy/prometheus/alerts.yml').matchAll(/sluice_[a-z0-9_]+/g)].map((m) => m[0]);
    // Alert names are CamelCase; every snake_case sluice_ word in the file is a metric.
    assert.deepEqual(exprs.filter((n) => !known(n, docs)), [], 'in alerts.yml but not documented');
  });

  it('promtool check rules accepts the alert rules', { skip: promtoolSkip }, () => {
    const r = spawnSync('promtool', ['check', 'rules', path.join(ROOT, 'deploy/prometheus/alerts.yml')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('promtool test rules: the alerts fire as alerts.test.yml says', { skip: promtoolSkip }, () => {
    const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: path.join(ROOT, 'deploy/prometheus'), encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

/**
 * Health that tells the truth: a tenant whose policy is missing or does not
 * compile is shown failed with its load errors from the start, before any
 * traffic; /readyz counts it as degraded and stays ready for the others.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recordingLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { sandboxedSetup, until } from '../helpers/harness';

const GOOD = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'ok' }));\n";
const BAD = 'smpp.onBind((b) => b.accept();\nlet x = ;\n';

describe('health and load errors', () => {
  let s: Sluice;
  let base: string;
  const rec = recordingLogger('info');
  before(async () => {
    const x = sandboxedSetup(
      { good: GOOD, bad: BAD },
      {
        admin: { listen: '127.0.0.1:0', token: 't' },
        tenants: [
          { id: 'good', policy: 'good.ts', system_ids: ['good'] },
          { id: 'bad', policy: 'bad.ts', system_ids: ['bad'] },
          { id: 'gone', policy: 'missing.ts', system_ids: ['gone'] },
        ],
      },
    );
    s = await startSluice({ config: x.config, logger: rec.logger, cwd: x.dir, watch: false, admin: true });
    base = `http://127.0.0.1:${s.adminPort}`;
  });
  after(() => s?.stop());

  const tenant = async (id: string): Promise<{ state: string; load_errors: { line: number; column: number; message: string }[] }> =>
    (await fetch(`${base}/v1/tenants/${id}`, { headers: { authorization: 'Bearer t' } })).json() as Promise<{ state: string; load_errors: { line: number; column: number; message: string }[] }>;

  it('a policy that does not compile is failed with its errors at line:column before anything binds; a missing file likewise', async () => {
    await until(() => rec.lines().some((l) => l.msg === 'policy rejected' && l.tenant === 'bad'), 10_000, 'the compile ahead of use');
    const bad = await tenant('bad');
    assert.equal(bad.state, 'failed');
    assert.deepEqual(bad.load_errors.map((e) => [e.line, e.column]), [[1, 30], [2, 9]]);
    const gone = await tenant('gone');
    assert.equal(gone.state, 'failed');
    assert.match(gone.load_errors[0]!.message, /cannot read policy: ENOENT/);
    const good = await tenant('good');
    assert.deepEqual([good.state, good.load_errors], ['idle', []], 'a good policy is compiled but its isolate still starts on first use');
  });

  it('/readyz: ready (the others serve), two tenants degraded, counted not named; /healthz ok', async () => {
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { ready: true, store: 'writable', listeners: 'up', tenants_degraded: 2 });
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  it('the good tenant serves; the failed one is refused at bind', async () => {
    const c = await EsmeClient.connect({ port: s.port, window: 1 });
    try {
      assert.equal((await c.bind('good', 'x')).command_status, 0);
      assert.equal((await c.submit({ short_message: Buffer.from('hi') })).command_status, 0);
    } finally {
      c.close();
    }
    const d = await EsmeClient.connect({ port: s.port, window: 1 });
    try {
      assert.notEqual((await d.bind('bad', 'x')).command_status, 0);
    } finally {
      d.close();
    }
  });

  it('a new version that does not load while the old one serves: ready in the list, the tenant and the status page alike, which warns with its line:column', async () => {
    assert.equal((await tenant('good')).state, 'ready', 'the good tenant serves (it took a submit)');
    const r = await s.sandbox.reload('good', BAD);
    assert.equal(r.ok, false, 'the new version did not load');
    const auth = { headers: { authorization: 'Bearer t' } };
    const detail = await tenant('good');
    assert.equal(detail.state, 'ready', 'the previous version serves');
    assert.deepEqual(detail.load_errors.map((e) => [e.line, e.column]), [[1, 30], [2, 9]]);
    const list = (await (await fetch(`${base}/v1/tenants`, auth)).json()) as { id: string; state: string }[];
    assert.deepEqual(
      list.map((t) => [t.id, t.state]),
      [['good', 'ready'], ['bad', 'failed'], ['gone', 'failed']],
      'the list says what the tenant says (it said idle for a policy that never loaded)',
    );
    const page = (await (await fetch(`${base}/status.json`, auth)).json()) as { tenants: { id: string; state: string }[]; problems: { level: string; tenant?: string; what: string; detail?: string }[] };
    assert.deepEqual(page.tenants.map((t) => [t.id, t.state]), list.map((t) => [t.id, t.state]));
    const warned = page.problems.filter((p) => p.tenant === 'good');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!.level, 'warn');
    assert.equal(warned[0]!.what, 'new policy version did not load; the previous one serves');
    assert.match(warned[0]!.detail ?? '', /line 1:30/);
  });
});

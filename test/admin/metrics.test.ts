/**
 * /metrics while real traffic flows: an ESME → a sandboxed Sluice → a
 * simulated SMSC and back (submit, submit_sm_resp, a DELIVRD receipt
 * delivered to the ESME), an upload, the upstream going away, and a tenant
 * over its CPU budget. Each series is read from the exposition text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator } from '../../src/tools/sim';
import { ESME_ROK } from '../../src/wire/status';
import type { WirePdu } from '../../src/wire/codec';
import { sandboxedSetup, until } from '../helpers/harness';

const FORWARD = `smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', (pdu) => smpp.forward(pdu));
smpp.onPdu('deliver_sm', (pdu) => smpp.forward(pdu));
`;
/** Spends ~30 ms of CPU per submit: over a 5 ms/s budget after the first. */
const HOG = `smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', (pdu) => { const end = Date.now() + 30; let x = 0; while (Date.now() < end) x++; return pdu.reply({ message_id: 'h' + (x > 0 ? '1' : '0') }); });
`;

/** The samples of an exposition text: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The value of the one sample of `name` whose labels include all of `labels` (undefined: none). */
function value(s: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  let found: number | undefined;
  for (const [k, v] of s) {
    const brace = k.indexOf('{');
    if ((brace < 0 ? k : k.slice(0, brace)) !== name) continue;
    if (!Object.entries(labels).every(([l, x]) => k.includes(`${l}="${x}"`))) continue;
    found = (found ?? 0) + v;
  }
  return found;
}

describe('/metrics under real traffic', { timeout: 60_000 }, () => {
  let s: Sluice;
  let sim: SmscSimulator;
  let esme: EsmeClient;
  const receipts: WirePdu[] = [];
  let scrape: () => Promise<Map<string, number>>;

  before(async () => {
    sim = new SmscSimulator({ dlrDelayMs: 20 });
    const upPort = await sim.listen();
    const { dir, config } = sandboxedSetup(
      { acme: FORWARD, hog: HOG },
      {
        admin: { listen: '127.0.0.1:0', token: 'root-token' },
        tenants: [
          {
            id: 'acme',
            policy: 'acme.ts',
            system_ids: ['acme-app'],
            binds: [{ name: 'up0', host: '127.0.0.1', port: upPort, system_id: 'acme', window: 8 }],
            routing: { default_chain: ['bind:up0'], rules: [] },
          },
          { id: 'hog', policy: 'hog.ts', system_ids: ['hog-app'], limits: { cpu_ms_per_s: 5, handler_timeout_ms: 500, handler_deadline_ms: 3000 } },
        ],
      },
    );
    s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, admin: true, reconnectBaseMs: 50 });
    const base = `http://127.0.0.1:${s.adminPort}`;
    scrape = async () => {
      const r = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer root-token' } });
      assert.equal(r.status, 200);
      return samples(await r.text());
    };
    await until(() => s.gateway.binds('acme')[0]?.state === 'bound', 8000, 'up0 bound');
    esme = await EsmeClient.connect({
      port: s.port,
      onRequest: (pdu, session) => {
        receipts.push(pdu);
        session.respond(pdu, ESME_ROK, { message_id: '' });
      },
    });
    assert.equal((await esme.bind('acme-app', 'pw')).command_status, 0);
  });
  after(async () => {
    await esme?.session.unbindAndClose('test over').catch(() => undefined);
    await s?.stop();
    await sim?.close();
  });

  it('a submit answered and its DELIVRD receipt delivered move the PDU, status, receipt and latency series', async () => {
    const before = await scrape();
    const resp = await esme.session.request('submit_sm', { source_addr: '4412345', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from('hello') });
    assert.equal(resp.command_status, 0);
    await until(() => receipts.length >= 1, 8000, 'receipt delivered to the ESME');
    const m = await scrape();
    const grew = (name: string, labels: Record<string, string>): void => {
      const was = value(before, name, labels) ?? 0;
      const now = value(m, name, labels);
      assert.ok(now !== undefined && now > was, `${name}${JSON.stringify(labels)}: ${was} -> ${now}`);
    };
    grew('sluice_esme_requests_total', { tenant: 'acme', command: 'submit_sm', command_status: 'ESME_ROK' });
    grew('sluice_esme_response_seconds_count', { tenant: 'acme', command: 'submit_sm' });
    grew('sluice_upstream_sent_total', { tenant: 'acme', bind: 'up0', command: 'submit_sm', command_status: 'ESME_ROK' });
    grew('sluice_upstream_response_seconds_count', { tenant: 'acme', bind: 'up0', command: 'submit_sm' });
    grew('sluice_upstream_requests_total', { tenant: 'acme', bind: 'up0', command: 'deliver_sm', command_status: 'ESME_ROK' });
    grew('sluice_receipts_by_stat_total', { tenant: 'acme', bind: 'up0', stat: 'DELIVRD', outcome: 'matched' });
    grew('sluice_esme_sent_total', { tenant: 'acme', command: 'deliver_sm', command_status: 'ESME_ROK' });
    grew('sluice_receipt_round_trip_seconds_count', { tenant: 'acme', bind: 'up0' });
    grew('sluice_forwarded_total', { tenant: 'acme' });
    // The response histogram's buckets are cumulative and end at +Inf.
    assert.equal(value(m, 'sluice_esme_response_seconds_bucket', { tenant: 'acme', command: 'submit_sm', le: '+Inf' }), value(m, 'sluice_esme_response_seconds_count', { tenant: 'acme', command: 'submit_sm' }));
    assert.equal(value(m, 'sluice_esme_sessions', { tenant: 'acme' }), 1);
    assert.equal(value(m, 'sluice_bind_up', { tenant: 'acme', bind: 'up0' }), 1);
    assert.equal(value(m, 'sluice_bind_window_size', { tenant: 'acme', bind: 'up0' }), 8);
    assert.equal(value(m, 'sluice_bind_window_in_use', { tenant: 'acme', bind: 'up0' }), 0);
    // The sandbox's own series, for the tenant whose policy ran.
    assert.ok((value(m, 'sluice_tenant_heap_limit_bytes', { tenant: 'acme' }) ?? 0) > 0, 'heap limit');
    assert.ok((value(m, 'sluice_tenant_heap_used_bytes', { tenant: 'acme' }) ?? 0) > 0, 'heap used');
    assert.ok(value(m, 'sluice_tenant_cpu_seconds_total', { tenant: 'acme' }) !== undefined, 'cpu seconds');
    assert.equal(value(m, 'sluice_tenant_cpu_budget_seconds_per_second', { tenant: 'hog' }), 0.005);
    assert.equal(value(m, 'sluice_tenant_quarantined', { tenant: 'acme' }), 0);
    assert.equal(value(m, 'sluice_sandbox_restarts_total', { process: '0' }), 0);
    assert.equal(value(m, 'sluice_policy_version_info', { tenant: 'acme', version: 'file', pinned: 'false' }), 1);
  });

  it('submits refused by the CPU budget are counted in sluice_throttled_total{reason="cpu_budget"} (regression: 0 while 157,859 were refused)', async () => {
    const hog = await EsmeClient.connect({ port: s.port });
    try {
      assert.equal((await hog.bind('hog-app', 'pw')).command_status, 0);
      let refused = 0;
      for (let i = 0; i < 20; i++) {
        const r = await hog.session.request('submit_sm', { source_addr: '1', destination_addr: '2', short_message: Buffer.from('x') });
        if (r.command_status === 0x58) refused++;
      }
      assert.ok(refused > 0, 'some submits were answered ESME_RTHROTTLED');
      const m = await scrape();
      const cpu = value(m, 'sluice_throttled_total', { tenant: 'hog', reason: 'cpu_budget' }) ?? 0;
      assert.ok(cpu >= refused, `cpu_budget ${cpu} >= ${refused} refused`);
      assert.equal(value(m, 'sluice_throttled_total', { tenant: 'hog', reason: 'rate' }), 0);
      assert.ok((value(m, 'sluice_esme_requests_total', { tenant: 'hog', command: 'submit_sm', command_status: 'ESME_RTHROTTLED' }) ?? 0) >= refused);
      // The admin API's JSON says the same.
      const view = (await (await fetch(`http://127.0.0.1:${s.adminPort}/v1/tenants/hog`, { headers: { authorization: 'Bearer root-token' } })).json()) as { counts: { cpu_throttled: number } };
      assert.equal(view.counts.cpu_throttled, cpu);
    } finally {
      await hog.session.unbindAndClose('test over').catch(() => undefined);
    }
  });

  it('an upload counts as a change and a reload, and the version info follows it', async () => {
    const r = await fetch(`http://127.0.0.1:${s.adminPort}/v1/tenants/acme/policy`, { method: 'PUT', headers: { authorization: 'Bearer root-token' }, body: `${FORWARD}// v1\n` });
    assert.equal(r.status, 200);
    const { version, hash } = (await r.json()) as { version: number; hash: string };
    const bad = await fetch(`http://127.0.0.1:${s.adminPort}/v1/tenants/acme/policy`, { method: 'PUT', headers: { authorization: 'Bearer root-token' }, body: 'smpp.onPdu(' });
    assert.equal(bad.status, 422);
    const m = await scrape();
    assert.equal(value(m, 'sluice_policy_changes_total', { tenant: 'acme', action: 'upload', result: 'ok' }), 1);
    assert.equal(value(m, 'sluice_policy_changes_total', { tenant: 'acme', action: 'upload', result: 'rejected' }), 1);
    assert.equal(value(m, 'sluice_policy_reloads_total', { tenant: 'acme', result: 'ok' }), 1);
    assert.equal(value(m, 'sluice_policy_version_info', { tenant: 'acme', version: String(version), hash, pinned: 'true' }), 1);
    assert.equal(value(m, 'sluice_policy_version_info', { tenant: 'acme', version: 'file' }), undefined, 'one series per tenant');
  });

  it('the upstream going away: the bind is down, in backoff, and its reconnects and last failure are counted', async () => {
    await sim.close();
    await until(() => s.gateway.binds('acme')[0]?.state !== 'bound', 8000, 'up0 lost');
    await until(() => (s.gateway.bind('acme', 'up0')?.reconnects ?? 0) >= 1, 8000, 'a reconnect tried');
    const m = await scrape();
    assert.equal(value(m, 'sluice_bind_up', { tenant: 'acme', bind: 'up0' }), 0);
    assert.equal(value(m, 'sluice_bind_state', { tenant: 'acme', bind: 'up0', state: 'bound' }), 0);
    assert.equal((value(m, 'sluice_bind_state', { tenant: 'acme', bind: 'up0', state: 'backoff' }) ?? 0) + (value(m, 'sluice_bind_state', { tenant: 'acme', bind: 'up0', state: 'connecting' }) ?? 0) + (value(m, 'sluice_bind_state', { tenant: 'acme', bind: 'up0', state: 'binding' }) ?? 0), 1);
    assert.ok((value(m, 'sluice_bind_reconnects_total', { tenant: 'acme', bind: 'up0' }) ?? 0) >= 1);
    assert.ok((value(m, 'sluice_bind_consecutive_failures', { tenant: 'acme', bind: 'up0' }) ?? 0) >= 1);
    const last = value(m, 'sluice_bind_last_failure_timestamp_seconds', { tenant: 'acme', bind: 'up0' }) ?? 0;
    assert.ok(Math.abs(last - Date.now() / 1000) < 30, `last failure ${last}`);
  });
});

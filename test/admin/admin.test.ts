import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { sandboxedSetup } from '../helpers/harness';

const V1 = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'v1' }));\n";
const V2 = V1.replace("'v1'", "'v2'");

describe('admin API', () => {
  let s: Sluice;
  let base: string;
  before(async () => {
    const { dir, config } = sandboxedSetup(
      { acme: V1, globex: V1 },
      {
        admin: { listen: '127.0.0.1:0', token: 'root-token' },
        tenants: [
          { id: 'acme', policy: 'acme.ts', system_ids: ['acme'], upload_token: 'acme-token' },
          { id: 'globex', policy: 'globex.ts', system_ids: ['globex'], upload_token: 'globex-token' },
        ],
      },
    );
    s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, admin: true });
    base = `http://127.0.0.1:${s.adminPort}`;
  });
  after(() => s.stop());

  const call = (method: string, p: string, token?: string, body?: string) =>
    fetch(base + p, { method, headers: token ? { authorization: `Bearer ${token}` } : {}, body });

  it('healthz needs no token; everything else does', async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/v1/tenants')).status, 401);
    assert.equal((await call('GET', '/v1/tenants', 'wrong')).status, 401);
  });

  /** Send `head` and then `bodyBytes` of body (as fast as the socket takes them) on a raw connection; what comes back, and whether the server closed. */
  async function raw(head: string, bodyBytes: number): Promise<{ reply: string; closedMs: number }> {
    const port = Number(new URL(base).port);
    const sock = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const t0 = Date.now();
    const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now() - t0)));
    sock.on('data', (d) => (reply += d.toString()));
    sock.on('error', () => {});
    sock.write(head);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < bodyBytes && !sock.destroyed; sent += chunk.length) {
      if (!sock.write(chunk)) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
    }
    const closedMs = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
    sock.destroy();
    return { reply, closedMs };
  }

  it('an unauthenticated body is not read: 401 and the connection closed (regression: 100 MB were read before the 401)', async () => {
    const r = await raw('PUT /v1/tenants/acme/policy HTTP/1.1\r\nhost: x\r\ncontent-length: 104857600\r\n\r\n', 4 * 1024 * 1024);
    assert.match(r.reply, /^HTTP\/1\.1 401/);
    assert.ok(r.closedMs >= 0 && r.closedMs < 3000, `closed after ${r.closedMs} ms`);
  });

  it('an upload over max_script_kb gets its 413 before the connection closes (regression: reset first)', async () => {
    const size = 600 * 1024;
    const r = await raw(`PUT /v1/tenants/acme/policy HTTP/1.1\r\nhost: x\r\nauthorization: Bearer root-token\r\ncontent-length: ${size}\r\n\r\n`, size);
    assert.match(r.reply, /^HTTP\/1\.1 413/);
    assert.match(r.reply, /max_script_kb/);
  });

  it('a path that does not percent-decode is 400, not 500 (regression: %ff answered 500)', async () => {
    for (const p of ['/v1/tenants/%ff', '/v1/tenants/acme/binds/%e0%a4/stop']) {
      const r = await call(p.endsWith('stop') ? 'POST' : 'GET', p, 'root-token');
      assert.equal(r.status, 400, p);
      assert.deepEqual(await r.json(), { error: 'malformed path' });
    }
  });

  it('PUT a policy: 200 with the version, the next PDU takes it; a broken one is 422 with line:column and the old keeps serving', async () => {
    const ok = await call('PUT', '/v1/tenants/acme/policy', 'acme-token', V2);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { version: number }).version >= 1, true);
    const c = await EsmeClient.connect({ port: s.port });
    await c.bind('acme', 'x');
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).fields.message_id, 'v2');
    const bad = await call('PUT', '/v1/tenants/acme/policy', 'acme-token', "smpp.onPdu('submit_sm', (pdu) => {\n  pdu.reply({ message_id: 'v3' ;\n});");
    assert.equal(bad.status, 422);
    const errors = ((await bad.json()) as { errors: { line: number; column: number }[] }).errors;
    assert.equal(errors[0]!.line, 2);
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).fields.message_id, 'v2');
    const rb = await call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token');
    assert.equal(rb.status, 200);
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).fields.message_id, 'v1');
    c.close();
  });

  it("a tenant's upload token reaches only its own tenant, and another tenant looks like none", async () => {
    const other = await call('PUT', '/v1/tenants/globex/policy', 'acme-token', V2);
    const none = await call('PUT', '/v1/tenants/nobody/policy', 'acme-token', V2);
    assert.equal(other.status, 404);
    assert.equal(none.status, 404);
    assert.deepEqual(await other.json(), await none.json());
    const list = (await (await call('GET', '/v1/tenants', 'acme-token')).json()) as { id: string }[];
    assert.deepEqual(list.map((t) => t.id), ['acme']);
    assert.equal((await call('GET', '/metrics', 'acme-token')).status, 404);
  });

  it('GET a tenant shows version, state, CPU, heap, whether its entries run inline, counts, sessions and binds; /metrics and / for the operator', async () => {
    const t = (await (await call('GET', '/v1/tenants/acme', 'root-token')).json()) as Record<string, unknown>;
    for (const k of ['version', 'state', 'cpu_ms', 'heap_used', 'heap_limit', 'inline', 'counts', 'sessions', 'binds']) assert.ok(k in t, k);
    assert.equal(typeof t.inline, 'boolean');
    assert.equal((t.counts as Record<string, unknown>).inline_offences, 0);
    const metrics = await (await call('GET', '/metrics', 'root-token')).text();
    assert.match(metrics, /sluice_pdus_total\{tenant="acme"\} \d+/);
    assert.match(await (await call('GET', '/', 'root-token')).text(), /<title>Sluice status<\/title>/);
  });
});

describe('sluice push and unpin', () => {
  it('push uploads through the admin API and prints errors at line:column; unpin takes the admin token and gives the tenant its file back', async () => {
    const { spawn } = await import('node:child_process');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-push-'));
    writeFileSync(path.join(dir, 'p.ts'), V1);
    const cfgDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-push-cfg-'));
    writeFileSync(path.join(cfgDir, 'acme.ts'), V1);
    const config = parseConfig(
      stringify({ server: { bind_address: '127.0.0.1', port: 0 }, cache: { url: 'memory://' }, sandbox: { processes: 1 }, admin: { listen: '127.0.0.1:0', token: 'root-token' }, tenants: [{ id: 'acme', policy: 'acme.ts', upload_token: 'acme-token' }] }),
      { file: 't.yaml', env: {}, cwd: cfgDir },
    );
    const s = await startSluice({ config, logger: silentLogger, cwd: cfgDir, watch: false, admin: true });
    const sluice = (args: string[], token = 'acme-token') =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [path.resolve(__dirname, '../../../bin/sluice.js'), ...args, '--admin', `http://127.0.0.1:${s.adminPort}`, '--token', token]);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => resolve({ code, out }));
      });
    const ok = await sluice(['push', 'acme', path.join(dir, 'p.ts')]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /acme: version \d+ active/);
    writeFileSync(path.join(dir, 'bad.ts'), 'smpp.onBind((b) => {\n  return b.accept(;\n});\n');
    const bad = await sluice(['push', 'acme', path.join(dir, 'bad.ts')]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /bad\.ts:2:\d+ - error TS1005: '\)' expected\./);
    const byTenant = await sluice(['unpin', 'acme']);
    assert.equal(byTenant.code, 1);
    assert.match(byTenant.out, /sluice unpin: the admin API answered 404 \(not found\): unpin needs admin\.token, not a tenant's upload_token/);
    const unpinned = await sluice(['unpin', 'acme'], 'root-token');
    assert.equal(unpinned.code, 0, unpinned.out);
    assert.match(unpinned.out, /^acme: unpinned; its policy file serves \(hash [0-9a-f]{12}\)\n$/);
    assert.equal(s.versions.view('acme').pinned, false);
    const again = await sluice(['unpin', 'acme'], 'root-token');
    assert.equal(again.code, 1);
    assert.match(again.out, /sluice unpin: the admin API answered 409: not pinned: the file serves/);
    await s.stop();
  });
});

/**
 * Config reload (README, "Admin API": `POST /v1/reload`, and SIGHUP in `sluice
 * start`): the config file is re-read; tenants, limits, binds and routing
 * change in one step, untouched tenants keep their sessions, an invalid file
 * is refused whole. Real config files, a real sandbox process, real TCP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';
import { isSluiceError } from '../../src/errors';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator } from '../../src/tools/sim';
import { STATUS } from '../../src/wire/status';
import { boundEsme, freePort, sleep } from '../helpers/harness';

// Answers with what the policy sees of its own config: id, routing rule names, handler_timeout_ms, bind names.
const POLICY = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', (pdu) => {
  if (pdu.text === 'binds') return pdu.reply({ message_id: smpp.binds().map((b) => b.name).join(',') || '-' });
  const c = smpp.config();
  const rules = smpp.routingRules().rules.map((r) => r.name).join(',') || '-';
  return pdu.reply({ message_id: [c.id, rules, c.limits.handler_timeout_ms, c.binds.map((b) => b.name).join(',') || '-'].join(':') });
});`;

interface TenantDoc {
  id: string;
  policy?: string;
  system_ids: string[];
  upload_token?: string;
  limits?: Record<string, unknown>;
  binds?: Record<string, unknown>[];
  routing?: Record<string, unknown>;
}

function world() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-reload-'));
  writeFileSync(path.join(dir, 'policy.ts'), POLICY);
  writeFileSync(path.join(dir, 'broken.ts'), 'smpp.onPdu("submit_sm", (pdu) => {\n  return pdu.reply({ message_id: "x" }\n});\n');
  const file = path.join(dir, 'sluice.yaml');
  const write = (tenants: TenantDoc[], server: Record<string, unknown> = {}): void =>
    writeFileSync(
      file,
      stringify({
        server: { bind_address: '127.0.0.1', port: 0, ...server },
        cache: { url: 'memory://' },
        sandbox: { processes: 1 },
        log: { level: 'silent' },
        admin: { listen: '127.0.0.1:0', token: 'root-token' },
        tenants: tenants.map((t) => ({ policy: path.join(dir, 'policy.ts'), ...t })),
      }),
    );
  return { dir, file, write };
}

async function answer(c: EsmeClient): Promise<string> {
  const r = await c.submit({ short_message: Buffer.from('hi') });
  assert.equal(r.command_status, 0);
  return String(r.fields.message_id);
}

/** The policy's smpp.binds() names. */
async function bindsSeen(c: EsmeClient): Promise<string> {
  const r = await c.submit({ short_message: Buffer.from('binds') });
  return String(r.fields.message_id);
}

async function refusedBind(s: Sluice, systemId: string): Promise<number> {
  const c = await EsmeClient.connect({ port: s.port });
  const r = await c.bind(systemId, 'pw');
  c.close();
  return r.command_status;
}

/** Sluice on `w`'s config file for one test: `fn` gets it and a client list closed, with Sluice stopped, whatever happens. */
async function withSluice(w: ReturnType<typeof world>, o: { watch?: boolean; configFile?: boolean }, fn: (s: Sluice, clients: EsmeClient[]) => Promise<void>): Promise<void> {
  const s = await startSluice({ config: loadConfig(w.file, {}), configFile: o.configFile === false ? undefined : w.file, env: {}, logger: silentLogger, cwd: w.dir, watch: o.watch ?? false });
  const clients: EsmeClient[] = [];
  try {
    await fn(s, clients);
  } finally {
    for (const c of clients) c.close();
    await s.stop();
  }
}

const closed = (c: EsmeClient): Promise<void> => new Promise((resolve) => c.session.once('close', () => resolve()));

const ACME: TenantDoc = { id: 'acme', system_ids: ['acme-app', 'acme-old'], upload_token: 'acme-token', routing: { rules: [{ prefix: '31', name: 'nl', chain: ['reject'] }] } };
const GLOBEX: TenantDoc = { id: 'globex', system_ids: ['globex-app'] };

describe('config reload', () => {
  let s: Sluice;
  let w: ReturnType<typeof world>;
  before(async () => {
    w = world();
    w.write([ACME, GLOBEX]);
    s = await startSluice({ config: loadConfig(w.file, {}), configFile: w.file, env: {}, logger: silentLogger, cwd: w.dir, watch: false, admin: true });
  });
  after(() => s.stop());

  it('adds, removes and changes tenants in one step; an unchanged session keeps going and sees the new config', async () => {
    const acme = await boundEsme(s, 'acme-app');
    const globex = await boundEsme(s, 'globex-app');
    assert.equal(await answer(acme), 'acme:nl:50:-');
    const globexGone = closed(globex);

    w.write([{ ...ACME, limits: { handler_timeout_ms: 40 }, routing: { rules: [{ prefix: '31', name: 'nl2', chain: ['reject'] }] } }, { id: 'initech', system_ids: ['initech-app'] }]);
    const r = await s.reloadConfig();
    assert.deepEqual(r, { added: ['initech'], removed: ['globex'], changed: ['acme'], policy_errors: [], restart_required: [] });

    // The same acme session, still bound, answered by the new version with the new limits and routing.
    assert.equal(acme.session.state, 'bound');
    assert.equal(await answer(acme), 'acme:nl2:40:-');
    // globex: its session was unbound, and its system_id binds no more.
    await globexGone;
    assert.equal(await refusedBind(s, 'globex-app'), STATUS.ESME_RINVSYSID);
    assert.deepEqual(s.gateway.tenantIds().sort(), ['acme', 'initech']);
    // initech: binds and is served.
    const initech = await boundEsme(s, 'initech-app');
    assert.equal(await answer(initech), 'initech:-:50:-');
    acme.close();
    initech.close();
  });

  it('a file that does not load is refused whole: the error names the key, nothing changes', async () => {
    const acme = await boundEsme(s, 'acme-app');
    const before = await answer(acme);
    writeFileSync(w.file, stringify({ server: { port: 0 }, tenants: [{ id: 'acme', system_ids: ['acme-app'], limits: { handler_timeout_ms: 'soon' } }, { id: 'new', system_ids: ['new-app'] }] }));
    await assert.rejects(s.reloadConfig(), (err: Error) => isSluiceError(err, 'SLUICE_ERR_CONFIG') && /handler_timeout_ms/.test(err.message));
    assert.deepEqual(s.gateway.tenantIds().sort(), ['acme', 'initech']);
    assert.equal(await answer(acme), before);
    assert.equal(await refusedBind(s, 'new-app'), STATUS.ESME_RINVSYSID);
    acme.close();
  });

  it('a system_id taken from a tenant unbinds the sessions bound with it; its other sessions stay', async () => {
    w.write([{ ...ACME, limits: { handler_timeout_ms: 40 }, routing: { rules: [{ prefix: '31', name: 'nl2', chain: ['reject'] }] } }, { id: 'initech', system_ids: ['initech-app'] }]);
    await s.reloadConfig();
    const kept = await boundEsme(s, 'acme-app');
    const dropped = await boundEsme(s, 'acme-old');
    const gone = closed(dropped);
    w.write([{ ...ACME, system_ids: ['acme-app'], limits: { handler_timeout_ms: 40 }, routing: { rules: [{ prefix: '31', name: 'nl2', chain: ['reject'] }] } }, { id: 'initech', system_ids: ['initech-app'] }]);
    assert.deepEqual((await s.reloadConfig()).changed, ['acme']);
    await gone;
    assert.equal(await answer(kept), 'acme:nl2:40:-');
    assert.equal(await refusedBind(s, 'acme-old'), STATUS.ESME_RINVSYSID);
    kept.close();
  });

  it('a changed policy that does not compile is reported at line:column; the old version keeps serving', async () => {
    const acme = await boundEsme(s, 'acme-app');
    const before = await answer(acme);
    w.write([{ ...ACME, system_ids: ['acme-app'], policy: path.join(w.dir, 'broken.ts'), limits: { handler_timeout_ms: 40 }, routing: { rules: [{ prefix: '31', name: 'nl2', chain: ['reject'] }] } }, { id: 'initech', system_ids: ['initech-app'] }]);
    const r = await s.reloadConfig();
    assert.deepEqual(r.changed, ['acme']);
    assert.equal(r.policy_errors.length, 1);
    assert.equal(r.policy_errors[0]!.tenant, 'acme');
    assert.equal(r.policy_errors[0]!.errors[0]!.file, 'broken.ts');
    // The missing ')' is found at the '}' of line 3.
    assert.deepEqual([r.policy_errors[0]!.errors[0]!.line, r.policy_errors[0]!.errors[0]!.column], [3, 1]);
    assert.equal(await answer(acme), before);
    acme.close();
  });

  it('listener, cache and sandbox changes wait for a restart and are reported; the tenants apply now', async () => {
    const port = s.port;
    w.write([{ ...ACME, system_ids: ['acme-app'] }, { id: 'initech', system_ids: ['initech-app'] }], { port: 1, window: 8 });
    const r = await s.reloadConfig();
    assert.deepEqual(r.restart_required, ['server.port', 'server.window']);
    assert.deepEqual(r.changed, ['acme']);
    const acme = await boundEsme(s, 'acme-app');
    assert.equal(s.port, port);
    assert.equal(await answer(acme), 'acme:nl:50:-');
    acme.close();
  });

  it('POST /v1/reload: the admin token only; 200 with what changed, 422 naming the key of a bad file', async () => {
    const base = `http://127.0.0.1:${s.adminPort}`;
    const post = (token: string): Promise<Response> => fetch(`${base}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    w.write([{ ...ACME, system_ids: ['acme-app'] }, { id: 'initech', system_ids: ['initech-app'] }, GLOBEX]);
    assert.equal((await post('acme-token')).status, 404, "a tenant's upload token cannot reload the config");
    assert.equal(s.gateway.tenantIds().includes('globex'), false);
    const ok = await post('root-token');
    assert.equal(ok.status, 200);
    // The file's server section is back to the one running: nothing waits for a restart.
    assert.deepEqual(await ok.json(), { added: ['globex'], removed: [], changed: [], policy_errors: [], restart_required: [] });
    writeFileSync(w.file, 'tenants: [ { id: acme, system_ids: [acme-app], limits: { memory_mb: -1 } } ]\n');
    const bad = await post('root-token');
    assert.equal(bad.status, 422);
    assert.match(((await bad.json()) as { error: string }).error, /memory_mb/);
    assert.deepEqual(s.gateway.tenantIds().sort(), ['acme', 'globex', 'initech']);
  });

  it('an outbound bind added by a reload binds; one whose settings change is rebound; a removed one is stopped', async () => {
    const sim = new SmscSimulator({ systemId: 'acme', password: 'pw' });
    const simPort = await sim.listen();
    const bind = { name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme', password: 'pw' };
    try {
      w.write([{ ...ACME, system_ids: ['acme-app'], binds: [bind] }]);
      await s.reloadConfig();
      for (let i = 0; i < 200 && s.gateway.binds('acme')[0]?.state !== 'bound'; i++) await sleep(10);
      assert.equal(s.gateway.binds('acme')[0]!.state, 'bound');
      const first = s.gateway.bind('acme', 'up');
      const acme = await boundEsme(s, 'acme-app');
      assert.equal(await answer(acme), 'acme:nl:50:up');

      w.write([{ ...ACME, system_ids: ['acme-app'], binds: [{ ...bind, window: 5 }] }]);
      await s.reloadConfig();
      const second = s.gateway.bind('acme', 'up');
      assert.notEqual(second, first, 'a new bind with the new settings');
      assert.equal(first!.state, 'stopped');
      for (let i = 0; i < 200 && second!.state !== 'bound'; i++) await sleep(10);
      assert.equal(second!.state, 'bound');

      // A bind that never binds (nothing listens there) is in the policy's view at once, and leaves it with the reload that removes it.
      const dead = { name: 'dead', host: '127.0.0.1', port: await freePort(), system_id: 'acme', password: 'pw' };
      w.write([{ ...ACME, system_ids: ['acme-app'], binds: [{ ...bind, window: 5 }, dead] }]);
      await s.reloadConfig();
      assert.equal(await bindsSeen(acme), 'up,dead');

      w.write([{ ...ACME, system_ids: ['acme-app'] }]);
      await s.reloadConfig();
      assert.deepEqual(s.gateway.binds('acme'), []);
      assert.equal(await bindsSeen(acme), '-');
      assert.equal(second!.state, 'stopped');
      assert.equal(await answer(acme), 'acme:nl:50:-');
      acme.close();
    } finally {
      await sim.close();
    }
  });
});

describe('config reload and a quarantined tenant', () => {
  it('a new config for it (more memory) starts a fresh version and lifts the quarantine, as an upload does; a reload that leaves it unchanged does not', async () => {
    const w = world();
    w.write([ACME]);
    await withSluice(w, {}, async (s, clients) => {
      const c = await boundEsme(s, 'acme-app');
      clients.push(c);
      // Three sandbox crashes charged to acme quarantine it (the crash path's own bookkeeping; hostile-crash.test.ts crashes for real).
      const pool = s.sandbox as unknown as { penalise(tenant: string, why: string): void };
      for (let i = 0; i < 3; i++) pool.penalise('acme', 'test');
      assert.equal(s.sandbox.tenantState('acme')!.quarantined, true);
      assert.equal((await c.submit({ short_message: Buffer.from('hi') })).command_status, STATUS.ESME_RSYSERR);

      w.write([ACME]);
      assert.deepEqual((await s.reloadConfig()).changed, []);
      assert.equal(s.sandbox.tenantState('acme')!.quarantined, true, 'nothing changed for it: still quarantined');

      w.write([{ ...ACME, limits: { memory_mb: 96 } }]);
      const r = await s.reloadConfig();
      assert.deepEqual([r.changed, r.policy_errors], [['acme'], []]);
      assert.equal(s.sandbox.tenantState('acme')!.quarantined, false);
      assert.equal(await answer(c), 'acme:nl:50:-');
    });
  });
});

describe('config reload with the policy watcher on', () => {
  it("a tenant added by a reload has its policy file watched: editing it reloads the policy", async () => {
    const w = world();
    const own = path.join(w.dir, 'initech.ts');
    writeFileSync(own, "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'v1' }));\n");
    w.write([GLOBEX]);
    await withSluice(w, { watch: true }, async (s, clients) => {
      w.write([GLOBEX, { id: 'initech', policy: own, system_ids: ['initech-app'] }]);
      assert.deepEqual((await s.reloadConfig()).added, ['initech']);
      const c = await boundEsme(s, 'initech-app');
      clients.push(c);
      assert.equal(await answer(c), 'v1');
      writeFileSync(own, "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'v2' }));\n");
      let seen = 'v1';
      for (let i = 0; i < 200 && seen !== 'v2'; i++) {
        await sleep(10);
        seen = await answer(c);
      }
      assert.equal(seen, 'v2');
    });
  });
});

describe('config reload without a config file', () => {
  it('is refused with a clear error', async () => {
    const w = world();
    w.write([GLOBEX]);
    await withSluice(w, { configFile: false }, async (s) => {
      await assert.rejects(s.reloadConfig(), /started without a config file/);
    });
  });
});

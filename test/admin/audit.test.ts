/**
 * Operators read the log: every admin action says who did it (never the
 * token), what and how it ended, refused ones included; every line says
 * which host and replica wrote it.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { recordingLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { freePort, sandboxedSetup } from '../helpers/harness';

const POLICY = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'x' }));\n";

describe('admin audit lines, host and replica on every line', () => {
  let s: Sluice;
  let base: string;
  const rec = recordingLogger('info');
  before(async () => {
    const x = sandboxedSetup(
      { acme: POLICY },
      {
        admin: { listen: '127.0.0.1:0', token: 'root-token' },
        tenants: [{ id: 'acme', policy: 'acme.ts', system_ids: ['acme'], upload_token: 'acme-token', binds: [{ name: 'up', host: '127.0.0.1', port: await freePort(), system_id: 'acme', password: 'pw' }] }],
      },
    );
    s = await startSluice({ config: x.config, logger: rec.logger, cwd: x.dir, watch: false, admin: true, replica: 'replica-a' });
    base = `http://127.0.0.1:${s.adminPort}`;
  });
  after(() => s?.stop());

  const call = (method: string, path: string, token?: string): Promise<Response> =>
    fetch(base + path, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const audits = (): Record<string, unknown>[] => rec.lines().filter((l) => l.audit === true);

  it('who, what and the status of each action; refusals at warn; the token never', async () => {
    assert.equal((await call('POST', '/v1/tenants/acme/binds/up/stop', 'root-token')).status, 200);
    assert.equal((await call('POST', '/v1/reload')).status, 401);
    assert.equal((await call('POST', '/v1/reload', 'wrong-token')).status, 401);
    assert.equal((await call('POST', '/v1/tenants/acme/binds/up/start', 'acme-token')).status, 404);
    assert.equal((await call('GET', '/v1/tenants', 'root-token')).status, 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      audits().map((l) => [l.msg, l.who, l.action, l.status, l.level]),
      [
        ['admin action', 'admin', 'POST /v1/tenants/acme/binds/up/stop', 200, 30],
        ['admin action refused', 'none', 'POST /v1/reload', 401, 40],
        ['admin action refused', 'none', 'POST /v1/reload', 401, 40],
        ['admin action refused', 'tenant:acme', 'POST /v1/tenants/acme/binds/up/start', 404, 40],
      ],
      'a GET is not an action',
    );
    const text = JSON.stringify(rec.lines());
    for (const secret of ['root-token', 'acme-token', 'wrong-token']) assert.ok(!text.includes(secret), `${secret} is never logged`);
  });

  it('every line names its host and replica', () => {
    const lines = rec.lines();
    assert.ok(lines.length > 5);
    for (const l of lines) {
      assert.equal(l.host, hostname(), JSON.stringify(l));
      assert.equal(l.replica, 'replica-a', JSON.stringify(l));
    }
  });
});

/**
 * The commands that call the admin API — push and unpin — as real `sluice`
 * processes against a real `sluice start` (its admin API on port 0): the
 * token they read, and what they say when the gateway cannot be reached or
 * refuses the token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/harness';
import { runSluice, SluiceProcess, type CliRun } from '../helpers/sluice-process';

const answer = (id: string): string => `smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: '${id}' }));\n`;

describe('sluice push and unpin against a running gateway', () => {
  let dir: string;
  let gw: SluiceProcess;
  let admin: string;
  const file = (name: string, source: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, source);
    return p;
  };
  /** `sluice <args> --admin <the gateway>`, with SLUICE_ADMIN_TOKEN=root unless `env` says otherwise. */
  const sluice = (args: string[], env: Record<string, string | undefined> = { SLUICE_ADMIN_TOKEN: 'root' }): Promise<CliRun> => runSluice([...args, '--admin', admin], { env, cwd: dir });

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-admin-'));
    file('acme.ts', answer('acme-file'));
    file('globex.ts', answer('globex-file'));
    // globex has an outbound bind to a port nothing listens on: it shows in a state that is not bound.
    const upstream = await freePort();
    const config = file(
      'sluice.yaml',
      [
        'server: { bind_address: 127.0.0.1, port: 0 }',
        'cache: { url: "memory://" }',
        'sandbox: { processes: 1 }',
        'admin: { listen: "127.0.0.1:0", token: root }',
        'tenants:',
        '  - { id: acme, policy: acme.ts, system_ids: [acme-app], upload_token: acme-token }',
        `  - { id: globex, policy: globex.ts, system_ids: [globex-app], binds: [{ name: upstream, host: 127.0.0.1, port: ${upstream}, system_id: g, password: g }] }`,
      ].join('\n'),
    );
    gw = SluiceProcess.start(config, dir);
    const started = await gw.logged('sluice started', 0, () => true, 30_000);
    admin = `http://127.0.0.1:${String(started.adminPort)}`;
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SLUICE_ADMIN_TOKEN is the token of every admin command; --token wins over it; SLUICE_TOKEN still works, with a deprecation warning', { timeout: 60_000 }, async () => {
    const good = file('good.ts', answer('acme-2'));
    const ok = await sluice(['push', 'acme', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^acme: version \d+ active\n$/);
    assert.equal(ok.stderr, '');
    const old = await sluice(['push', 'acme', good], { SLUICE_TOKEN: 'root' });
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stdout, /^acme: version \d+ active\n$/);
    assert.match(old.stderr, /^sluice push: SLUICE_TOKEN is deprecated and will stop being read: set SLUICE_ADMIN_TOKEN/);
    const both = await sluice(['push', 'acme', good], { SLUICE_ADMIN_TOKEN: 'root', SLUICE_TOKEN: 'stale' });
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stderr, '', 'SLUICE_TOKEN is not read while SLUICE_ADMIN_TOKEN is set');
    const flag = await sluice(['unpin', 'acme', '--token', 'wrong']);
    assert.equal(flag.code, 1, '--token wins over SLUICE_ADMIN_TOKEN');
    assert.match(flag.stderr, /refused the token \(401\)/);
    for (const args of [['push', 'acme', good], ['unpin', 'acme']]) {
      const r = await sluice(args, {});
      assert.equal(r.code, 1, args[0]);
      assert.equal(r.stderr, `sluice ${args[0]}: a token is needed: set SLUICE_ADMIN_TOKEN or pass --token (admin.token of the gateway's config, or the tenant's upload_token)\n`);
    }
  });

  it('unpin: the file serves again; an upload token is told unpin needs the admin token', async () => {
    const refused = await sluice(['unpin', 'acme'], { SLUICE_ADMIN_TOKEN: 'acme-token' });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /unpin needs admin\.token, not a tenant's upload_token/);
    const r = await sluice(['unpin', 'acme']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^acme: unpinned; its policy file serves \(hash [0-9a-f]{12}\)\n$/);
  });

  it('a wrong token, and an admin API nobody listens on, are said plainly, exit 1', async () => {
    const wrong = await sluice(['unpin', 'acme'], { SLUICE_ADMIN_TOKEN: 'nope' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^sluice unpin: the admin API at http:\/\/127\.0\.0\.1:\d+ refused the token \(401\): use admin\.token/);
    const port = await freePort();
    const down = await runSluice(['unpin', 'acme', '--admin', `127.0.0.1:${port}`], { env: { SLUICE_ADMIN_TOKEN: 'root' } });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `sluice unpin: cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED): is \`sluice start\` running there? --admin sets the address (admin.listen of its config)\n`);
  });
});

/**
 * The commands that call the admin API — push, unpin, status, versions,
 * rollback — as real `sluice` processes against a real `sluice start`
 * (its admin API on port 0): the token they read, push's type check, the
 * tables they print, and what they say when the gateway cannot be reached,
 * refuses the token or has no such tenant.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIND_STATES } from '../../src/binds/outbound-bind';
import { freePort } from '../helpers/harness';
import { runSluice, SluiceProcess, type CliRun } from '../helpers/sluice-process';

const answer = (id: string): string => `smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: '${id}' }));\n`;
/** Compiles (the gateway serves it), but `sluice check` rejects it: message_id is a string. */
const TYPE_ERROR = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 42 }));\n";

describe('sluice push, unpin, status, versions, rollback against a running gateway', () => {
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
  const api = async (p: string): Promise<any> => (await fetch(`${admin}${p}`, { headers: { authorization: 'Bearer root' } })).json();

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
    for (const args of [['push', 'acme', good], ['unpin', 'acme'], ['status'], ['versions', 'acme'], ['rollback', 'acme']]) {
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
    const down = await runSluice(['status', '--admin', `127.0.0.1:${port}`], { env: { SLUICE_ADMIN_TOKEN: 'root' } });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `sluice status: cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED): is \`sluice start\` running there? --admin sets the address (admin.listen of its config)\n`);
  });

  it('status: a table of every tenant (state, policy, sessions, queue, errors, throttled, binds with their state); --json the API\'s JSON', async () => {
    const r = await sluice(['status']);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    assert.match(header!, /^TENANT +STATE +POLICY +SESSIONS +QUEUE +ERRORS +THROTTLED +BINDS$/);
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /^acme +\w+ +file +0 +0 +0 +0 +-$/);
    assert.match(rows[1]!, new RegExp(`^globex +\\w+ +file +0 +0 +0 +0 +upstream (${BIND_STATES.join('|')})$`));
    const json = await sluice(['status', '--json']);
    const parsed = JSON.parse(json.stdout) as { id: string; binds: { name: string }[] }[];
    assert.deepEqual(parsed.map((t) => t.id), ['acme', 'globex']);
    assert.equal(parsed[1]!.binds[0]!.name, 'upstream');
    // An upload token sees its own tenant only.
    const own = await sluice(['status'], { SLUICE_ADMIN_TOKEN: 'acme-token' });
    assert.equal(own.stdout.trimEnd().split('\n').length, 2);
  });

  it('status <tenant>: everything the gateway says of it, a line per part; --json the API\'s JSON; an unknown tenant exits 1 naming it', async () => {
    const r = await sluice(['status', 'globex']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^globex: \w+; its policy file serves \(sha256 [0-9a-f]{12}\)\n/);
    assert.match(r.stdout, /\n {2}counts +pdus \d+, errors \d+, deadlines \d+, throttled \d+, /);
    assert.match(r.stdout, new RegExp(`\\n  binds +upstream (${BIND_STATES.join('|')}) \\(127\\.0\\.0\\.1:\\d+\\)\\n`));
    assert.match(r.stdout, /\n {2}queue +empty\n/);
    const json = JSON.parse((await sluice(['status', 'globex', '--json'])).stdout) as { id: string; counts: Record<string, number> };
    assert.equal(json.id, 'globex');
    assert.equal(typeof json.counts.errors, 'number');
    const none = await sluice(['status', 'initech']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^sluice status: no tenant "initech" at http:\/\/127\.0\.0\.1:\d+ \(or the token is another tenant's upload_token\)\n$/);
    const other = await sluice(['status', 'globex'], { SLUICE_ADMIN_TOKEN: 'acme-token' });
    assert.equal(other.code, 1);
    assert.match(other.stderr, /no tenant "globex"/);
  });

  it('versions lists what is kept and which serves; rollback serves the one before, or the one named; an unknown version exits 1 saying so', { timeout: 60_000 }, async () => {
    const empty = await sluice(['versions', 'globex']);
    assert.equal(empty.stdout, 'globex: its policy file serves, not pinned\nno versions kept (nothing uploaded yet)\n');
    for (const id of ['g-2', 'g-3']) assert.equal((await sluice(['push', 'globex', file(`${id}.ts`, answer(id))])).code, 0);
    const v = await sluice(['versions', 'globex']);
    assert.equal(v.code, 0, v.stderr);
    const lines = v.stdout.trimEnd().split('\n');
    const current = (await api('/v1/tenants/globex')).version as number;
    assert.equal(lines[0], `globex: version ${current} serves, pinned (over the policy file, until \`sluice unpin\`)`);
    assert.match(lines[1]!, /^ +VERSION +AT \(UTC\) +BY +BYTES +SHA256$/);
    // The file version the first upload replaced, then the two uploads, the last serving.
    assert.equal(lines.length, 5);
    assert.match(lines[2]!, /^ +\d+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +file +\d+ +[0-9a-f]{12}$/);
    assert.match(lines[4]!, new RegExp(`^\\* +${current} +\\S+ \\S+ +admin +\\d+ +[0-9a-f]{12}$`));
    const first = Number(/^ +(\d+) /.exec(lines[2]!)![1]);
    const previous = Number(/^ +(\d+) /.exec(lines[3]!)![1]);

    const back = await sluice(['rollback', 'globex']);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, new RegExp(`^globex: version \\d+ active \\(rollback of ${previous}\\)\\n$`));
    const named = await sluice(['rollback', 'globex', String(first)]);
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, new RegExp(`^globex: version \\d+ active \\(rollback of ${first}\\)\\n$`));
    const json = JSON.parse((await sluice(['versions', 'globex', '--json'])).stdout) as { current: number; versions: { version: number; rollback_of?: number }[] };
    assert.equal(json.versions.at(-1)!.rollback_of, first);
    assert.equal(json.current, json.versions.at(-1)!.version);

    const missing = await sluice(['rollback', 'globex', '999']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'sluice rollback: no version 999 is kept (`sluice versions globex` lists what is kept)\n');
    const nobody = await sluice(['versions', 'initech']);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /no tenant "initech"/);
  });

  it('push type-checks as check does: the same errors at line:column, exit 1, nothing uploaded; --no-check uploads it', { timeout: 60_000 }, async () => {
    const bad = file('bad.ts', TYPE_ERROR);
    const before = await api('/v1/tenants/acme/policy/versions');
    const checked = await runSluice(['check', bad]);
    assert.equal(checked.code, 1);
    assert.match(checked.stdout, /bad\.ts:2:\d+ - error TS2322: /);
    const pushed = await sluice(['push', 'acme', bad]);
    assert.equal(pushed.code, 1);
    assert.equal(pushed.stdout, checked.stdout, 'the same diagnostics as sluice check');
    assert.match(pushed.stderr, /^sluice push: .*bad\.ts: 1 error; nothing uploaded \(--no-check uploads without the type check\)\n$/);
    assert.deepEqual(await api('/v1/tenants/acme/policy/versions'), before, 'nothing uploaded');
    const unchecked = await sluice(['push', 'acme', bad, '--no-check']);
    assert.equal(unchecked.code, 0, unchecked.stderr);
    assert.match(unchecked.stdout, /^acme: version \d+ active\n$/);
    assert.equal((await api('/v1/tenants/acme')).pinned, true);
  });

  it('push: what the gateway refuses to compile comes back at line:column, exit 1', async () => {
    const broken = file('broken.ts', 'smpp.onBind((b) => b.accept(;\n');
    const r = await sluice(['push', 'acme', broken, '--no-check']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /broken\.ts:1:\d+ - error TS1005: '\)' expected\./);
  });
});

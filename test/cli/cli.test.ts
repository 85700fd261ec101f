import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EsmeClient } from '../../src/tools/esme-client';
import { ESME_RALYBND } from '../../src/wire/status';
import { freePort } from '../helpers/harness';
import { SluiceProcess } from '../helpers/sluice-process';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/sluice.js');

function sluice(args: string[], cwd = ROOT): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}


describe('sluice CLI', () => {
  it('start on a port that is taken exits non-zero, saying so, with its sandbox processes stopped (regression: it ran on with no listener)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    writeFileSync(path.join(dir, 'p.ts'), "smpp.onBind((b) => b.accept());\n");
    writeFileSync(path.join(dir, 'c.yaml'), `server: { bind_address: 127.0.0.1, port: ${port} }\ncache: { url: "memory://" }\nsandbox: { processes: 1 }\nadmin: { listen: "127.0.0.1:0" }\ntenants: [{ id: a, policy: p.ts, system_ids: [a] }]\n`);
    try {
      const r = sluice(['start', '-c', path.join(dir, 'c.yaml')], dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /could not start: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it('start with a bad config names the file and key, exits non-zero, and opens no port', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
    const port = await freePort();
    writeFileSync(path.join(dir, 'bad.yaml'), `server:\n  port: ${port}\n  throttle_action: drop\ntenants: []\n`);
    const r = sluice(['start', '-c', path.join(dir, 'bad.yaml')], dir);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml: server\.throttle_action: .*pace.*reject/);
    const probe = net.connect({ host: '127.0.0.1', port });
    const refused = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(true));
      probe.once('connect', () => resolve(false));
    });
    probe.destroy();
    assert.equal(refused, true, 'nothing listens on the configured port');
  });

  it("start -c /abs/config.yaml from another directory: the SQLite journal is created next to the config, not in the working directory, and the policy there loads", { timeout: 60_000 }, async () => {
    const confDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-conf-'));
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-cwd-'));
    mkdirSync(path.join(confDir, 'policies'));
    writeFileSync(path.join(confDir, 'policies/p.ts'), "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'from-p.ts' }));\n");
    const file = path.join(confDir, 'sluice.yaml');
    writeFileSync(
      file,
      [
        'server: { bind_address: 127.0.0.1, port: 0 }',
        'cache: { url: "sqlite://data/journal.sqlite" }',
        'sandbox: { processes: 1 }',
        'admin: { listen: "127.0.0.1:0" }',
        'tenants: [{ id: a, policy: policies/p.ts, system_ids: [a-app] }]',
      ].join('\n'),
    );
    const p = SluiceProcess.start(file, elsewhere);
    try {
      const started = await p.logged('sluice started', 0, () => true, 20_000);
      const journal = path.join(confDir, 'data/journal.sqlite');
      assert.equal(started.store, `sqlite://${journal}`, 'the start-up line names the journal by its absolute path');
      assert.ok(existsSync(journal));
      assert.deepEqual(readdirSync(elsewhere), [], 'nothing in the working directory');
      const esme = await EsmeClient.connect({ port: Number(started.port) });
      assert.equal((await esme.bind('a-app', 'pw')).command_status, 0);
      const r = await esme.submit({ destination_addr: '31612345678', short_message: Buffer.from('hi') });
      assert.equal(r.command_status, 0);
      assert.equal(r.fields.message_id, 'from-p.ts');
      esme.close();
      await p.stop();
      assert.equal(p.child.exitCode, 0);
    } finally {
      await p.stop();
      for (const d of [confDir, elsewhere]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('check: a clean policy exits 0; a type error is reported at line:column and exits 1', () => {
    const ok = sluice(['check', 'policies/echo.ts']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
    const bad = path.join(dir, 'bad.ts');
    writeFileSync(bad, "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 42 }));\n");
    const r = sluice(['check', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /bad\.ts:2:\d+ - error TS\d+: /);
  });

  it('start: SIGHUP re-reads the config file (a tenant added), and a bad file sent by SIGHUP is refused and logged', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-hup-'));
    writeFileSync(path.join(dir, 'p.ts'), 'smpp.onBind((b) => b.accept());\n');
    const file = path.join(dir, 'sluice.yaml');
    const config = (ids: string[]): string =>
      [
        'server: { bind_address: 127.0.0.1, port: 0 }',
        'cache: { url: "memory://" }',
        'sandbox: { processes: 1 }',
        'admin: { listen: "127.0.0.1:0", token: root }',
        'tenants:',
        ...ids.map((id) => `  - { id: ${id}, policy: p.ts, system_ids: [${id}-app] }`),
      ].join('\n');
    writeFileSync(file, config(['acme']));
    const p = SluiceProcess.start(file, dir);
    try {
      const started = await p.logged('sluice started');
      const tenants = async (): Promise<string[]> => {
        const r = await fetch(`http://127.0.0.1:${String(started.adminPort)}/v1/tenants`, { headers: { authorization: 'Bearer root' } });
        return ((await r.json()) as { id: string }[]).map((t) => t.id).sort();
      };
      assert.deepEqual(await tenants(), ['acme']);
      writeFileSync(file, config(['acme', 'initech']));
      let mark = p.lines.length;
      p.child.kill('SIGHUP');
      const reloaded = await p.logged('config reloaded', mark);
      assert.deepEqual(reloaded.added, ['initech']);
      assert.deepEqual(await tenants(), ['acme', 'initech']);
      writeFileSync(file, 'tenants: 3\n');
      mark = p.lines.length;
      p.child.kill('SIGHUP');
      const refused = await p.logged('config reload refused; the running config stays', mark);
      assert.match(String(refused.err), /tenants/);
      assert.deepEqual(await tenants(), ['acme', 'initech']);
    } finally {
      await p.stop();
    }
  });

  it('sim --one-bind refuses a second bind of a bound system_id with ESME_RALYBND, and takes it again once the first unbinds', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'sim', '--port', '0', '--one-bind'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on [\d.]+:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`sim exited with ${code}: ${out}`)));
      });
      const first = await EsmeClient.connect({ port });
      const second = await EsmeClient.connect({ port });
      assert.equal((await first.bind('acme', 'pw')).command_status, 0);
      assert.equal((await second.bind('acme', 'pw')).command_status, ESME_RALYBND);
      assert.equal((await second.bind('globex', 'pw')).command_status, 0, 'another system_id binds');
      await first.unbind();
      const third = await EsmeClient.connect({ port });
      assert.equal((await third.bind('acme', 'pw')).command_status, 0);
      second.close();
      third.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('an unknown command prints the usage and exits 1', () => {
    const r = sluice(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /usage: sluice/);
  });
});

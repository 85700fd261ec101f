import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/harness';
import { SluiceProcess } from '../helpers/sluice-process';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/sluice.js');

function sluice(args: string[], cwd = ROOT): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}


describe('sluice CLI', () => {
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

  it('an unknown command prints the usage and exits 1', () => {
    const r = sluice(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /usage: sluice/);
  });
});

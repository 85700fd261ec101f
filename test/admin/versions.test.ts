/**
 * Uploaded policy versions are durable and shared: kept in the store (a
 * real SQLite file, a real redis-server), served again after a restart,
 * followed by a second replica, pinned over the tenant's file until a
 * config reload after the file changed or an explicit unpin; listed, and
 * rolled back to any version kept. Real sandbox processes, the admin API
 * over real TCP, and an ESME whose submit_sm_resp says which policy
 * answered.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { POLICY_HISTORY } from '../../src/cache';
import { loadConfig } from '../../src/config/load';
import { recordingLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { sleep, until } from '../helpers/harness';
import { redisForThisFile, redisSkip } from '../helpers/redis';

/** A policy that answers every submit_sm with `name` as its message_id. */
const policy = (name: string): string => `smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: '${name}' }));\n`;
const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

const redis = redisForThisFile();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-versions-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A directory with acme's and globex's policy files and a config file over `url`. */
function world(url: string): { dir: string; file: string; writePolicy: (tenant: string, source: string) => void } {
  const dir = mkdtempSync(path.join(tmp, 'w-'));
  const writePolicy = (tenant: string, source: string): void => writeFileSync(path.join(dir, `${tenant}.ts`), source);
  writePolicy('acme', policy('file-1'));
  writePolicy('globex', policy('globex-file'));
  const file = path.join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      server: { bind_address: '127.0.0.1', port: 0 },
      cache: { url },
      sandbox: { processes: 1 },
      admin: { listen: '127.0.0.1:0', token: 'root-token' },
      tenants: [
        { id: 'acme', policy: 'acme.ts', system_ids: ['acme-app'], upload_token: 'acme-token' },
        { id: 'globex', policy: 'globex.ts', system_ids: ['globex-app'], upload_token: 'globex-token' },
      ],
    }),
  );
  return { dir, file, writePolicy };
}

const sqliteUrl = (): string => `sqlite://${path.join(tmp, `store-${++n}.sqlite`)}`;

/** One running replica: its admin calls, what its acme policy answers, and its log lines. */
interface Replica {
  s: Sluice;
  call(method: string, p: string, token?: string, body?: string): Promise<{ status: number; json: any }>;
  answer(): Promise<string>;
  logs(): Record<string, unknown>[];
  stop(): Promise<void>;
}

async function replica(w: ReturnType<typeof world>, o: { watch?: boolean } = {}): Promise<Replica> {
  const rec = recordingLogger('info');
  const s = await startSluice({ config: loadConfig(w.file, {}), configFile: w.file, env: {}, logger: rec.logger, cwd: w.dir, watch: o.watch ?? false, admin: true });
  const base = `http://127.0.0.1:${s.adminPort}`;
  let esme: EsmeClient | undefined;
  return {
    s,
    async call(method, p, token = 'root-token', body) {
      const r = await fetch(base + p, { method, headers: { authorization: `Bearer ${token}` }, body });
      return { status: r.status, json: await r.json() };
    },
    async answer() {
      if (!esme) {
        esme = await EsmeClient.connect({ port: s.port });
        assert.equal((await esme.bind('acme-app', 'x')).command_status, 0);
      }
      const r = await esme.submit({ short_message: Buffer.from('x') });
      assert.equal(r.command_status, 0);
      return String(r.fields.message_id);
    },
    logs: rec.lines,
    async stop() {
      esme?.close();
      await s.stop();
    },
  };
}

/** What the tenant view says serves acme: the uploaded version (null: the file), the hash of its source, whether it is pinned. */
async function view(r: Replica): Promise<{ version: number | null; hash: string | null; pinned: boolean }> {
  const { version, hash, pinned } = (await r.call('GET', '/v1/tenants/acme')).json;
  return { version, hash, pinned };
}
const messages = (r: Replica, re: RegExp): string[] => r.logs().map((l) => String(l.msg)).filter((m) => re.test(m));
/** acme's policy file as the log names it: absolute, resolved against the config file's directory. */
const acmeFile = (w: ReturnType<typeof world>): string => path.join(w.dir, 'acme.ts');
/** `s` matched literally in a RegExp. */
const literally = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('policy versions: durable', () => {
  it('an upload serves again after a restart on the same SQLite file, said so in the log; the numbers go on; a changed file does not unpin at a restart', { timeout: 60_000 }, async () => {
    const w = world(sqliteUrl());
    const a = await replica(w);
    try {
      assert.equal(await a.answer(), 'file-1');
      assert.deepEqual(await view(a), { version: null, hash: sha(policy('file-1')), pinned: false });
      const up = await a.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-1'));
      assert.equal(up.status, 200);
      // Version 1 is the file it replaced, kept so that a rollback can go back to it.
      assert.deepEqual(up.json, { version: 2, hash: sha(policy('up-1')) });
      assert.equal(await a.answer(), 'up-1');
    } finally {
      await a.stop();
    }

    const b = await replica(w);
    try {
      assert.equal(await b.answer(), 'up-1');
      assert.deepEqual(await view(b), { version: 2, hash: sha(policy('up-1')), pinned: true });
      assert.deepEqual(messages(b, /^policy: serving uploaded version/), [`policy: serving uploaded version 2 (hash ${sha(policy('up-1')).slice(0, 12)}) pinned over file ${acmeFile(w)}`]);
      const next = await b.call('PUT', '/v1/tenants/acme/policy', 'root-token', policy('up-2'));
      assert.equal(next.json.version, 3);
      assert.equal(await b.answer(), 'up-2');
      const list = (await b.call('GET', '/v1/tenants/acme/policy/versions')).json;
      assert.deepEqual(list.versions.map((x: any) => [x.version, x.uploader, x.current]), [[1, 'file', false], [2, 'tenant', false], [3, 'admin', true]]);
      // globex never uploaded: its file serves, unpinned.
      assert.deepEqual((await b.call('GET', '/v1/tenants/globex/policy/versions')).json, { pinned: false, current: null, versions: [] });
    } finally {
      await b.stop();
    }

    // A restart never releases a pin, not even over a changed file: it says so instead.
    w.writePolicy('acme', policy('file-2'));
    const c = await replica(w);
    try {
      assert.equal(await c.answer(), 'up-2');
      assert.deepEqual(messages(c, /^policy file changed/), ['policy file changed but tenant is pinned to uploaded version 3; POST /v1/reload or `sluice unpin acme` to unpin']);
    } finally {
      await c.stop();
    }
  });
});

for (const [name, url, skip] of [
  ['one SQLite file', sqliteUrl, false],
  ['a real redis-server', () => redis.url, redisSkip],
] as const) {
  describe(`policy versions: two replicas on ${name}`, { skip, timeout: 60_000 }, () => {
    it('an upload, a rollback and an unpin on one replica serve on the other within a poll', async () => {
      const u = url();
      const w1 = world(u);
      const r1 = await replica(w1);
      const r2 = await replica(world(u));
      try {
        const up = await r1.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('pushed'));
        assert.equal(up.status, 200);
        const t0 = Date.now();
        await untilAsync(async () => (await r2.answer()) === 'pushed', 8000, 'r2 serves the push');
        const took = Date.now() - t0;
        assert.deepEqual(await view(r2), { version: 2, hash: sha(policy('pushed')), pinned: true });
        assert.ok(took < 5000, `followed after ${took} ms`);
        assert.equal(messages(r2, /^policy: serving version 2 \(hash [0-9a-f]{12}\) from the store, pinned on another replica$/).length, 1);

        const rb = await r2.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token');
        assert.equal(rb.status, 200);
        assert.deepEqual(rb.json, { version: 3, hash: sha(policy('file-1')), rollback_of: 1 });
        await untilAsync(async () => (await r1.answer()) === 'file-1', 8000, 'r1 serves the rollback');
        assert.equal((await view(r1)).version, rb.json.version);

        assert.equal((await r2.call('DELETE', '/v1/tenants/acme/policy/pin')).status, 200);
        await untilAsync(async () => !(await view(r1)).pinned, 8000, 'r1 unpinned');
        assert.equal(await r1.answer(), 'file-1');
        assert.equal(messages(r1, new RegExp(`^policy: unpinned on another replica: the file ${literally(acmeFile(w1))} serves again$`)).length, 1);
      } finally {
        await r1.stop();
        await r2.stop();
      }
    });
  });
}

/** `until` for a condition that must be awaited. */
async function untilAsync(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} (after ${ms} ms)`);
    await sleep(50);
  }
}

describe('policy versions: the file and the pin', { timeout: 60_000 }, () => {
  it('a file changed while pinned is not loaded and is warned about once per change; a reload after the change unpins, a reload without one does not', async () => {
    const w = world(sqliteUrl());
    const r = await replica(w, { watch: true });
    try {
      assert.equal((await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-1'))).status, 200);
      // The file as it was when the pin was taken: a reload keeps the pin.
      assert.deepEqual((await r.call('POST', '/v1/reload')).json.policy_errors, []);
      assert.equal(await r.answer(), 'up-1');

      const warned = (): string[] => messages(r, /^policy file changed but tenant is pinned/);
      w.writePolicy('acme', policy('file-2'));
      await until(() => warned().length === 1, 5000, 'warned');
      assert.equal(warned()[0], 'policy file changed but tenant is pinned to uploaded version 2; POST /v1/reload or `sluice unpin acme` to unpin');
      // Written again with the same text: no new change, no new warning; the upload still serves.
      w.writePolicy('acme', policy('file-2'));
      await sleep(300);
      assert.equal(warned().length, 1);
      assert.equal(await r.answer(), 'up-1');
      w.writePolicy('acme', policy('file-3'));
      await until(() => warned().length === 2, 5000, 'warned about the second change');
      assert.equal(await r.answer(), 'up-1');

      const reload = await r.call('POST', '/v1/reload');
      assert.equal(reload.status, 200);
      assert.deepEqual(reload.json.policy_errors, []);
      assert.equal(await r.answer(), 'file-3');
      assert.deepEqual(await view(r), { version: null, hash: sha(policy('file-3')), pinned: false });
      assert.equal(messages(r, new RegExp(`^policy: unpinned by a config reload \\(the file changed since the pin\\): the file ${literally(acmeFile(w))} serves again`)).length, 1);
      // Unpinned, the file is followed again.
      w.writePolicy('acme', policy('file-4'));
      await untilAsync(async () => (await r.answer()) === 'file-4', 5000, 'the file reloads');
    } finally {
      await r.stop();
    }
  });

  it('a reload after the file changed to one that does not compile keeps the pin and reports the errors', async () => {
    const w = world(sqliteUrl());
    const r = await replica(w);
    try {
      await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-1'));
      w.writePolicy('acme', "smpp.onPdu('submit_sm', (pdu) => {\n  return pdu.reply({ message_id: 'x' ;\n});\n");
      const reload = await r.call('POST', '/v1/reload');
      assert.equal(reload.json.policy_errors.length, 1);
      assert.equal(reload.json.policy_errors[0].tenant, 'acme');
      assert.equal(reload.json.policy_errors[0].errors[0].line, 2);
      assert.equal(await r.answer(), 'up-1');
      assert.equal((await view(r)).pinned, true);
    } finally {
      await r.stop();
    }
  });

  it('DELETE …/policy/pin (admin token only) gives the tenant its file back; once; the next upload keeps the file version again', async () => {
    const w = world(sqliteUrl());
    const r = await replica(w);
    try {
      await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-1'));
      assert.equal((await r.call('DELETE', '/v1/tenants/acme/policy/pin', 'acme-token')).status, 404);
      const del = await r.call('DELETE', '/v1/tenants/acme/policy/pin');
      assert.deepEqual(del, { status: 200, json: { pinned: false, hash: sha(policy('file-1')) } });
      assert.equal(await r.answer(), 'file-1');
      assert.equal(messages(r, new RegExp(`^policy: unpinned through the admin API: the file ${literally(acmeFile(w))} serves again`)).length, 1);
      assert.deepEqual(await r.call('DELETE', '/v1/tenants/acme/policy/pin'), { status: 409, json: { error: 'not pinned: the file serves' } });
      // Unpinned, a rollback must say which version.
      assert.equal((await r.call('POST', '/v1/tenants/acme/policy/rollback')).status, 409);
      w.writePolicy('acme', policy('file-2'));
      await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-2'));
      // The new pin keeps the file version it replaced again: the one serving (file-1), not the file on disk (file-2, not watched here).
      const list = (await r.call('GET', '/v1/tenants/acme/policy/versions', 'acme-token')).json;
      assert.deepEqual(list.versions.map((x: any) => [x.version, x.uploader, x.hash]), [[1, 'file', sha(policy('file-1'))], [2, 'tenant', sha(policy('up-1'))], [3, 'file', sha(policy('file-1'))], [4, 'tenant', sha(policy('up-2'))]]);
    } finally {
      await r.stop();
    }
  });
});

describe('policy versions: the list and rollbacks', { timeout: 60_000 }, () => {
  let r: Replica;
  before(async () => {
    r = await replica(world(sqliteUrl()));
  });
  after(() => r.stop());

  it('lists number, hash, time (ISO and ms), uploader, which is current and the size; sources only when asked for', async () => {
    const t0 = Date.now();
    await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-1'));
    await r.call('PUT', '/v1/tenants/acme/policy', 'root-token', policy('up-2'));
    await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy('up-3'));
    const list = await r.call('GET', '/v1/tenants/acme/policy/versions', 'acme-token');
    assert.equal(list.status, 200);
    assert.equal(list.json.pinned, true);
    assert.equal(list.json.current, 4);
    const [file, v2, v3, v4] = list.json.versions;
    assert.deepEqual(Object.keys(v2).sort(), ['at', 'at_ms', 'bytes', 'current', 'hash', 'uploader', 'version']);
    assert.deepEqual([file.uploader, v2.uploader, v3.uploader, v4.uploader], ['file', 'tenant', 'admin', 'tenant']);
    assert.deepEqual([v2.current, v4.current], [false, true]);
    assert.equal(v3.hash, sha(policy('up-2')));
    assert.equal(v3.bytes, Buffer.byteLength(policy('up-2')));
    assert.ok(v2.at_ms >= t0 - 1000 && v2.at_ms <= Date.now(), `at_ms ${v2.at_ms}`);
    assert.equal(v2.at, new Date(v2.at_ms).toISOString());

    const withSource = (await r.call('GET', '/v1/tenants/acme/policy/versions?source=1', 'acme-token')).json;
    assert.deepEqual(withSource.versions.map((x: any) => x.source), [policy('file-1'), policy('up-1'), policy('up-2'), policy('up-3')]);
    const one = await r.call('GET', '/v1/tenants/acme/policy/versions/3', 'acme-token');
    assert.deepEqual(one, { status: 200, json: { ...v3, source: policy('up-2') } });
    for (const p of ['/versions/9', '/versions/0', '/versions/abc', '/versions/1e3']) {
      assert.deepEqual(await r.call('GET', `/v1/tenants/acme/policy${p}`, 'acme-token'), { status: 404, json: { error: 'no such version' } }, p);
    }
  });

  it('a rollback serves an earlier version as a new one; twice without a body goes two back; any version by number', async () => {
    // Serving: version 4 (up-3). Back once: version 3's source (up-2), kept as version 5.
    const once = await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token');
    assert.deepEqual(once, { status: 200, json: { version: 5, hash: sha(policy('up-2')), rollback_of: 3 } });
    assert.equal(await r.answer(), 'up-2');
    // Twice: before version 3 is version 2 (up-1), not version 4 again.
    const twice = await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token');
    assert.deepEqual(twice.json, { version: 6, hash: sha(policy('up-1')), rollback_of: 2 });
    assert.equal(await r.answer(), 'up-1');
    // Back to the file version the first upload replaced, then nothing earlier.
    assert.equal((await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token')).json.rollback_of, 1);
    assert.equal(await r.answer(), 'file-1');
    assert.deepEqual(await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token'), { status: 409, json: { error: 'no earlier version is kept' } });
    // Any version, by number, with either token.
    const to4 = await r.call('POST', '/v1/tenants/acme/policy/rollback', 'root-token', JSON.stringify({ version: 4 }));
    assert.deepEqual(to4.json, { version: 8, hash: sha(policy('up-3')), rollback_of: 4 });
    assert.equal(await r.answer(), 'up-3');
    assert.deepEqual((await view(r)).version, 8);
    const list = (await r.call('GET', '/v1/tenants/acme/policy/versions', 'acme-token')).json;
    assert.deepEqual(list.versions.map((x: any) => [x.version, x.rollback_of ?? null, x.uploader]).slice(4), [[5, 3, 'tenant'], [6, 2, 'tenant'], [7, 1, 'tenant'], [8, 4, 'admin']]);
    assert.equal(list.current, 8);
  });

  it('a rollback to a version not kept is 404; a body that is not { "version": N } is 400, one over 1 KB 413; nothing changes', async () => {
    assert.deepEqual(await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token', JSON.stringify({ version: 99 })), { status: 404, json: { error: 'no version 99 is kept' } });
    for (const body of ['{', '[]', '"x"', '{"version":0}', '{"version":"2"}', '{"version":2.5}', '{"version":2,"x":1}', 'null']) {
      assert.equal((await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token', body)).status, 400, body);
    }
    assert.equal((await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token', JSON.stringify({ version: 2, pad: 'x'.repeat(2048) }))).status, 413);
    assert.equal((await view(r)).version, 8);
    assert.equal(await r.answer(), 'up-3');
  });

  it(`keeps the last ${POLICY_HISTORY} changes of a tenant`, async () => {
    for (let i = 0; i < POLICY_HISTORY - 5; i++) assert.equal((await r.call('PUT', '/v1/tenants/acme/policy', 'acme-token', policy(`many-${i}`))).status, 200);
    const list = (await r.call('GET', '/v1/tenants/acme/policy/versions', 'acme-token')).json;
    assert.equal(list.versions.length, POLICY_HISTORY);
    assert.equal(list.versions[0].version, 4);
    assert.equal((await r.call('GET', '/v1/tenants/acme/policy/versions/3', 'acme-token')).status, 404);
    assert.equal((await r.call('POST', '/v1/tenants/acme/policy/rollback', 'acme-token', '{"version":3}')).status, 404);
  });

  it("a tenant's token cannot see another tenant's versions: 404, as for a tenant that does not exist", async () => {
    for (const p of ['/policy/versions', '/policy/versions?source=1', '/policy/versions/1']) {
      const other = await r.call('GET', `/v1/tenants/globex${p}`, 'acme-token');
      const none = await r.call('GET', `/v1/tenants/nobody${p}`, 'acme-token');
      assert.equal(other.status, 404, p);
      assert.deepEqual(other, none, p);
    }
    const other = await r.call('POST', '/v1/tenants/globex/policy/rollback', 'acme-token', '{"version":1}');
    assert.deepEqual(other, await r.call('POST', '/v1/tenants/nobody/policy/rollback', 'acme-token', '{"version":1}'));
    assert.equal((await r.call('GET', '/v1/tenants/acme/policy/versions', 'globex-token')).status, 404);
  });
});

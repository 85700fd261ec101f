/**
 * A store that cannot be written: Sluice refuses to start on one (a
 * read-only WAL let it start with `/healthz` ok while every write failed),
 * names the file it cannot open, and, running, reports a store that stops
 * taking writes through `/healthz` (503) and `sluice_store_writable`, refuses
 * the submits it cannot journal (never ESME_ROK and lost), says so in one log
 * line, and recovers by itself once the store takes writes again.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { CacheStore } from '../../src/cache';
import { startSluice } from '../../src/runtime';
import { SmscSimulator } from '../../src/tools/sim';
import { ESME_RSYSERR } from '../../src/wire/status';
import { TestEsme } from '../helpers/esme';
import { sandboxedSetup, until } from '../helpers/harness';
import { eachLine } from '../helpers/sluice-process';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/sluice.js');
const GATEWAY = readFileSync(path.join(ROOT, 'policies/gateway.ts'), 'utf8');
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0 ? false : 'needs root: the gateway runs as another user to meet a file it cannot write';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'sluice-store-'));
  dirs.push(d);
  return d;
};

/** `sluice start` as uid/gid 65534 in `dir`: its exit code, stderr, JSON log lines, and (while it runs) the admin port it logged. */
function startAsNobody(dir: string): { exited: Promise<number | null>; stderr: () => string; lines: Record<string, unknown>[]; kill: () => void } {
  const child = spawn(process.execPath, [BIN, 'start', '-c', 'c.yaml'], { cwd: dir, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  eachLine(child.stdout, (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* not a log line */
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(timer));
  return { exited, stderr: () => err, lines, kill: () => child.kill('SIGTERM') };
}

describe('a store that cannot be written', () => {
  it('sluice start refuses a SQLite store whose WAL it cannot write, before opening a port, and starts once it can (regression: it started and /healthz said ok)', { skip: asRoot, timeout: 90_000 }, async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'data'));
    writeFileSync(path.join(dir, 'p.ts'), 'smpp.onBind((b) => b.accept());\n');
    writeFileSync(path.join(dir, 'c.yaml'), 'server: { bind_address: 127.0.0.1, port: 0 }\ncache: { url: "sqlite://data/cache.sqlite" }\nsandbox: { processes: 1 }\nadmin: { listen: "127.0.0.1:0" }\ntenants: [{ id: a, policy: p.ts, system_ids: [a] }]\n');
    // The cache file and the journal beside it made by the gateway's own user, then a WAL and
    // shared-memory file left behind by another user (root, read-only) for one of them: SQLite
    // opens the database, every write fails. Tried for each of the two files.
    const db = await CacheStore.open('sqlite://data/cache.sqlite', { cwd: dir });
    await db.close();
    for (const f of [dir, path.join(dir, 'data'), path.join(dir, 'data/cache.sqlite'), path.join(dir, 'data/cache.journal.sqlite')]) chownSync(f, NOBODY, NOBODY);
    for (const file of ['cache.sqlite', 'cache.journal.sqlite']) {
      for (const f of [`${file}-wal`, `${file}-shm`]) {
        writeFileSync(path.join(dir, 'data', f), '');
        chmodSync(path.join(dir, 'data', f), 0o444);
      }
      const refused = startAsNobody(dir);
      assert.equal(await refused.exited, 1, file);
      // The file by its absolute path (the relative one in c.yaml resolved against its directory):
      // the cache opens and fails its write probe; the journal fails as it opens.
      const said =
        file === 'cache.sqlite'
          ? `could not start: cache store sqlite://${path.join(dir, 'data/cache.sqlite')} cannot be written: SQLITE_READONLY`
          : `could not start: sqlite store ${path.join(dir, 'data/cache.journal.sqlite')}: SQLITE_READONLY`;
      assert.ok(refused.stderr().includes(said), `${file}: ${refused.stderr()}`);
      assert.equal(refused.lines.some((l) => l.msg === 'listening' || l.msg === 'admin listening' || l.msg === 'sluice started'), false, 'no port was opened');
      for (const f of [`${file}-wal`, `${file}-shm`]) unlinkSync(path.join(dir, 'data', f));
    }

    // Fixed: the stray files removed, it starts and says it is healthy.
    const ok = startAsNobody(dir);
    try {
      await until(() => ok.lines.some((l) => l.msg === 'sluice started'), 30_000);
      const adminPort = ok.lines.find((l) => l.msg === 'admin listening')!.port as number;
      const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true });
    } finally {
      ok.kill();
      await ok.exited;
    }
  });

  it('a SQLite file that cannot be opened is named in the error', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'a-directory.sqlite'));
    await assert.rejects(CacheStore.open('sqlite://a-directory.sqlite', { cwd: dir }), (err: Error) => {
      assert.match(err.message, new RegExp(`sqlite store ${path.join(dir, 'a-directory.sqlite').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: SQLITE_CANTOPEN`));
      return true;
    });
    writeFileSync(path.join(dir, 'a-file'), '');
    await assert.rejects(CacheStore.open('sqlite://a-file/cache.sqlite', { cwd: dir }), (err: Error) => {
      assert.ok(err.message.includes(path.join(dir, 'a-file')), err.message);
      return true;
    });
  });

  it('a running gateway whose store stops taking writes: /healthz 503 and sluice_store_writable 0, submits refused (none acked and lost), one log line; all well again once it takes writes', { timeout: 90_000 }, async () => {
    // An upstream that sends a refused receipt again, as real ones do: a receipt that came while the
    // store was locked is answered ESME_RSYSERR (it cannot be held durably), and must come back.
    const sim = new SmscSimulator({ dlrDelayMs: 20, resendUnansweredMs: 500, resendMax: 30 });
    const simPort = await sim.listen();
    const x = sandboxedSetup(
      { gw: GATEWAY },
      {
        cache: { url: 'sqlite://data/gw.sqlite' },
        admin: { listen: '127.0.0.1:0', token: 'admin-token' },
        tenants: [
          {
            id: 'acme',
            policy: 'gw.ts',
            system_ids: ['acme-app'],
            limits: { handler_deadline_ms: 10_000 },
            settings: { esmes: { 'acme-app': 'pw' } },
            binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme', password: 'pw' }],
            routing: { default_chain: ['bind:up', 'queue'] },
          },
        ],
      },
    );
    dirs.push(x.dir);
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void logged.push(JSON.parse(l) as Record<string, unknown>) });
    const s = await startSluice({ config: x.config, logger, cwd: x.dir, watch: false, admin: true });
    const health = async (): Promise<{ status: number; body: unknown }> => {
      const r = await fetch(`http://127.0.0.1:${s.adminPort}/healthz`);
      return { status: r.status, body: await r.json() };
    };
    const writableGauge = async (): Promise<string | undefined> => {
      const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`, { headers: { authorization: 'Bearer admin-token' } })).text();
      return /^sluice_store_writable (\d)$/m.exec(text)?.[1];
    };
    // Another connection holding the journal's write lock (a backup, a shell left in a
    // transaction): every write of ours waits its busy timeout, then fails. The journal's own
    // SQLite library: a second copy in this process would release the gateway's locks.
    const other = new Database(path.join(x.dir, 'data/gw.journal.sqlite'));
    const exec = async (sql: string): Promise<void> => void other.exec(sql);
    try {
      await until(() => s.gateway.binds('acme')[0]?.state === 'bound', 10_000);
      const esme = await TestEsme.bind(s.port, 'acme-app', 'pw');
      const before = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(i)));
      assert.deepEqual([...new Set(before.map((r) => r.command_status))], [0]);
      assert.deepEqual(await health(), { status: 200, body: { ok: true } });
      assert.equal(await writableGauge(), '1');

      await exec('BEGIN EXCLUSIVE');
      const during = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(100 + i)));
      assert.deepEqual([...new Set(during.map((r) => r.command_status))], [ESME_RSYSERR], 'nothing the journal could not take was acknowledged: the ESME may send it again');
      const h = await health();
      assert.equal(h.status, 503);
      assert.deepEqual(h.body, { ok: false, store: 'not writable' }, 'says what, never which file');
      const notReady = await fetch(`http://127.0.0.1:${s.adminPort}/readyz`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { ready: false, store: 'not writable', listeners: 'up', tenants_degraded: 0 });
      assert.equal(await writableGauge(), '0');
      assert.equal(logged.filter((l) => /write failed/.test(String(l.msg))).length, 1, 'one line when writes start failing, not one per message');
      assert.ok(logged.some((l) => l.msg === 'cache store cannot be written: submits are refused until it can'));

      await exec('COMMIT');
      await until(() => logged.some((l) => l.msg === 'cache store is writable again'), 15_000);
      assert.deepEqual(await health(), { status: 200, body: { ok: true } });
      assert.equal((await fetch(`http://127.0.0.1:${s.adminPort}/readyz`)).status, 200);
      assert.equal(await writableGauge(), '1');
      const afterwards = await Promise.all(Array.from({ length: 20 }, (_, i) => esme.submit(200 + i)));
      assert.deepEqual([...new Set(afterwards.map((r) => r.command_status))], [0]);
      assert.ok(logged.some((l) => l.msg === 'forward journal: writes work again'));
      // Every message acknowledged, before and after, gets its receipt.
      const acked = [...before, ...afterwards].map((r) => String(r.fields.message_id));
      await until(() => acked.every((id) => esme.receipts.some((r) => r.bodyId === id)), 15_000).catch(async (err: Error) => {
        // Say which receipts are missing and what the journal holds for them.
        const missing = acked.filter((id) => !esme.receipts.some((r) => r.bodyId === id));
        const rows = other.prepare('SELECT key, up, state, data FROM sluice_msg WHERE key IN (SELECT value FROM json_each(?))').all(JSON.stringify(missing.map((id) => `acme/${id}`)));
        const early = other.prepare('SELECT up, rid FROM sluice_early').all();
        throw new Error(`${err.message}: ${missing.length} receipts missing (${missing.join(' ')}); journal rows ${JSON.stringify(rows)}; early ${JSON.stringify(early)}`);
      });
      esme.close();
    } finally {
      other.close();
      await s.stop();
      await sim.close();
    }
  });
});

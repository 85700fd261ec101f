import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { TIMER_SLACK_NS } from '../../src/sandbox-process/main';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { STATUS } from '../../src/wire/status';
import { boundEsme, sandboxedSetup, sleep } from '../helpers/harness';

const ECHO = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', (pdu) => {
  const t = pdu.text ?? '';
  if (t === 'hang') return new Promise(() => {});
  return pdu.reply({ message_id: 'v1-' + t });
});`;

function setup(policies: Record<string, string>): { dir: string; config: ReturnType<typeof parseConfig> } {
  return sandboxedSetup(policies, {
    tenants: Object.keys(policies).map((name) => ({ id: name, policy: `${name}.ts`, system_ids: [`${name}-app`], limits: { handler_deadline_ms: 3000 } })),
  });
}

describe('sandbox processes', () => {
  let s: Sluice;
  let dir: string;
  before(async () => {
    const x = setup({ acme: ECHO, globex: ECHO });
    dir = x.dir;
    s = await startSluice({ config: x.config, logger: silentLogger, cwd: dir, watch: true });
  });
  after(() => s.stop());

  it('serves binds and PDUs from tenant policies running in a sandbox process', async () => {
    const c = await boundEsme(s, 'acme-app');
    const r = await c.submit({ short_message: Buffer.from('hello') });
    assert.equal(r.command_status, 0);
    assert.equal(r.fields.message_id, 'v1-hello');
    c.close();
  });

  it('a sandbox process runs with timer slack, so isolated-vm\'s timer thread serves nearby deadlines in one wake-up', { skip: process.platform !== 'linux' }, async () => {
    const c = await boundEsme(s, 'acme-app');
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).command_status, 0);
    c.close();
    const pid = s.sandbox.processOf('acme')!.pid!;
    assert.equal(Number(readFileSync(`/proc/${pid}/timerslack_ns`, 'utf8')), TIMER_SLACK_NS);
    assert.notEqual(Number(readFileSync(`/proc/${process.pid}/timerslack_ns`, 'utf8')), TIMER_SLACK_NS, 'the core keeps its own');
  });

  it('kill -9 of the sandbox process: sessions stay bound, in-flight PDUs get ESME_RSYSERR, the process comes back, the running tenant is penalised', async () => {
    const a = await boundEsme(s, 'acme-app');
    const g = await boundEsme(s, 'globex-app');
    const hung = a.submit({ short_message: Buffer.from('hang') });
    await sleep(100);
    const child = s.sandbox.processOf('acme')!;
    const pid = child.pid!;
    process.kill(pid, 'SIGKILL');
    const r = await hung;
    assert.equal(r.command_status, STATUS.ESME_RSYSERR);
    assert.equal(s.gateway.sessions('acme').length, 1, 'acme session still bound');
    assert.equal(s.gateway.sessions('globex').length, 1, 'globex session still bound');
    // globex is served as soon as the process is back; acme (the culprit) waits out its penalty.
    let gr;
    for (let i = 0; i < 100; i++) {
      gr = await g.submit({ short_message: Buffer.from('after') });
      if (gr.command_status === 0) break;
      await sleep(50);
    }
    assert.equal(gr!.command_status, 0);
    assert.notEqual(s.sandbox.processOf('acme')!.pid, pid, 'a new process');
    assert.equal(s.sandbox.tenantState('acme')!.crashes, 1);
    assert.equal(s.sandbox.tenantState('globex')!.crashes, 0);
    let ar;
    for (let i = 0; i < 100; i++) {
      ar = await a.submit({ short_message: Buffer.from('back') });
      if (ar.command_status === 0) break;
      await sleep(50);
    }
    assert.equal(ar!.command_status, 0);
    a.close();
    g.close();
  });

  it('reload: a new version takes the next PDU; a broken one is refused with line:column and the old keeps serving', async () => {
    const c = await boundEsme(s, 'globex-app');
    const ok = await s.sandbox.reload('globex', ECHO.replace("'v1-'", "'v2-'"));
    assert.equal(ok.ok, true);
    assert.equal((await c.submit({ short_message: Buffer.from('x') })).fields.message_id, 'v2-x');
    const bad = await s.sandbox.reload('globex', "smpp.onPdu('submit_sm', (pdu) => {\n  return pdu.reply({ message_id: 'v3' ;\n});\n");
    assert.equal(bad.ok, false);
    if (!bad.ok) {
      assert.equal(bad.errors[0]!.line, 2);
      assert.ok(bad.errors[0]!.column > 0);
    }
    const loops = await s.sandbox.reload('globex', 'while (true) {}');
    assert.equal(loops.ok, false);
    const throws = await s.sandbox.reload('globex', "\n\nthrow new Error('top-level');");
    assert.equal(throws.ok, false);
    if (!throws.ok) assert.equal(throws.errors[0]!.line, 3);
    assert.equal((await c.submit({ short_message: Buffer.from('y') })).fields.message_id, 'v2-y', 'old version still serving');
    c.close();
  });

  it('a sandbox whose channel breaks is replaced like one that died; sessions stay, traffic resumes', async () => {
    const c = await boundEsme(s, 'globex-app');
    const child = s.sandbox.processOf('globex')!;
    const pid = child.pid!;
    // What a frame that does not decode leads to: the core stops listening to that process.
    (child.stdio[3] as import('node:net').Socket).destroy();
    for (let i = 0; i < 100 && (s.sandbox.processOf('globex')?.pid ?? pid) === pid; i++) await sleep(20);
    assert.notEqual(s.sandbox.processOf('globex')?.pid ?? pid, pid, 'a new process');
    let r;
    for (let i = 0; i < 100; i++) {
      r = await c.submit({ short_message: Buffer.from('back') });
      if (r.command_status === 0) break;
      await sleep(50);
    }
    assert.match(String(r!.fields.message_id), /-back$/);
    assert.equal(s.gateway.sessions('globex').length, 1);
    c.close();
  });

  it('a policy file change on disk is picked up', async () => {
    const c = await boundEsme(s, 'globex-app');
    writeFileSync(path.join(dir, 'globex.ts'), ECHO.replace("'v1-'", "'disk-'"));
    let id = '';
    for (let i = 0; i < 60 && !id.startsWith('disk-'); i++) {
      await sleep(50);
      id = String((await c.submit({ short_message: Buffer.from('z') })).fields.message_id);
    }
    assert.equal(id, 'disk-z');
    c.close();
  });
});

describe('reload under load', () => {
  it('100 reloads mid-traffic: zero unanswered PDUs, zero dropped sessions', async () => {
    const x = setup({ acme: ECHO });
    const s = await startSluice({ config: x.config, logger: silentLogger, cwd: x.dir, watch: false });
    const clients = await Promise.all([1, 2, 3].map(() => boundEsme(s, 'acme-app')));
    let stop = false;
    let sent = 0;
    let answered = 0;
    const statuses = new Map<number, number>();
    const load = clients.map(async (c) => {
      while (!stop) {
        sent++;
        const r = await c.submit({ short_message: Buffer.from('m') });
        answered++;
        statuses.set(r.command_status, (statuses.get(r.command_status) ?? 0) + 1);
      }
    });
    const started = Date.now();
    let reloads = 0;
    for (let i = 0; i < 100 && Date.now() - started < 60_000; i++) {
      const r = await s.sandbox.reload('acme', ECHO.replace("'v1-'", `'r${i}-'`));
      assert.equal(r.ok, true);
      reloads++;
    }
    stop = true;
    await Promise.all(load);
    assert.equal(reloads, 100);
    assert.equal(answered, sent, 'every PDU answered');
    assert.deepEqual([...statuses.keys()], [0], 'and answered ESME_ROK');
    assert.equal(s.gateway.sessions('acme').length, 3, 'no session dropped');
    assert.ok(sent > 100);
    for (const c of clients) c.close();
    await s.stop();
  });
});

describe('sandbox process death and outbound binds', () => {
  it('kill -9 of the sandbox leaves every outbound bind bound on the same connection', async () => {
    const { SmscSimulator } = await import('../../src/tools/sim');
    const sim = new SmscSimulator();
    const simPort = await sim.listen();
    const { dir, config } = sandboxedSetup({ acme: ECHO }, {
      tenants: [{ id: 'acme', policy: 'acme.ts', system_ids: ['acme-app'], binds: [{ name: 'up', host: '127.0.0.1', port: simPort, system_id: 'acme' }] }],
    });
    const s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false });
    for (let i = 0; i < 200 && s.gateway.binds('acme')[0]!.state !== 'bound'; i++) await sleep(10);
    const before = s.gateway.binds('acme')[0]!;
    assert.equal(before.state, 'bound');
    const pid = s.sandbox.processOf('acme')!.pid!;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && s.sandbox.processOf('acme')?.pid === pid; i++) await sleep(20);
    await sleep(200);
    const after = s.gateway.binds('acme')[0]!;
    assert.equal(after.state, 'bound');
    assert.equal(after.sessionId, before.sessionId, 'the same SMPP session, never dropped');
    assert.equal(sim.stats.binds, 1, 'no rebind happened');
    await s.stop();
    await sim.close();
  });
});

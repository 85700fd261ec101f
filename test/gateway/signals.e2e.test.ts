/**
 * Signals to the whole process group, as a terminal's Ctrl-C and systemd's
 * default `KillMode=control-group` send them: the sandbox processes get the
 * SIGINT or SIGTERM too. They leave the stop to the core, which drains first
 * (README, "Stopping"), so what ESMEs have in flight is answered by their
 * policies, never ESME_RSYSERR. And a core that dies takes its sandbox
 * processes with it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator, type SimOptions } from '../../src/tools/sim';
import { ESME_ROK, ESME_RSYSERR } from '../../src/wire/status';
import { until } from '../helpers/harness';
import { eachLine } from '../helpers/sluice-process';

const BIN = path.resolve(__dirname, '../../../bin/sluice.js');

const RELAY = `
smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', async (pdu) => {
  const r = await smpp.submitVia('up', { source_addr: pdu.source_addr, destination_addr: pdu.destination_addr, short_message: pdu.short_message });
  return r.ok ? pdu.reply({ message_id: r.message_id }) : pdu.reply({ command_status: r.command_status });
});
`;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Pids of the live processes in process group `pgid` (Linux /proc). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

/** `sluice start` on a config for one sandboxed tenant relaying to `upstreamPort`, leading a process group of its own. */
class GroupLeader {
  readonly lines: Record<string, unknown>[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcess;

  constructor(upstreamPort: number) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-pgrp-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'relay.ts'), RELAY);
    writeFileSync(
      path.join(dir, 'sluice.yaml'),
      [
        'server: { bind_address: 127.0.0.1, port: 0 }',
        'cache: { url: "memory://" }',
        'sandbox: { processes: 1 }',
        'admin: { listen: "127.0.0.1:0" }',
        'tenants:',
        '  - id: acme',
        '    policy: relay.ts',
        '    system_ids: [acme-app]',
        `    binds: [{ name: up, host: 127.0.0.1, port: ${upstreamPort}, system_id: acme, password: pw, window: 64 }]`,
      ].join('\n'),
    );
    // detached: the child leads a new process group, as a shell's foreground job or a systemd unit's main process does.
    this.child = spawn(process.execPath, [BIN, 'start', '-c', path.join(dir, 'sluice.yaml')], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    eachLine(this.child.stdout!, (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async logged(msg: string, where: (l: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    await until(() => this.lines.some((l) => l.msg === msg && where(l)) || this.child.exitCode !== null, 20_000, msg, 20);
    const hit = this.lines.find((l) => l.msg === msg && where(l));
    if (!hit) throw new Error(`no "${msg}" in the log`);
    return hit;
  }

  /** Whatever is left of the group, killed (a failed test must not leave processes behind). */
  killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** A simulated upstream and a `sluice start` leading its own process group, both gone when the test ends. */
async function groupWithSim(t: TestContext, opts: SimOptions): Promise<{ sim: SmscSimulator; g: GroupLeader }> {
  const sim = new SmscSimulator(opts);
  const g = new GroupLeader(await sim.listen());
  t.after(async () => {
    g.killGroup();
    await sim.close();
  });
  return { sim, g };
}

describe('signals to the process group', { skip: process.platform !== 'linux' && 'reads /proc', timeout: 90_000 }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the whole group: every submit in flight is answered by its policy with the upstream's id, none ESME_RSYSERR; the process exits 0`, async (t) => {
      const { sim, g } = await groupWithSim(t, { latencyMs: 400, dlrDelayMs: -1 });
      const started = await g.logged('sluice started');
      await g.logged('bind state', (l) => l.bind === 'up' && l.state === 'bound');
      assert.ok(groupMembers(g.pid).length >= 2, 'the sandbox process is in the core\'s process group');

      const esme = await EsmeClient.connect({ port: Number(started.port) });
      assert.equal((await esme.bind('acme-app', 'pw')).command_status, ESME_ROK);
      const n = 32;
      const answers: (number | string)[] = [];
      const sends = Array.from({ length: n }, (_, i) =>
        esme.submit({ source_addr: '4412345', destination_addr: '31612345678', short_message: Buffer.from(`m${i}`) }).then(
          (r) => void (answers[i] = r.command_status),
          (e: { code?: string }) => void (answers[i] = e.code ?? 'error'),
        ),
      );
      // Every one of them is with the upstream (400 ms latency), so each is awaited inside the sandbox.
      await until(() => sim.stats.submits === n, 10_000, 'submits reach the upstream', 5);
      process.kill(-g.pid, signal);
      await Promise.all(sends);
      const exit = await g.exited;
      esme.close();

      // Regression: the sandbox process died of the signal first, and all 32 were answered ESME_RSYSERR.
      assert.equal(answers.filter((x) => x === ESME_RSYSERR).length, 0, `answers: ${JSON.stringify(answers)}`);
      assert.deepEqual(answers, Array(n).fill(ESME_ROK), 'each was in flight when the signal came: drained, not refused');
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(g.lines.some((l) => l.msg === 'stopping' && l.signal === signal));
      assert.equal(g.lines.filter((l) => l.msg === 'sandbox process died; restarting').length, 0, 'no sandbox process died');
      await until(() => groupMembers(g.pid).length === 0, 10_000, 'the group is gone', 20);
    });
  }

  it('SIGHUP to the whole group re-reads the config; the sandbox processes stay and serve', async (t) => {
    const { g } = await groupWithSim(t, { dlrDelayMs: -1 });
    const started = await g.logged('sluice started');
    await g.logged('bind state', (l) => l.bind === 'up' && l.state === 'bound');
    const before = groupMembers(g.pid).sort();
    process.kill(-g.pid, 'SIGHUP');
    await g.logged('config reloaded');
    const esme = await EsmeClient.connect({ port: Number(started.port) });
    assert.equal((await esme.bind('acme-app', 'pw')).command_status, ESME_ROK);
    assert.equal((await esme.submit({ destination_addr: '31612345678', short_message: Buffer.from('hi') })).command_status, ESME_ROK);
    esme.close();
    assert.deepEqual(groupMembers(g.pid).sort(), before, 'the same processes');
    assert.equal(g.lines.filter((l) => l.msg === 'sandbox process died; restarting').length, 0);
    process.kill(g.pid, 'SIGTERM');
    assert.deepEqual(await g.exited, { code: 0, signal: null });
  });

  it('a core that dies (SIGKILL to it alone) takes its sandbox processes with it: they exit when their channel closes', async (t) => {
    const { g } = await groupWithSim(t, {});
    await g.logged('sluice started');
    const sandboxes = groupMembers(g.pid).filter((pid) => pid !== g.pid);
    assert.ok(sandboxes.length >= 1, 'a sandbox process runs');
    process.kill(g.pid, 'SIGKILL');
    await g.exited;
    await until(() => groupMembers(g.pid).length === 0, 10_000, 'the sandbox processes exit', 20);
  });
});

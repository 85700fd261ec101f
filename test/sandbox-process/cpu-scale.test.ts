/**
 * A tenant pays for the CPU its isolates got, not for the time they waited
 * for a core: isolated-vm's `cpuTime` counts the latter too, so a busy host
 * would throttle every tenant for its own load.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuBudget, CpuScale } from '../../src/sandbox-process/cpu-budget';
import { ManualClock } from '../../src/util/clock';

describe('CpuScale', () => {
  it('charges in full while the process got at least the isolates\' time as CPU', () => {
    let t = 0;
    let cpu = 0;
    const s = new CpuScale(() => t, () => cpu);
    for (let i = 0; i < 10; i++) {
      t += 50;
      cpu += 60; // the isolates' 40 ms and the process's own work
      assert.equal(s.scale(40), 40);
    }
    assert.equal(s.current, 1);
  });

  it('charges at the share of CPU the process got when the isolates\' time cannot all have been CPU, from the next window on', () => {
    let t = 0;
    let cpu = 0;
    const s = new CpuScale(() => t, () => cpu);
    t += 100;
    cpu += 50; // 100 ms inside the isolates, 50 ms of CPU: half of it was waiting for a core
    assert.equal(s.scale(100), 50, 'the window that measured it is charged at its factor');
    assert.equal(s.current, 0.5);
    assert.equal(s.scale(10), 5);
    // The host quiet again: back to full.
    t += 100;
    cpu += 100;
    assert.equal(s.scale(90), 90);
    assert.equal(s.current, 1);
  });

  it('waits for enough isolate time to measure (at most a second), and never goes above 1', () => {
    let t = 0;
    let cpu = 0;
    const s = new CpuScale(() => t, () => cpu);
    t += 100;
    cpu += 25;
    s.scale(100);
    assert.equal(s.current, 0.25);
    t += 100;
    cpu += 100;
    s.scale(2);
    assert.equal(s.current, 0.25, '2 ms of isolate time is not a measure yet');
    t += 900;
    cpu += 400;
    s.scale(1);
    assert.equal(s.current, 1, 'after a second, what there is: 3 ms of isolate time in 500 ms of CPU');
    t += 100;
    cpu += 500;
    s.scale(100);
    assert.equal(s.current, 1);
  });

  it('the budget spends the scaled time', () => {
    const clock = new ManualClock();
    let t = 0;
    let cpu = 0;
    const scale = new CpuScale(() => t, () => cpu);
    const b = new CpuBudget(10, clock, scale);
    const iso = { isDisposed: false, cpuMs: 0 };
    t += 100;
    cpu += 5;
    iso.cpuMs = 20; // 20 ms inside the isolate, 5 ms of CPU
    b.charge(iso);
    assert.equal(b.totalMs, 5);
    assert.equal(b.overdrawn(), false, 'a 10 ms budget is not overdrawn by 5 ms of CPU');
  });
});

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

describe('CPU charged on a busy host (real isolates, real processes)', () => {
  it('an isolate sharing its core with two busy processes is charged about the CPU it got, where its cpuTime says about three times that', { skip: hasTaskset ? false : 'needs taskset (util-linux)', timeout: 60_000 }, async () => {
    // Two processes spinning on core 0, and the measured one on core 0 too.
    const burners = [0, 1].map(() => spawn('taskset', ['-c', '0', process.execPath, '-e', 'const e = Date.now() + 20000; while (Date.now() < e);'], { stdio: 'ignore' }));
    try {
      await new Promise((r) => setTimeout(r, 200));
      const script = path.join(__dirname, '..', 'helpers', 'cpu-scale-child.js');
      const out = execFileSync('taskset', ['-c', '0', process.execPath, '--no-node-snapshot', script], { encoding: 'utf8', timeout: 50_000, env: { ...process.env, SLUICE_CPU_SCALE_CHILD: '1' } });
      const m = JSON.parse(out) as { cpuTimeMs: number; processCpuMs: number; chargedMs: number };
      assert.ok(m.cpuTimeMs > 2 * m.processCpuMs, `the contention was real: cpuTime ${m.cpuTimeMs} ms for ${m.processCpuMs} ms of CPU`);
      assert.ok(m.chargedMs <= 1.25 * m.processCpuMs, `charged ${m.chargedMs} ms for ${m.processCpuMs} ms of CPU (cpuTime ${m.cpuTimeMs} ms)`);
      assert.ok(m.chargedMs >= 0.5 * m.processCpuMs, `charged ${m.chargedMs} ms for ${m.processCpuMs} ms of CPU: not what it used`);
    } finally {
      for (const b of burners) b.kill('SIGKILL');
    }
  });
});

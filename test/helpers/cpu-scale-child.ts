/**
 * Run by test/sandbox-process/cpu-scale.test.ts in a process of its own,
 * pinned to a busy core (SLUICE_CPU_SCALE_CHILD=1; as a file the test runner
 * finds, it does nothing): an isolate spins in entries of ~5 ms for about
 * 600 ms, charged through CpuScale with this process's real CPU. Prints what
 * isolated-vm's cpuTime said, the CPU the process got, and what was charged.
 */
import ivm from 'isolated-vm';
import { CpuScale } from '../../src/sandbox-process/cpu-budget';

if (process.env.SLUICE_CPU_SCALE_CHILD === '1') {
  const cpuMs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const iso = new ivm.Isolate({ memoryLimit: 32 });
  const ctx = iso.createContextSync();
  const spin = iso.compileScriptSync('{ const end = Date.now() + 5; let x = 0; while (Date.now() < end) x++; }');
  const scale = new CpuScale(() => performance.now(), cpuMs);
  const cpu0 = cpuMs();
  const t0 = Number(iso.cpuTime) / 1e6;
  let seen = t0;
  let charged = 0;
  const start = performance.now();
  while (performance.now() - start < 600) {
    spin.runSync(ctx);
    const now = Number(iso.cpuTime) / 1e6;
    charged += scale.scale(now - seen);
    seen = now;
  }
  process.stdout.write(JSON.stringify({ cpuTimeMs: Math.round(seen - t0), processCpuMs: Math.round(cpuMs() - cpu0), chargedMs: Math.round(charged) }));
  iso.dispose();
}

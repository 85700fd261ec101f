import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheStore } from '../../src/cache';
import { ManualClock, Repeat } from '../../src/util/clock';
import { sleep, startGateway } from '../helpers/harness';

/** Let promise callbacks (a loop's run and its re-arming) settle. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Clock', () => {
  it('a manual clock keeps monotonic and wall time: both move with advance, the wall alone with jumpWall', () => {
    const c = new ManualClock(Date.UTC(2026, 11, 4));
    assert.equal(c.now(), 0);
    assert.equal(c.wall(), Date.UTC(2026, 11, 4));
    c.advance(1500);
    assert.equal(c.now(), 1500);
    assert.equal(c.wall(), Date.UTC(2026, 11, 4) + 1500);
    c.jumpWall(-60_000);
    assert.equal(c.now(), 1500, 'a wall clock step does not move monotonic time');
    assert.equal(c.wall(), Date.UTC(2026, 11, 4) - 58_500);
  });
});

describe('Repeat', () => {
  it('runs every interval with one timer handle, however long it runs; a failing run does not stop it; stop clears it', async () => {
    const c = new ManualClock();
    let runs = 0;
    const errors: string[] = [];
    const r = new Repeat(
      c,
      100,
      () => {
        runs++;
        if (runs % 1000 === 0) throw new Error(`run ${runs}`);
      },
      (e) => errors.push(e.message),
    );
    for (let i = 0; i < 10_000; i++) {
      c.advance(100);
      await settle();
    }
    assert.equal(runs, 10_000);
    assert.equal(errors.length, 10);
    assert.equal(c.pending, 1, 'one handle, not one per run');
    r.stop();
    assert.equal(c.pending, 0);
    c.advance(1000);
    await settle();
    assert.equal(runs, 10_000);
  });

  it('a slow run is never overlapped: the next is armed when it ends', async () => {
    const c = new ManualClock();
    let running = 0;
    let most = 0;
    let release: () => void = () => undefined;
    const r = new Repeat(c, 10, async () => {
      most = Math.max(most, ++running);
      await new Promise<void>((res) => (release = res));
      running--;
    });
    c.advance(10);
    await settle();
    c.advance(100);
    await settle();
    assert.equal(c.pending, 0, 'nothing armed while a run is under way');
    release();
    await settle();
    await settle();
    assert.equal(c.pending, 1);
    assert.equal(most, 1);
    r.stop();
  });

  it("the gateway's journal and hold loops keep their handles over an hour of ticks", { timeout: 60_000 }, async () => {
    const clock = new ManualClock();
    const h = await startGateway({ clock });
    try {
      await sleep(20);
      const before = clock.pending;
      for (let i = 0; i < 7200; i++) {
        clock.advance(500);
        if (i % 50 === 0) await sleep(1);
        else await settle();
      }
      await sleep(50);
      assert.ok(clock.pending <= before + 2, `timers pending: ${before} at the start, ${clock.pending} after an hour`);
      assert.equal(h.gateway.forwarder.timerLoops, 4, 'the queue, early receipts, sweep and liveness loops');
    } finally {
      await h.close();
    }
  });
});

describe('the stores keep the gateway clock\'s wall time', () => {
  it('held messages, the session directory and leases in SQLite expire by the clock given, not the host\'s', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-wall-'));
    const clock = new ManualClock(Date.now());
    const store = await CacheStore.open(`sqlite://${path.join(dir, 'c.sqlite')}`, { clock });
    try {
      await store.holds.push('q', 'item', 60_000);
      await store.holds.remember('s1', 'esme', 60_000);
      assert.equal(await store.leases.acquire('lease', 'a', 60_000), true);
      assert.deepEqual(await store.holds.pending(['q']), ['q']);
      clock.jumpWall(61_000);
      assert.deepEqual(await store.holds.pending(['q']), [], 'expired by the clock, a minute before the host says so');
      assert.equal(await store.holds.recall('s1'), undefined);
      assert.equal(await store.leases.acquire('lease', 'b', 60_000), true, 'the lease ran out by the clock');
      assert.equal(await store.holds.prune(), 1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every timer goes through a Clock', () => {
  // Where the process clock is read or a Node timer set directly, and why. Anything else in src/ fails.
  const ALLOWED: Record<string, string> = {
    'util/clock.ts': 'the process clock itself',
    // A sandbox process: no manual clock crosses into it (its runtimes take the process clock); each raw read is one of these.
    'sandbox-process/main.ts': "the entry's idle-eviction sweep, and the SIGKILL 1 s after a fatal should the channel never drain: the process's own timers, as nothing else there has a clock",
    'sandbox-process/policy-isolate.ts': "Date.now() only seeds the prefix of smpp.newMessageId() (unique across processes and restarts, never read as a time); performance.now() stamps entries for the watchdog and the spare's quiet moment, which time isolated-vm's entries in real time",
    'sandbox-process/isolate-watchdog.ts': "one sweep every 250 ms over the process's isolates, against entries isolated-vm runs in real time (an unref'd interval)",
    'sandbox-process/warm-isolate.ts': "the spare isolate waits for a quiet moment of the process's thread, 3 ms after the last entry returned (100 ms at most), on unref'd Node timers",
    'sandbox-process/sentry.worker.ts': "the sentry's watching thread: a tick loop that counts its own ticks and never reads a clock (a VM paused for seconds is one late tick, not a hang)",
    'tools/': 'the benchmark, simulator and soak measure real time',
    'cli/': 'the command line waits in real time',
    'cache/bench-cache.ts': 'a benchmark',
    'cache/tenant-cache.ts': "Keyv's own expiry rule (its adapters compare Date.now())",
    'cache/backend.ts': 'a few ms between SQLite busy retries',
    'cache/forward-sqlite.ts': "a few ms between the journal's busy retries, for at most 5 s: another process holds the lock, on the real clock",
    'cache/journal-checkpointer.worker.ts': "the journal's checkpoint thread: its own pace, no manual clock reaches a worker",
    'cache/journal-checkpointer.ts': "another process's restart marker: looked at every few ms of real time, its age from the file's mtime (another process's wall clock)",
    'cache/forward-redis.ts': "the health probe's value, which nothing reads",
  };
  const RAW = /(?<![.\w])(setTimeout|setInterval)\(|(?<![.\w])Date\.now\(\)|(?<![.\w])performance\.now\(\)/;

  it('no source outside the allowed places reads the process clock or sets a Node timer', () => {
    const src = path.resolve(__dirname, '../../../src');
    const files = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : []));
    })(src);
    const found: string[] = [];
    for (const f of files) {
      const rel = path.relative(src, f).split(path.sep).join('/');
      if (Object.keys(ALLOWED).some((a) => (a.endsWith('/') ? rel.startsWith(a) : rel === a))) continue;
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (RAW.test(line) && !/^\s*(\/\/|\*)/.test(line)) found.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(found, []);
  });

  it('every file allowed still reads the process clock or sets a Node timer (a stale reason is a wrong one)', () => {
    const src = path.resolve(__dirname, '../../../src');
    const stale = Object.keys(ALLOWED).filter((a) => !a.endsWith('/') && !readFileSync(path.join(src, a), 'utf8').split('\n').some((line) => RAW.test(line) && !/^\s*(\/\/|\*)/.test(line)));
    assert.deepEqual(stale, []);
  });
});

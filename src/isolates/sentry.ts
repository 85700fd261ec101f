import { Worker } from 'node:worker_threads';

/**
 * A watch over inline entries (policy code run on the sandbox process's own
 * thread) kept by a second thread, since a hung inline entry holds the one
 * that would notice. What V8 cannot interrupt — one allocation larger than
 * any heap limit hangs a synchronous entry for good (docs/design.md, "Hazards we design around") — would stop
 * every tenant of the process; the sentry sees an entry that has not
 * returned in its time, names the tenant to the core on the channel (fd 3),
 * and kills the process, which the core restarts as after any crash.
 *
 * Shared state, written by the main thread around each inline entry:
 * Int32 [0] entry sequence, [1] 1 while an entry runs, [2] its limit in ms,
 * [3] byte length of the tenant name at byte 16.
 */
const NAME_AT = 16;
const NAME_MAX = 240;
const encoder = new TextEncoder();

const state = {
  ints: undefined as Int32Array | undefined,
  bytes: undefined as Uint8Array | undefined,
  worker: undefined as Worker | undefined,
  seq: 0,
  tenant: '',
};

/** Start the watching thread. `fd` is the channel's socket to the core, where it writes `{ t: 'fatal', tenant, message }`. */
export function startSentry(fd: number): void {
  if (state.worker) return;
  const sab = new SharedArrayBuffer(NAME_AT + NAME_MAX);
  state.ints = new Int32Array(sab, 0, 4);
  state.bytes = new Uint8Array(sab, NAME_AT, NAME_MAX);
  state.worker = new Worker(SENTRY_SOURCE, {
    eval: true,
    workerData: { sab, fd, nameAt: NAME_AT, channel: require.resolve('./channel') },
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, codeRangeSizeMb: 2, stackSizeMb: 1 },
    env: {},
    stdout: false,
    stderr: false,
  });
  state.worker.unref();
}

/** An inline entry for `tenant` starts; it must return within `limitMs`. */
export function inlineBegin(tenant: string, limitMs: number): void {
  const ints = state.ints;
  if (!ints) return;
  if (tenant !== state.tenant) {
    state.tenant = tenant;
    const { written } = encoder.encodeInto(tenant, state.bytes!);
    Atomics.store(ints, 3, written);
  }
  Atomics.store(ints, 2, Math.ceil(limitMs));
  Atomics.store(ints, 0, ++state.seq);
  Atomics.store(ints, 1, 1);
}

export function inlineEnd(): void {
  if (state.ints) Atomics.store(state.ints, 1, 0);
}

const TICK_MS = 50;

// The watching thread: a plain loop on a timer. Its frame is the channel's
// own (genericFrame); if the stuck thread had left a frame half-written on the
// socket, the core sees a broken channel instead and blames the tenant whose
// call has run longest.
const SENTRY_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { genericFrame } = require(workerData.channel);
const TICK_MS = ${TICK_MS};
const ints = new Int32Array(workerData.sab, 0, 4);
const name = new Uint8Array(workerData.sab, workerData.nameAt);
let seen = 0, ticks = 0;
setInterval(() => {
  if (Atomics.load(ints, 1) === 0) { seen = 0; return; }
  const seq = Atomics.load(ints, 0);
  if (seq !== seen) { seen = seq; ticks = 0; return; }
  // Time is counted in this thread's own ticks, not read from a clock: a VM
  // paused for seconds (every thread with it) is then one late tick, not a hang.
  if (++ticks * TICK_MS <= Atomics.load(ints, 2)) return;
  const tenant = new TextDecoder().decode(name.slice(0, Atomics.load(ints, 3)));
  const message = 'an inline policy entry did not return within ' + Atomics.load(ints, 2) + ' ms';
  try {
    writeSync(workerData.fd, genericFrame({ t: 'fatal', tenant, message }));
  } catch {}
  process.kill(process.pid, 'SIGKILL');
}, TICK_MS);
`;

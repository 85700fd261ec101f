import * as path from 'node:path';
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
/** How often the watching thread (sentry.worker.ts) looks. */
const TICK_MS = 50;
const encoder = new TextEncoder();

/** What the watching thread is started with (its workerData). */
export interface SentryData {
  sab: SharedArrayBuffer;
  /** The channel's socket to the core. */
  fd: number;
  /** Byte offset of the tenant name in `sab`. */
  nameAt: number;
  tickMs: number;
}

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
  const data: SentryData = { sab, fd, nameAt: NAME_AT, tickMs: TICK_MS };
  state.worker = new Worker(path.join(__dirname, 'sentry.worker.js'), {
    workerData: data,
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

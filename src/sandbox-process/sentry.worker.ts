/**
 * The sentry's watching thread (see sentry.ts), a worker of the sandbox
 * process: a plain loop on a timer. Its frame is the channel's own
 * (genericFrame); if the stuck thread had left a frame half-written on the
 * socket, the core sees a broken channel instead and blames the tenant whose
 * call has run longest.
 */
import { writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { genericFrame } from '../sandbox-protocol/channel';
import type { FromSandbox } from '../sandbox-protocol/messages';
import type { SentryData } from './sentry';

const { sab, fd, nameAt, tickMs } = workerData as SentryData;
const ints = new Int32Array(sab, 0, 4);
const name = new Uint8Array(sab, nameAt);
let seen = 0;
let ticks = 0;
setInterval(() => {
  if (Atomics.load(ints, 1) === 0) {
    seen = 0;
    return;
  }
  const seq = Atomics.load(ints, 0);
  if (seq !== seen) {
    seen = seq;
    ticks = 0;
    return;
  }
  // Time is counted in this thread's own ticks, not read from a clock: a VM
  // paused for seconds (every thread with it) is then one late tick, not a hang.
  if (++ticks * tickMs <= Atomics.load(ints, 2)) return;
  const tenant = new TextDecoder().decode(name.slice(0, Atomics.load(ints, 3)));
  const fatal: FromSandbox = { t: 'fatal', tenant, message: `an inline policy entry did not return within ${Atomics.load(ints, 2)} ms` };
  try {
    writeSync(fd, genericFrame(fatal));
  } catch {
    // The core is gone or the socket broken: the kill below is what matters.
  }
  process.kill(process.pid, 'SIGKILL');
}, tickMs);

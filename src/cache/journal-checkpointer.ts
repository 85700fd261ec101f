import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

/** What the checkpoint thread is given. */
export interface CheckpointerData {
  file: string;
  /** Int32[0]: 1 when something was committed since the last checkpoint; Int32[1]: 1 while a RESTART checkpoint wants the write lock. */
  sab: SharedArrayBuffer;
  everyMs: number;
  walLimitBytes: number;
  /** WAL frames (pages) past which the WAL is started over (see the worker). */
  restartFrames: number;
}

/** How often the thread looks whether there is something to checkpoint. */
const EVERY_MS = 100;
/** The WAL file is truncated back to this when it is started over (SQLite's journal_size_limit; forward-sqlite.ts sets it on the writer). */
export const WAL_LIMIT_BYTES = 16 * 1024 * 1024;
/** The WAL is started over once it holds this many frames (4 KiB pages: 16 MiB), as SQLite's own auto-checkpoint does at 1,000. */
const RESTART_FRAMES = 4096;

/**
 * WAL checkpoints of the journal on a thread of their own
 * (journal-checkpointer.worker.ts). `wrote` is what a commit pays: one
 * atomic store, no message between threads.
 */
export interface Checkpointer {
  /** A commit happened: there is something to checkpoint. */
  wrote(): void;
  /** True while the thread waits for the write lock to start the WAL over: a writer should leave it the lock. */
  wantsLock(): boolean;
  close(): Promise<void>;
}

export function startCheckpointer(file: string, onError: (message: string) => void): Checkpointer {
  const sab = new SharedArrayBuffer(8);
  const flag = new Int32Array(sab);
  const data: CheckpointerData = { file, sab, everyMs: EVERY_MS, walLimitBytes: WAL_LIMIT_BYTES, restartFrames: RESTART_FRAMES };
  // A thread that runs one pragma: the smallest V8 heap that holds it.
  const worker = new Worker(path.join(__dirname, 'journal-checkpointer.worker.js'), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, codeRangeSizeMb: 2, stackSizeMb: 1 },
    stdout: false,
    stderr: false,
    env: {},
  });
  worker.unref();
  let closing: Promise<void> | undefined;
  worker.on('message', (m: { t: string; message?: string }) => {
    if (m.t === 'error') onError(m.message ?? 'checkpoint failed');
  });
  worker.on('error', (err) => onError(err.message));
  return {
    wrote() {
      Atomics.store(flag, 0, 1);
    },
    wantsLock() {
      return Atomics.load(flag, 1) === 1;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.once('message', (m: { t: string }) => {
          if (m.t === 'closed') void worker.terminate();
        });
        worker.postMessage({ t: 'close' });
      });
      return closing;
    },
  };
}

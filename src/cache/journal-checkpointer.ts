import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

/** What the checkpoint thread is given. */
export interface CheckpointerData {
  file: string;
  /** Int32[0]: 1 when something was committed since the last checkpoint. */
  sab: SharedArrayBuffer;
  everyMs: number;
  walLimitBytes: number;
}

/** How often the thread looks whether there is something to checkpoint. */
const EVERY_MS = 100;
/** The WAL file is truncated back to this after a checkpoint that emptied it (SQLite's journal_size_limit). */
const WAL_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * WAL checkpoints of the journal on a thread of their own
 * (journal-checkpointer.worker.ts). `wrote` is what a commit pays: one
 * atomic store, no message between threads.
 */
export function startCheckpointer(file: string, onError: (message: string) => void): { wrote(): void; close(): Promise<void> } {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  const data: CheckpointerData = { file, sab, everyMs: EVERY_MS, walLimitBytes: WAL_LIMIT_BYTES };
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

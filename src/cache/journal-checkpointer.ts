import { statSync } from 'node:fs';
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
  /** The file the thread keeps while it waits to start the WAL over, for other processes' writers (restartMarkerOf). */
  marker: string;
}

/** How often the thread looks whether there is something to checkpoint. */
const EVERY_MS = 100;
/** The WAL file is truncated back to this when it is started over (SQLite's journal_size_limit; forward-sqlite.ts sets it on the writer). */
export const WAL_LIMIT_BYTES = 16 * 1024 * 1024;
/** The WAL is started over once it holds this many frames (4 KiB pages: 16 MiB), as SQLite's own auto-checkpoint does at 1,000. */
const RESTART_FRAMES = 4096;
/** How often a writer looks for another process's restart marker, at most. */
const MARKER_LOOK_MS = 5;
/** A marker older than this is a process that died in its restart: ignored. */
const MARKER_STALE_MS = 3000;

/**
 * The file that says a checkpoint thread, of any process, waits for the
 * write lock to start the WAL over (see the worker): its own process's
 * writers see the shared flag, other processes' writers see this.
 */
export function restartMarkerOf(file: string): string {
  return `${file}-restart`;
}

/**
 * WAL checkpoints of the journal on a thread of their own
 * (journal-checkpointer.worker.ts). `wrote` is what a commit pays: one
 * atomic store, no message between threads.
 */
export interface Checkpointer {
  /** A commit happened: there is something to checkpoint. */
  wrote(): void;
  /** True while this process's thread, or another process's (its marker file), waits for the write lock to start the WAL over: a writer should leave it the lock. */
  wantsLock(): boolean;
  close(): Promise<void>;
}

export function startCheckpointer(file: string, onError: (message: string) => void): Checkpointer {
  const sab = new SharedArrayBuffer(8);
  const flag = new Int32Array(sab);
  const data: CheckpointerData = { file, sab, everyMs: EVERY_MS, walLimitBytes: WAL_LIMIT_BYTES, restartFrames: RESTART_FRAMES, marker: restartMarkerOf(file) };
  // A thread that runs one pragma: the smallest V8 heap that holds it.
  const worker = new Worker(path.join(__dirname, 'journal-checkpointer.worker.js'), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, codeRangeSizeMb: 2, stackSizeMb: 1 },
    stdout: false,
    stderr: false,
    env: {},
  });
  worker.unref();
  // Another process's checkpoint thread waiting to start the WAL over: its marker, looked at every
  // MARKER_LOOK_MS at most (a stat), so a writer that commits back to back leaves it the lock too.
  const marker = data.marker;
  let lookedAt = -Infinity;
  let markerSeen = false;
  const elsewhere = (): boolean => {
    const now = performance.now();
    if (now - lookedAt < MARKER_LOOK_MS) return markerSeen;
    lookedAt = now;
    try {
      markerSeen = Date.now() - statSync(marker).mtimeMs < MARKER_STALE_MS;
    } catch {
      markerSeen = false;
    }
    return markerSeen;
  };
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
      return Atomics.load(flag, 1) === 1 || elsewhere();
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

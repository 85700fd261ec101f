import Database from 'better-sqlite3';
import { rmSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { CheckpointerData } from './journal-checkpointer';

/*
 * The journal's checkpoint thread (journal-checkpointer.ts starts it). A WAL
 * checkpoint copies committed pages back into the database file and fsyncs
 * it: milliseconds that must not be the event loop's, where the journal
 * commits. Its own connection, the same SQLite library as the committing one
 * (better-sqlite3 in this process), so the file's locks are shared correctly.
 */

const data = workerData as CheckpointerData;
const flag = new Int32Array(data.sab);
const db = new Database(data.file, { timeout: 1000 });
db.pragma(`journal_size_limit = ${data.walLimitBytes}`);

/*
 * A PASSIVE checkpoint copies what it can without holding up the writer, but
 * under steady writes it is never complete (new frames arrive as it copies),
 * and only a complete one lets the writer start the WAL over: the WAL would
 * grow for as long as traffic lasts (measured: 265 MB in 9 s at full rate).
 * So once the WAL holds restartFrames, a RESTART checkpoint copies the few
 * frames PASSIVE left and waits for the writer to start the log over. It
 * holds new writes back while it does, and it says so first (Int32[1]): a
 * writer that commits back to back would otherwise never leave it the lock.
 * The committing side then waits with its event loop free (forward-sqlite.ts).
 * Writers of other processes on the same file (replicas sharing it, a
 * tool) cannot see the flag, so the thread also keeps a marker file
 * meanwhile: with two processes writing back to back, a restart that only
 * its own writers left room for got in so rarely that the WAL reached
 * 495 MB (test/cache/forward-store.test.ts).
 */
function checkpoint(): void {
  // Clear the flag first: a commit after this point asks for the next round.
  if (Atomics.exchange(flag, 0, 0) === 0) return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (r !== undefined && r.log >= data.restartFrames) {
      Atomics.store(flag, 1, 1);
      // Other processes' writers on this file do not see the flag: they look for this file.
      let marked = false;
      try {
        writeFileSync(data.marker, String(process.pid));
        marked = true;
      } catch {
        // A directory we cannot write to: the other processes' writers will not wait, ours still do.
      }
      try {
        db.pragma('wal_checkpoint(RESTART)');
      } finally {
        Atomics.store(flag, 1, 0);
        if (marked) rmSync(data.marker, { force: true });
      }
    }
  } catch (err) {
    // Tried again next round. Busy is another replica's checkpoint at work, not worth a word.
    Atomics.store(flag, 0, 1);
    const code = String((err as { code?: unknown }).code ?? '');
    if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) parentPort?.postMessage({ t: 'error', message: (err as Error).message });
  }
}

// The thread's own pace, on the real clock: nothing of a test's manual clock reaches a worker.
const timer = setInterval(checkpoint, data.everyMs);
parentPort?.on('message', (m: { t: string }) => {
  if (m.t !== 'close') return;
  clearInterval(timer);
  Atomics.store(flag, 0, 1);
  checkpoint();
  db.close();
  parentPort?.postMessage({ t: 'closed' });
});

import Database from 'better-sqlite3';
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

function checkpoint(): void {
  // Clear the flag first: a commit after this point asks for the next round.
  if (Atomics.exchange(flag, 0, 0) === 0) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
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

/**
 * IPC messages between the core and a sandbox process, batched: everything
 * sent in one turn of the event loop goes as one message. Serialising and
 * writing a channel message costs about the same for one small PDU as for
 * dozens, so batching is what lets the sandbox keep up with a full window.
 */
export interface Batch<T> {
  t: 'batch';
  ms: T[];
}

const MAX_BATCH = 256;

export class IpcBatcher<T> {
  private queue: T[] = [];
  private scheduled = false;

  /**
   * `microtask`: flush after the current run (the core: everything one TCP
   * read produced). `immediate`: flush once per loop turn (a sandbox: its
   * outcomes arrive one isolate completion at a time).
   */
  constructor(
    private readonly write: (batch: Batch<T>) => boolean,
    private readonly mode: 'microtask' | 'immediate' = 'microtask',
  ) {}

  send(m: T): void {
    this.queue.push(m);
    if (this.queue.length >= MAX_BATCH) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      // After the current run and its microtasks: everything one TCP read or one
      // IPC batch produced leaves together, without waiting a loop turn.
      this.scheduled = true;
      const run = (): void => {
        this.scheduled = false;
        this.flush();
      };
      if (this.mode === 'microtask') queueMicrotask(run);
      else setImmediate(run);
    }
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const ms = this.queue;
    this.queue = [];
    this.write({ t: 'batch', ms });
  }

  /** Drop whatever is queued (the other side is gone). */
  clear(): void {
    this.queue = [];
  }
}

/** Unpack a batch, or pass a single message through. */
export function unbatch<T>(m: T | Batch<T>, each: (m: T) => void): void {
  if (m && typeof m === 'object' && (m as Batch<T>).t === 'batch') for (const x of (m as Batch<T>).ms) each(x);
  else each(m as T);
}

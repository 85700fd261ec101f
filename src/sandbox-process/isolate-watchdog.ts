/**
 * The V8 timeout should always fire; this catches what it cannot stop: an
 * isolate with entries in flight that has not finished one for far longer
 * than handler_timeout_ms is disposed. One sweep for every isolate of the
 * process, not a timer per entry (an entry costs tens of µs as it is).
 */

/** What the watchdog reads of an isolate (PolicyIsolate). */
export interface Watched {
  /** Entries not yet returned. */
  readonly inFlight: number;
  /** When an entry last returned, or one started on an idle isolate (performance.now()). */
  readonly progressAt: number;
  readonly isDisposed: boolean;
  readonly limits: { readonly timeoutMs: number };
  dispose(): void;
}

const isolates = new Set<Watched>();
let timer: NodeJS.Timeout | undefined;

/** Watch an isolate while it has entries in flight (it leaves the watch by itself once it has none). */
export function watch(iso: Watched): void {
  isolates.add(iso);
  timer ??= setInterval(sweep, 250).unref();
}

function sweep(): void {
  const now = performance.now();
  for (const iso of isolates) {
    if (iso.inFlight === 0 || iso.isDisposed) isolates.delete(iso);
    else if (now - iso.progressAt > iso.limits.timeoutMs * 20 + 2000) iso.dispose();
  }
  if (isolates.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

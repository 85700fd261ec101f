/**
 * Making isolates, and keeping one warm. A new isolate gets its context, the
 * two narrow callbacks the prelude captures (`__sluice_send`,
 * `__sluice_view`) and the prelude (given by the caller: PDU view module and
 * prelude, no tenant's anything), then waits for a tenant's start to take it.
 * Sandbox processes keep one made ahead of need, in a quiet moment, so a
 * cold start does not pay for it.
 */
import ivm from 'isolated-vm';
import { route, type IsolateHooks } from './isolate-hooks';

/** Where an isolate's callbacks and catastrophic error go; set by whoever takes the isolate. */
export interface Relay {
  hooks?: IsolateHooks;
  fatal?: (message: string) => void;
}

export type EntryRef = ivm.Reference<(args: [string, number, unknown?, unknown?]) => unknown>;

export interface Fresh {
  isolate: ivm.Isolate;
  /** Its heap limit. */
  memoryMb: number;
  /** Its one context: the prelude only, no tenant yet. */
  context: ivm.Context;
  relay: Relay;
  /** Once the prelude has run: its entry function, taken off the global object. */
  entry: Promise<EntryRef>;
  /** The same, once known. */
  ref?: EntryRef;
}

/**
 * A new isolate with the PDU view module and the prelude run in its context,
 * not yet given to a tenant (the `boot` entry does that). The prelude runs on
 * the isolate's own thread: this thread is held only for the isolate and its
 * empty context (~1.5 ms).
 */
function makeIsolate(memoryMb: number, prelude: () => string): Fresh {
  const relay: Relay = {};
  const isolate = new ivm.Isolate({
    memoryLimit: memoryMb,
    // One allocation larger than any heap limit (`new Array(6e7).fill(0)`) is
    // an out-of-memory V8 cannot survive. Without this handler isolated-vm
    // aborts the process, naming no one; with it, that isolate's thread
    // stops for good and we hear of it here, so the sandbox can say which
    // tenant it was before it exits. It takes an entry on the isolate's own
    // thread to be heard: in an inline entry the thread that stops is this
    // one, and the sentry's watch takes over (see PolicyIsolate's `enterInline`).
    onCatastrophicError: (message: string) => relay.fatal?.(String(message)),
  });
  const context = isolate.createContextSync();
  const jail = context.global;
  // Nothing runs in the isolate yet: these return at once.
  jail.setSync(
    '__sluice_send',
    new ivm.Callback(
      (op: string, _id: number, data: unknown) => {
        if (op === 'batch' && Array.isArray(data) && relay.hooks) route(relay.hooks, data);
      },
      { ignored: true },
    ),
  );
  jail.setSync('__sluice_view', new ivm.Callback((name: string) => (relay.hooks ? relay.hooks.view(String(name)) : '[]')));
  const fresh: Fresh = {
    isolate,
    memoryMb,
    context,
    relay,
    entry: context.eval(prelude(), { filename: '<sluice>', timeout: 1000 }).then(async () => {
      const ref = (await jail.get('__sluice_enter', { reference: true })) as EntryRef;
      await jail.delete('__sluice_enter');
      return (fresh.ref = ref);
    }),
  };
  // A spare disposed unused rejects here; whoever takes the isolate awaits `entry` itself.
  fresh.entry.catch(() => undefined);
  return fresh;
}

/**
 * One isolate made ahead of need for the next cold start: a new isolate and
 * its context hold this thread for ~1.5 ms, and the prelude takes its own
 * thread another 1-2 ms; together a third of a cold start. It is made in a
 * quiet moment after a start is over, for the memory limit last asked for,
 * and holds only our own code (the PDU view module and the prelude, no
 * tenant's name, config or code) until a tenant's start takes it.
 */
const spare = {
  /** Only sandbox processes keep one (they end by exit() or SIGKILL; see `keepSpareIsolate`). */
  enabled: false,
  made: undefined as Fresh | undefined,
  timer: undefined as NodeJS.Timeout | undefined,
};

/**
 * Keep an isolate made ahead of need (on in sandbox processes), or stop and
 * drop the one kept. A process that runs policies in-process (the test
 * harness, tests) has no use for it, and isolated-vm 5 can abort a process
 * that ends by draining its event loop while one of its handles is still
 * awaiting collection: a spare made just before the end makes that likelier.
 */
export function keepSpareIsolate(on: boolean): void {
  spare.enabled = on;
  if (on) return;
  if (spare.timer) clearTimeout(spare.timer);
  spare.timer = undefined;
  const s = spare.made;
  spare.made = undefined;
  if (s && !s.isolate.isDisposed) s.isolate.dispose();
}

/** A spare is made once no entry has returned for this long… */
const SPARE_QUIET_MS = 3;
/** …or this long after the start that took the last one, whatever the traffic. */
const SPARE_LATEST_MS = 100;
/** When an entry into any isolate of this process last returned (performance.now()). */
let lastEntryAt = 0;

/** An entry into an isolate of this process returned at `at` (performance.now()): not a quiet moment. */
export function entryReturned(at: number): void {
  lastEntryAt = at;
}

/** The isolate made ahead of need, if any: its heap limit and whether its prelude has run. */
export function spareIsolate(): { memoryMb: number; ready: boolean } | undefined {
  const s = spare.made;
  return s && !s.isolate.isDisposed ? { memoryMb: s.memoryMb, ready: s.ref !== undefined } : undefined;
}

/** An isolate for a start: the spare if it has this memory limit, else a new one. */
export function takeIsolate(memoryMb: number, prelude: () => string): Fresh {
  const s = spare.made;
  spare.made = undefined;
  if (s && s.memoryMb === memoryMb && !s.isolate.isDisposed) return s;
  if (s && !s.isolate.isDisposed) s.isolate.dispose();
  return makeIsolate(memoryMb, prelude);
}

/**
 * Make the next spare once a start is over, in a quiet moment: making one
 * holds this thread for ~1.5 ms, which should not land on the first PDUs of
 * the tenant that just started (or on anyone's traffic) when it can wait.
 */
export function replaceSpare(memoryMb: number, prelude: () => string): void {
  if (!spare.enabled) return;
  if (spare.timer) clearTimeout(spare.timer);
  const latest = performance.now() + SPARE_LATEST_MS;
  const attempt = (): void => {
    const now = performance.now();
    if (now - lastEntryAt < SPARE_QUIET_MS && now < latest) {
      spare.timer = setTimeout(attempt, SPARE_QUIET_MS).unref();
      return;
    }
    spare.timer = undefined;
    spare.made ??= makeIsolate(memoryMb, prelude);
  };
  spare.timer = setTimeout(attempt, SPARE_QUIET_MS).unref();
}

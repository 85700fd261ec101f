/**
 * The Sluice prelude: it runs first in every tenant isolate, before the
 * tenant's policy, and builds the only three things a policy can reach:
 * `smpp`, `cache` and `log` (sandbox/sluice.d.ts). This is its entry module;
 * src/policy-compiler/prelude-bundle.ts bundles it with the modules it
 * imports into one script, which src/sandbox-process/warm-isolate.ts runs
 * in the isolate's context right after the PDU view's
 * (src/policy-compiler/pdu-bundle.ts). The modules load in that script, so
 * everything they capture (host.ts, intrinsics.ts) and remove (lockdown.ts)
 * is done before any tenant code can run.
 *
 * It runs in two steps. The script runs in an isolate made ahead of need,
 * before anyone knows which tenant will take it; the first entry, `boot`,
 * gives it its tenant (a JSON boot record: name, config, routing, limits)
 * and only then are `smpp`, `cache` and `log` put on the global object.
 *
 * The host enters the isolate only through `__sluice_enter`, which this
 * module defines and the host takes and deletes before tenant code runs.
 * Every entry is a timed call, so all tenant code runs under the per-call
 * CPU timeout (docs/design.md, "Hazards we design around"; SECURITY.md,
 * "Tenant policies: what holds today").
 *
 * These modules run inside the isolate, not in Node: src/isolate/tsconfig.json
 * type-checks them against the isolate's globals only (ES2022, no Node, no
 * DOM), and they import nothing but each other at run time.
 */
import './lockdown';
import { cache } from './cache';
import { dispatch, dispatchFrames, failure } from './dispatch';
import { beginEntry, endEntry, send, type Item } from './host';
import { resolveCall } from './host-call';
import { defineProperty, parse } from './intrinsics';
import { log, startLog } from './log';
import type { DispatchKind } from './replies';
import { makeSmpp } from './smpp';
import { boot, setBoot, type Boot } from './tenant';

const globals = globalThis;

/** The first entry: which tenant this isolate is for. Once only, before any tenant code. */
function start(json: string): void {
  if (boot !== null) return;
  const b = parse(json) as Boot;
  setBoot(b);
  startLog();
  const smpp = makeSmpp(b);
  defineProperty(globals, 'smpp', { value: smpp, writable: false, configurable: false, enumerable: true });
  defineProperty(globals, 'cache', { value: cache, writable: false, configurable: false, enumerable: true });
  defineProperty(globals, 'log', { value: log, writable: false, configurable: false, enumerable: true });
}

/**
 * What the host passes an entry, as one array (the host copies one array in,
 * not four values): `src/sandbox-process/policy-isolate.ts` makes each.
 */
type Entry =
  | [type: 'boot', id: 0, json: string]
  | [type: 'dispatch', id: number, kind: DispatchKind, payload: unknown]
  /** [[id, kind, payload], …]: several dispatches in one entry. */
  | [type: 'dispatchMany', id: 0, items: [number, DispatchKind, unknown][]]
  /** PDUs as raw frames: `dispatchFrames`'s arguments. */
  | [type: 'frames', id: 0, bytes: Uint8Array, rest: [items: number[], sessions: unknown[]]]
  | [type: 'resolve', id: number, ok: boolean, value: unknown]
  /** [[call id, ok, value], …]: host call results that arrived together. */
  | [type: 'resolveMany', id: 0, items: [number, boolean, unknown][]];

// Nothing thrown may leave an entry: isolated-vm copies a thrown value after
// the timed part, so a thrown object with a looping getter would spin with
// no timeout (and the sandbox's main thread was seen stuck behind it).
// Whatever a policy manages to throw through the prelude is read here, timed.
defineProperty(globals, '__sluice_enter', {
  value: function enter(args: Entry): Item[] | undefined {
    const type = args[0];
    const id = args[1];
    const a = args[2];
    const b = args[3];
    if (type === 'boot') {
      start(a as string);
      return undefined;
    }
    beginEntry();
    try {
      if (type === 'dispatch') dispatch(id, a as DispatchKind, b);
      else if (type === 'dispatchMany') {
        const items = a as [number, DispatchKind, unknown][];
        for (let i = 0; i < items.length; i++) {
          const item = items[i]!;
          try {
            dispatch(item[0], item[1], item[2]);
          } catch (e) {
            try {
              send('result', item[0], failure(e));
            } catch (_) {
              /* the host settles it at the deadline */
            }
          }
        }
      } else if (type === 'frames') {
        const rest = b as [number[], unknown[]];
        dispatchFrames(a as Uint8Array, rest[0], rest[1]);
      } else if (type === 'resolve') resolveCall(id, a as boolean, b);
      else if (type === 'resolveMany') {
        const items = a as [number, boolean, unknown][];
        for (let i = 0; i < items.length; i++) {
          const item = items[i]!;
          try {
            resolveCall(item[0], item[1], item[2]);
          } catch (_) {
            /* a policy's broken built-ins: its awaiting handler settles at the deadline */
          }
        }
      }
    } catch (e) {
      if (type === 'dispatch') {
        try {
          send('result', id, failure(e));
        } catch (_) {
          /* the host settles it at the deadline */
        }
      }
    }
    return endEntry();
  },
  configurable: true,
  writable: false,
  enumerable: false,
});

import { bundleModules } from './isolate-bundle';

/**
 * The prelude: the script that runs first in every tenant isolate, right
 * after the PDU view's (pdu-bundle.ts), and builds `smpp`, `cache` and
 * `log`. Its sources are the modules of src/isolate/ (prelude.ts is the
 * entry and says what the script does); this bundles their compiled output
 * (dist/src/isolate/) into one script. Running it leaves one function on the
 * global object, `__sluice_enter`, which the host takes and deletes before
 * tenant code runs (src/sandbox-process/warm-isolate.ts).
 */

/** Every module of src/isolate/, by the name `require` gives it (the suite checks the list is the folder). */
export const PRELUDE_MODULES = ['intrinsics', 'host', 'lockdown', 'tenant', 'plain', 'host-call', 'replies', 'pdu-view', 'handlers', 'log', 'smpp', 'cache', 'dispatch', 'prelude'] as const;

let bundle: string | undefined;

export function preludeBundle(): string {
  return (bundle ??= bundleModules(Object.fromEntries(PRELUDE_MODULES.map((name) => [name, `isolate/${name}.js`])), "require('./prelude');"));
}

import { viewTables } from '../wire/codec';
import { bundleModules } from './isolate-bundle';

/**
 * The script that gives every tenant isolate `decodeView` (src/pdu/view.ts):
 * the compiled view module and the pure modules it imports, bundled by
 * isolate-bundle.ts, and npm `smpp`'s field layouts as a JSON literal. It
 * runs before the prelude (prelude-bundle.ts) and leaves one function on the
 * global object, `__sluice_pdu(bytes)`, which the prelude captures and
 * deletes. Nothing in it touches the host:
 * these modules use no Node API (view.test.ts checks the view equals the
 * core's; the isolate tests check it runs there).
 */

/** Module name (as `require` names it, without the path) → compiled file, relative to dist/src. */
const MODULES: Record<string, string> = {
  errors: 'errors.js',
  gsm7: 'pdu/gsm7.js',
  text: 'pdu/text.js',
  udh: 'pdu/udh.js',
  dlr: 'pdu/dlr.js',
  'frame-walk': 'wire/frame-walk.js',
  view: 'pdu/view.js',
};

let bundle: string | undefined;

export function pduBundle(): string {
  return (bundle ??= bundleModules(
    MODULES,
    `// Loaded now, as the isolate starts and before any tenant code: on a cold
// start this runs on the isolate's thread while the policy compiles on the
// sandbox's, and the first PDU does not pay for it. A load that fails fails
// the isolate's start.
const decodeView = require('../pdu/view').decodeView;
const tables = JSON.parse(${JSON.stringify(JSON.stringify(viewTables()))});
global.__sluice_pdu = function (bytes, View) {
  return decodeView(bytes, tables, View);
};`,
  ));
}

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { viewTables } from '../wire/codec';

/**
 * The script that gives every tenant isolate `decodeView` (src/pdu/view.ts):
 * the compiled view module and the pure modules it imports, each wrapped as
 * a CommonJS function, with a `require` that resolves only among them, and
 * npm `smpp`'s field layouts as a JSON literal. It runs before the prelude
 * and leaves one function on the global object, `__sluice_pdu(bytes)`,
 * which the prelude captures and deletes. Nothing in it touches the host:
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
  if (bundle !== undefined) return bundle;
  const root = path.join(__dirname, '..');
  const defs = Object.entries(MODULES).map(([name, file]) => {
    const js = readFileSync(path.join(root, file), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
    return `${JSON.stringify(name)}: function (exports, require) {\n${js}\n}`;
  });
  bundle = `(function (global) {
'use strict';
const defs = {
${defs.join(',\n')}
};
const done = Object.create(null);
function require(name) {
  const key = name.slice(name.lastIndexOf('/') + 1);
  if (done[key]) return done[key];
  const def = defs[key];
  if (!def) throw new Error('module ' + name + ' is not available in a policy');
  const exports = {};
  done[key] = exports;
  def(exports, require);
  return exports;
}
// Loaded now, as the isolate starts and before any tenant code: on a cold
// start this runs on the isolate's thread while the policy compiles on the
// sandbox's, and the first PDU does not pay for it. A load that fails fails
// the isolate's start.
const decodeView = require('../pdu/view').decodeView;
const tables = JSON.parse(${JSON.stringify(JSON.stringify(viewTables()))});
global.__sluice_pdu = function (bytes, View) {
  return decodeView(bytes, tables, View);
};
})(globalThis);
`;
  return bundle;
}

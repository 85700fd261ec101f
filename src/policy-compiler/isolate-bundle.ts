import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * One script for inside an isolate, made of compiled modules: each module's
 * CommonJS output (as tsc wrote it under dist/src/) wrapped as a function,
 * with a `require` that resolves only among them, then `main`, which runs
 * with `require` and `global` (the isolate's global object) in scope. The
 * PDU view (pdu-bundle.ts) and the prelude (prelude-bundle.ts) are each one.
 *
 * Every module a listed module requires must be listed too: this throws,
 * naming it, when one is not (a Node module, or a file outside the bundle),
 * rather than leaving the isolate to fail as it loads. The modules load when
 * `main` requires them, as the script runs and before any tenant code; the
 * loader is unreachable afterwards.
 */
export function bundleModules(modules: Readonly<Record<string, string>>, main: string): string {
  const root = path.join(__dirname, '..');
  const defs = Object.entries(modules).map(([name, file]) => {
    const js = readFileSync(path.join(root, file), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
    for (const m of js.matchAll(/\brequire\("([^"]*)"\)/g)) {
      if (!Object.hasOwn(modules, moduleKey(m[1]!))) throw new Error(`${file} requires "${m[1]}", which is not available in an isolate`);
    }
    return `${JSON.stringify(name)}: (function (exports, require) {\n${js}\n})`;
  });
  return `(function (global) {
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
${main}
})(globalThis);
`;
}

/** The name a module is listed under: its file name, as `require` gives it (`../pdu/view` → `view`). */
function moduleKey(spec: string): string {
  return spec.slice(spec.lastIndexOf('/') + 1);
}

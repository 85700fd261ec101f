/** The prelude as one script: every module of src/isolate/, requiring nothing but each other. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { bundleModules } from '../../src/policy-compiler/isolate-bundle';
import { PRELUDE_MODULES, preludeBundle } from '../../src/policy-compiler/prelude-bundle';

const ROOT = path.resolve(__dirname, '../../..');

describe('preludeBundle', () => {
  it('bundles every module of src/isolate/, and no other', () => {
    const sources = readdirSync(path.join(ROOT, 'src/isolate'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3));
    assert.deepEqual([...PRELUDE_MODULES].sort(), sources.sort());
  });

  it("the modules' compiled output requires only modules of the bundle", () => {
    for (const name of PRELUDE_MODULES) {
      const js = readFileSync(path.join(ROOT, 'dist/src/isolate', `${name}.js`), 'utf8');
      for (const m of js.matchAll(/\brequire\("([^"]*)"\)/g)) {
        assert.ok(m[1]!.startsWith('./') && (PRELUDE_MODULES as readonly string[]).includes(m[1]!.slice(2)), `${name}.js requires ${m[1]}`);
      }
    }
  });

  it('is one script: its modules, each wrapped, then the entry module required', () => {
    const script = preludeBundle();
    assert.equal(preludeBundle(), script, 'built once');
    for (const name of PRELUDE_MODULES) assert.ok(script.includes(`${JSON.stringify(name)}: (function (exports, require) {`), name);
    assert.match(script, /require\('\.\/prelude'\);\n\}\)\(globalThis\);\n$/);
    assert.doesNotMatch(script, /sourceMappingURL/);
    // A script, not a module: it parses as one (the isolate runs it with context.eval).
    assert.doesNotThrow(() => new Function(script));
  });

  it('a module that requires anything outside the bundle is refused, named, when the script is made', () => {
    assert.throws(() => bundleModules({ 'pdu-bundle': 'policy-compiler/pdu-bundle.js' }, ''), /policy-compiler\/pdu-bundle\.js requires "\.\.\/wire\/codec", which is not available in an isolate/);
  });
});

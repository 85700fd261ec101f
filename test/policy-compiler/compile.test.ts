/** compilePolicy: TypeScript and JavaScript to one script, its rules, its cache, its diagnostics at line:column. */
import assert from 'node:assert/strict';
import * as vm from 'node:vm';
import { before, describe, it } from 'node:test';
import { clearCompileCache, compileCacheStats, compilePolicy, configureCompileCache } from '../../src/policy-compiler/compile';
import '../helpers/ivm-teardown';
import { read, ok, errors, positionOf } from '../helpers/policy-fixtures';

describe('compilePolicy', () => {
  before(() => clearCompileCache());

  it('compiles a TypeScript policy to an ES2022 strict script with no module syntax', () => {
    const r = ok(compilePolicy(read('gateway.ts.txt'), 'gateway.ts'));
    assert.match(r.js, /^"use strict";\n/);
    assert.doesNotMatch(r.js, /\bimport\b|\bexport\b|require\(|sourceMappingURL/);
    assert.doesNotMatch(r.js, /DlrLink|: string/, 'types are erased');
    assert.match(r.js, /smpp\.onPdu\('submit_sm', async \(pdu, session\) =>/);
    assert.match(r.hash, /^[0-9a-f]{64}$/);
    assert.ok(Object.isFrozen(r), 'a shared result cannot be changed by one tenant');
    // It is a script V8 accepts as such.
    new vm.Script(r.js, { filename: 'gateway.ts' });
  });

  it('compiles a JavaScript policy the same way', () => {
    const r = ok(compilePolicy(read('plain.js'), 'plain.js'));
    assert.match(r.js, /smpp\.onBind\(/);
    new vm.Script(r.js);
  });

  it('rejects TypeScript syntax in a .js policy at its position', () => {
    const [d, ...rest] = errors(compilePolicy('const a = 1;\nconst b: number = 2;\n', 'p.js'));
    assert.equal(rest.length, 0);
    assert.deepEqual({ line: d!.line, column: d!.column, code: d!.code }, { line: 2, column: 10, code: 'TS8010' });
  });

  it('reports a syntax error at the line:column of the tenant source', () => {
    const r = errors(compilePolicy(read('syntax-error.ts.txt'), 'syntax-error.ts'));
    assert.deepEqual(r, [{ file: 'syntax-error.ts', line: 5, column: 59, message: "')' expected.", code: 'TS1005' }]);
  });

  it('counts columns without a byte order mark and across CRLF line ends', () => {
    const bom = errors(compilePolicy('\ufeffconst x = (1;\n', 'p.ts'));
    assert.deepEqual([bom[0]!.line, bom[0]!.column], [1, 13]);
    const crlf = errors(compilePolicy('// one\r\n// two\r\nconst y: = 1;\r\n', 'p.ts'));
    assert.deepEqual([crlf[0]!.line, crlf[0]!.column], [3, 10]);
  });

  it('reports early errors V8 raises (not TypeScript\'s transpiler) at the tenant position', () => {
    const dup = errors(compilePolicy('let x = 1;\nfunction f(): void {\n  let y: number = 1;\n  let y = 2;\n}\n', 'p.ts'));
    assert.deepEqual(dup, [{ file: 'p.ts', line: 4, column: 7, message: "SyntaxError: Identifier 'y' has already been declared", code: 'SLUICE_POLICY_SCRIPT' }]);
    // Top-level await is a module feature; the column is past a removed annotation.
    // Past erased annotations: `with` is 8 columns further right in the source than in the JS.
    const withSrc = 'declare const o: {};\nconst n: number = 1; with (o) {}\n';
    assert.deepEqual(errors(compilePolicy(withSrc, 'p.ts')), [
      { file: 'p.ts', line: 2, column: 22, message: 'SyntaxError: Strict mode code may not include a with statement', code: 'SLUICE_POLICY_SCRIPT' },
    ]);
  });

  it('refuses top-level await (a module feature) at the await, and allows it in functions', () => {
    const src = 'declare function f(): Promise<number>;\nconst a: Record<string, number> = { n: await f() };\nfor await (const x of []) {}\n';
    const d = errors(compilePolicy(src, 'p.ts'));
    assert.deepEqual(d.map((x) => [x.line, x.column, x.code]), [
      [2, positionOf(src, 'await f()').column, 'SLUICE_POLICY_TOP_LEVEL_AWAIT'],
      [3, 5, 'SLUICE_POLICY_TOP_LEVEL_AWAIT'],
    ]);
    ok(compilePolicy('async function g() { await 1; for await (const x of []) {} }\nconst h = async () => { await g(); };\nclass C { async m() { await h(); } }\n', 'p.ts'));
  });

  it('rejects a value import at its position, and keeps type-only imports', () => {
    const src = read('imports.ts.txt');
    const r = errors(compilePolicy(src, 'imports.ts'));
    assert.equal(r.length, 1);
    assert.deepEqual({ line: r[0]!.line, column: r[0]!.column, code: r[0]!.code }, { line: 4, column: 1, code: 'SLUICE_POLICY_MODULE' });
    assert.match(r[0]!.message, /type-only imports/);

    const typeOnly = ok(
      compilePolicy(
        'import type { SubmitSm } from "sluice";\nimport { type Pdu } from "sluice";\nexport type X = SubmitSm | Pdu;\nexport interface Y { a: X }\nexport {};\nconst n: number = 1;\n',
        'p.ts',
      ),
    );
    assert.equal(typeOnly.js, '"use strict";\nconst n = 1;\n');
  });

  it('rejects every other module form at its position', () => {
    const cases: [string, number, number][] = [
      ['import "side-effect";', 1, 1],
      ['import d from "m";', 1, 1],
      ['import * as ns from "m";', 1, 1],
      ['import { a, type B } from "m";', 1, 1],
      ['import fs = require("fs");', 1, 1],
      ['export const x = 1;', 1, 1],
      ['export function f() {}', 1, 1],
      ['export default 42;', 1, 1],
      ['const a = 1;\nexport { a };', 2, 1],
      ['export * from "m";', 1, 1],
      ['const m = 1;\nasync function g() {\n  return import("m");\n}', 3, 10],
      ['const u = import.meta.url;', 1, 11],
    ];
    for (const [src, line, column] of cases) {
      const r = errors(compilePolicy(src, 'p.ts'));
      const d = r.find((e) => e.code === 'SLUICE_POLICY_MODULE');
      assert.ok(d, `${src}: ${JSON.stringify(r)}`);
      assert.deepEqual([d.line, d.column], [line, column], src);
    }
  });

  it('rejects a source over maxBytes, counting UTF-8 bytes', () => {
    const r = errors(compilePolicy('x'.repeat(101), 'big.ts', { maxBytes: 100 }));
    assert.equal(r.length, 1);
    assert.equal(r[0]!.code, 'SLUICE_POLICY_TOO_LARGE');
    assert.match(r[0]!.message, /101 bytes; the limit is 100 bytes/);
    // 34 euro signs are 34 UTF-16 units but 102 bytes.
    assert.equal(errors(compilePolicy(`//${'€'.repeat(34)}`, 'big.ts', { maxBytes: 100 }))[0]!.code, 'SLUICE_POLICY_TOO_LARGE');
    ok(compilePolicy(`//${'€'.repeat(32)}`, 'ok.ts', { maxBytes: 100 }));
  });

  it('compiles a shared source once: the second compile is a cache hit', () => {
    clearCompileCache();
    const src = read('echo.ts.txt');
    const a = ok(compilePolicy(src, 'tenant-a/echo.ts'));
    const b = ok(compilePolicy(src, 'tenant-b/policy.ts'));
    assert.equal(b, a, 'the same frozen result, whatever the file name');
    const s = compileCacheStats();
    assert.deepEqual([s.misses, s.hits, s.entries], [1, 1, 1]);
    // Failures are cached too, and carry each caller's file name.
    errors(compilePolicy('const = ;', 'x.ts'));
    const again = errors(compilePolicy('const = ;', 'y.ts'));
    assert.equal(again[0]!.file, 'y.ts');
    assert.deepEqual([compileCacheStats().misses, compileCacheStats().hits], [2, 2]);
    // .js and .ts of the same text are different compilations.
    ok(compilePolicy('const a = 1;', 'a.js'));
    ok(compilePolicy('const a = 1;', 'a.ts'));
    assert.equal(compileCacheStats().misses, 4);
  });

  it('bounds the cache as an LRU', () => {
    clearCompileCache();
    configureCompileCache({ maxEntries: 2 });
    try {
      ok(compilePolicy('const a = 1;', 'p.ts'));
      ok(compilePolicy('const b = 1;', 'p.ts'));
      ok(compilePolicy('const a = 1;', 'p.ts')); // a is young again
      ok(compilePolicy('const c = 1;', 'p.ts')); // evicts b
      assert.deepEqual([compileCacheStats().entries, compileCacheStats().evictions], [2, 1]);
      ok(compilePolicy('const a = 1;', 'p.ts'));
      assert.equal(compileCacheStats().hits, 2);
      ok(compilePolicy('const b = 1;', 'p.ts'));
      assert.equal(compileCacheStats().misses, 4);
    } finally {
      configureCompileCache({ maxEntries: 1000 });
    }
  });
});

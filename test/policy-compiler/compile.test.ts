import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { after, before, describe, it } from 'node:test';
import * as smppLib from 'smpp';
import * as ts from 'typescript';
import {
  clearCompileCache,
  compileCacheStats,
  compilePolicy,
  configureCompileCache,
  decodeMappings,
  errorDiagnostic,
  mapError,
  mapStack,
  type LineMapper,
  type PolicyDiagnostic,
} from '../../src/policy-compiler/compile';
import { checkPolicyFile, checkPolicySource, findSluiceDeclarations, POLICY_LIBS } from '../../src/policy-compiler/typecheck';
import '../helpers/ivm-teardown';

// Runs from dist/test/policy-compiler/ after the build; fixtures and sandbox/ stay at the root.
const ROOT = path.resolve(__dirname, '../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/policies');
const fixture = (name: string): string => path.join(FIXTURES, name);
const read = (name: string): string => fs.readFileSync(fixture(name), 'utf8');

function ok(r: ReturnType<typeof compilePolicy>): Extract<ReturnType<typeof compilePolicy>, { ok: true }> {
  if (!r.ok) assert.fail(`expected a successful compile, got ${JSON.stringify(r.errors)}`);
  return r;
}

function errors(r: ReturnType<typeof compilePolicy>): PolicyDiagnostic[] {
  if (r.ok) assert.fail('expected compile errors');
  return r.errors;
}

/** 1-based line:column of the first occurrence of `needle` in `text` (after `from`, if given). */
function positionOf(text: string, needle: string, from?: string): { line: number; column: number } {
  const start = from === undefined ? 0 : text.indexOf(from);
  assert.ok(start >= 0, `${from} not found`);
  const i = text.indexOf(needle, start);
  assert.ok(i >= 0, `${needle} not found`);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

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

describe('LineMapper', () => {
  const src = [
    'interface DlrLink {', // 1
    '  session: string;', // 2
    '  ourId: string;', // 3
    '}', // 4
    'type Chain =', // 5
    '  | "queue"', // 6
    '  | "reject";', // 7
    'enum Kind { A, B }', // 8 (becomes five lines)
    'function explode(link: DlrLink, chain: Chain): never {', // 9
    '  throw new Error(`no route for ${link.ourId} via ${chain}`);', // 10
    '}', // 11
    'const links: Record<string, DlrLink> = { a: { session: "s", ourId: "o" } }; const k: Kind = Kind.B; const x: number = explode(links.a as DlrLink, "queue");', // 12
  ].join('\n');

  it('maps a position after removed multi-line declarations back to its source line', () => {
    const r = ok(compilePolicy(src, 'p.ts'));
    const gen = positionOf(r.js, 'throw new Error');
    assert.notEqual(gen.line, 10, 'the compiled line differs from the source line');
    assert.deepEqual(r.sourceMap.toSource(gen.line, gen.column), positionOf(src, 'throw new Error'));
  });

  it('maps a column shifted by erased type annotations back to the source column', () => {
    const r = ok(compilePolicy(src, 'p.ts'));
    const gen = positionOf(r.js, 'explode(links', 'const links');
    const want = positionOf(src, 'explode(links');
    assert.ok(gen.column < want.column, 'annotations were removed before it');
    assert.deepEqual(r.sourceMap.toSource(gen.line, gen.column), want);
    // Inside a token the offset is kept: `links` of `links.a`.
    const inner = positionOf(r.js, 'links.a', 'const links');
    assert.deepEqual(r.sourceMap.toSource(inner.line, inner.column + 2), { ...positionOf(src, 'links.a'), column: positionOf(src, 'links.a').column + 2 });
  });

  it('maps positions in real V8 stack traces (node:vm) through mapStack', () => {
    const r = ok(compilePolicy(src, 'acme.ts'));
    let stack = '';
    try {
      vm.runInNewContext(r.js, {}, { filename: 'acme.ts' });
    } catch (e) {
      stack = (e as Error).stack!;
    }
    assert.match(stack, /acme\.ts:\d+:\d+/);
    const mapped = mapStack(stack, 'acme.ts', r.sourceMap);
    const throwAt = positionOf(src, 'new Error');
    const callAt = positionOf(src, 'explode(links');
    assert.match(mapped, new RegExp(`at explode \\(acme\\.ts:${throwAt.line}:${throwAt.column}\\)`));
    assert.match(mapped, new RegExp(`at acme\\.ts:${callAt.line}:${callAt.column}\\b`));
    assert.match(mapped, /^Error: no route for o via queue$/m);
    // Only the policy's frames are left: node:vm and host frames are gone.
    const frames = mapped.split('\n').filter((l) => /^\s+at /.test(l));
    assert.equal(frames.length, 2);
    assert.match(stack, /node:vm|runInNewContext/, 'the raw stack had host frames');
  });

  it('decodes VLQ mappings (the source map spec example values)', () => {
    // "AAAA" = [0,0,0,0]; "gBAAC" = [16,0,0,1]; ";" starts a new generated line; "D" = -1.
    const lines = decodeMappings('AAAA,gBAAC;AACD');
    assert.deepEqual(Array.from(lines[0]!), [0, 0, 0, 16, 0, 1]);
    assert.deepEqual(Array.from(lines[1]!), [0, 1, 0]);
    assert.throws(() => decodeMappings('A!'), /invalid source map/);
  });

  it('never throws and stays in range for unmapped or odd positions', () => {
    const r = ok(compilePolicy('const a: number = 1;\nconst b = a;\n', 'p.ts'));
    assert.deepEqual(r.sourceMap.toSource(1, 1), { line: 1, column: 1 }, '"use strict" line maps forward');
    assert.deepEqual(r.sourceMap.toSource(999, 1), { line: 2, column: 13 }, 'past the end: the last mapping');
    assert.deepEqual(r.sourceMap.toSource(2, 0), { line: 1, column: 1 });
    assert.deepEqual(r.sourceMap.toSource(Number.NaN, Number.NaN), { line: 1, column: 1 });
  });
});

describe('mapStack / mapError', () => {
  const mapper: LineMapper = { toSource: (line, column) => ({ line: line * 10, column: column + 100 }) };

  it('rewrites the policy positions and drops every foreign frame', () => {
    const stack = [
      'Error: boom at acme.ts:2:3',
      '    at explode (acme.ts:5:11)',
      '    at Array.map (<anonymous>)',
      '    at acme.ts:9:3',
      '    at run (<sluice>:120:5)',
      '    at /work/main/dist/src/sandbox-process/policy-isolate.js:150:20',
      '    at (<isolated-vm boundary>)',
      '    at async Promise.all (index 0)',
      '    at node:internal/process/task_queues:95:5',
      '    at Object.<anonymous> (/srv/tenants/acme.ts:3:3)',
      '    at eval (eval at g (acme.ts:4:1), <anonymous>:1:1)',
    ].join('\n');
    assert.equal(
      mapStack(stack, 'acme.ts', mapper),
      [
        'Error: boom at acme.ts:20:103',
        '    at explode (acme.ts:50:111)',
        '    at acme.ts:90:103',
        '    at run (<sluice>:120:5)',
        '    at eval (eval at g (acme.ts:40:101), <anonymous>:1:1)',
      ].join('\n'),
    );
  });

  it('handles file names with regex characters and positions without a column', () => {
    const out = mapStack('E\n    at f (a+b (1).ts:3)\n    at g (a+b (1)Xts:3:1)', 'a+b (1).ts', mapper);
    assert.equal(out, 'E\n    at f (a+b (1).ts:30)');
  });

  it('mapError maps the message (isolated-vm\'s [file:L:C] suffix), the stack, and finds the position', () => {
    const m = mapError({ message: 'Unexpected token [acme.ts:3:9]', stack: 'SyntaxError: Unexpected token [acme.ts:3:9]\n    at /host/x.js:1:1' }, 'acme.ts', mapper);
    assert.deepEqual(m, { message: 'Unexpected token [acme.ts:30:109]', stack: 'SyntaxError: Unexpected token [acme.ts:30:109]', position: { line: 30, column: 109 } });
    assert.deepEqual(mapError('plain string', 'acme.ts', mapper), { message: 'plain string' });
    const top = mapError({ message: 'x', stack: 'Error: x\n    at /host/a.js:1:1\n    at f (acme.ts:7:2)' }, 'acme.ts', mapper);
    assert.deepEqual(top.position, { line: 70, column: 102 });
  });

  it('errorDiagnostic turns a start-up failure into a diagnostic at the source position', () => {
    const d = errorDiagnostic({ name: 'TypeError', message: 'x is not a function [acme.ts:2:5]', stack: 'TypeError: x\n    at acme.ts:2:5' }, 'acme.ts', mapper);
    assert.deepEqual(d, { file: 'acme.ts', line: 20, column: 105, message: 'TypeError: x is not a function' });
    assert.deepEqual(errorDiagnostic(new RangeError('no position'), 'acme.ts', mapper), { file: 'acme.ts', line: 1, column: 1, message: 'RangeError: no position' });
  });

  it('maps a real isolated-vm stack (in a child process with --no-node-snapshot)', (t) => {
    let ivmPresent = true;
    try {
      require.resolve('isolated-vm');
    } catch {
      ivmPresent = false;
    }
    if (!ivmPresent) return t.skip('isolated-vm is not installed');
    const src = [
      'type Hop = { bind: string };',
      'interface Route {',
      '  hops: Hop[];',
      '}',
      'function pick(r: Route): string {',
      '  const first: Hop | undefined = r.hops[0];',
      '  return first!.bind.toUpperCase();',
      '}',
      '(globalThis as unknown as { handler: () => string }).handler = (): string => pick({ hops: [] });',
    ].join('\n');
    const r = ok(compilePolicy(src, 'acme.ts'));
    const child = `
      const ivm = require('isolated-vm');
      const js = require('fs').readFileSync(0, 'utf8');
      const iso = new ivm.Isolate({ memoryLimit: 16 });
      const ctx = iso.createContextSync();
      iso.compileScriptSync(js, { filename: 'acme.ts' }).runSync(ctx, { timeout: 1000 });
      const stack = iso.compileScriptSync('(() => { try { handler(); } catch (e) { return e.stack; } })()', { filename: '<sluice>' }).runSync(ctx, { timeout: 1000 });
      let hostStack = '';
      try { iso.compileScriptSync('handler()', { filename: '<sluice>' }).runSync(ctx, { timeout: 1000 }); } catch (e) { hostStack = e.stack; }
      process.stdout.write(JSON.stringify({ stack, hostStack }));
      iso.dispose();
    `;
    const res = spawnSync(process.execPath, ['--no-node-snapshot', '-e', child], { input: r.js, encoding: 'utf8', cwd: ROOT, timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const { stack, hostStack } = JSON.parse(res.stdout) as { stack: string; hostStack: string };
    const at = positionOf(src, '.toUpperCase', 'return first');
    const inner = mapStack(stack, 'acme.ts', r.sourceMap);
    assert.match(inner, /^TypeError: Cannot read properties of undefined \(reading 'bind'\)/);
    // V8 points at the property access after `first!`; the `!` is erased in the JS.
    assert.match(inner, new RegExp(`at pick \\(acme\\.ts:7:\\d+\\)`));
    assert.match(inner, /at (globalThis\.)?handler \(acme\.ts:9:\d+\)/);
    assert.match(inner, /at <sluice>:1:\d+/);
    assert.ok(at.line === 7);
    // The copy the host sees carries host frames; none survive.
    assert.match(hostStack, /isolated-vm|node:|\/.*\.js/);
    const outer = mapStack(hostStack, 'acme.ts', r.sourceMap);
    for (const line of outer.split('\n').filter((l) => /^\s*at /.test(l))) assert.match(line, /acme\.ts:\d+:\d+|<sluice>/);
    assert.doesNotMatch(outer, /node_modules|node:internal|\.js:\d/);
  });
});

describe('checkPolicyFile / checkPolicySource', () => {
  it('finds sandbox/sluice.d.ts from the build output and from the sources', () => {
    const want = path.join(ROOT, 'sandbox', 'sluice.d.ts');
    assert.equal(findSluiceDeclarations(path.join(ROOT, 'dist/src/isolates')), want);
    assert.equal(findSluiceDeclarations(path.join(ROOT, 'src/isolates')), want);
    assert.equal(findSluiceDeclarations(), want);
    assert.throws(() => findSluiceDeclarations('/'), /not found/);
  });

  for (const name of ['echo.ts.txt', 'gateway.ts.txt', 'api.ts.txt', 'plain.js']) {
    it(`${name} type-checks clean`, () => {
      assert.deepEqual(checkPolicyFile(fixture(name)), []);
    });
  }

  it('the demo policy in policies/ type-checks clean', (t) => {
    const demo = path.join(ROOT, 'policies/echo.ts');
    if (!fs.existsSync(demo)) return t.skip('no policies/echo.ts');
    assert.deepEqual(checkPolicyFile(demo), []);
  });

  it('a JavaScript policy opts in to type checking with // @ts-check', () => {
    assert.deepEqual(checkPolicySource(`// @ts-check\n${read('plain.js')}`, 'plain.js'), []);
    const d = checkPolicySource('// @ts-check\nsmpp.submitVia(1, { destination_addr: "1" });\n', 'p.js');
    assert.deepEqual(d.map((x) => [x.line, x.column, x.code]), [[2, 16, 'TS2345']]);
    assert.deepEqual(checkPolicySource('smpp.submitVia(1, { destination_addr: "1" });\n', 'p.js'), [], 'unchecked without it');
  });

  it('type-error.ts has exactly one error, at its line:column', () => {
    const d = checkPolicyFile(fixture('type-error.ts.txt'));
    assert.equal(d.length, 1, JSON.stringify(d));
    assert.deepEqual({ ...d[0], message: undefined }, { file: fixture('type-error.ts.txt'), line: 5, column: 34, code: 'TS2345', message: undefined });
    assert.match(d[0]!.message, /'number' is not assignable to parameter of type 'string'/);
  });

  it('syntax errors come back alone, as tsc does', () => {
    assert.deepEqual(checkPolicyFile(fixture('syntax-error.ts.txt')).map((d) => [d.line, d.column, d.code]), [[5, 59, 'TS1005']]);
  });

  it('a value import is refused at its position', () => {
    const d = checkPolicyFile(fixture('imports.ts.txt'));
    assert.deepEqual(d[0] && [d[0].line, d[0].column, d[0].code], [4, 1, 'SLUICE_POLICY_MODULE']);
  });

  it('the sandbox has no DOM, no Node, and none of the globals the prelude removes', () => {
    const cases = [
      'console.log("x");',
      'process.exit(1);',
      'const fs = require("fs");',
      'setTimeout(() => {}, 10);',
      'void fetch("https://example.com");',
      'const b = Buffer.from("x");',
      'new WeakRef({});',
      'new FinalizationRegistry(() => {});',
      'const s = new SharedArrayBuffer(8);',
      'Atomics.wait(new Int32Array(1), 0, 0);',
      'const t = new TextEncoder();',
      'const w = window;',
    ];
    for (const src of cases) {
      const d = checkPolicySource(src, 'p.ts');
      assert.ok(d.length >= 1 && d.every((x) => x.line === 1), `${src} → ${JSON.stringify(d)}`);
    }
  });

  it('a policy cannot pull in other declarations; the editor reference to sluice.d.ts is fine', () => {
    const d = checkPolicySource('/// <reference lib="dom" />\n/// <reference types="node" />\n/// <reference path="./other.ts" />\n/// <reference path="../sandbox/sluice.d.ts" />\nconst n = 1;\n', 'p.ts');
    assert.deepEqual(d.map((x) => [x.line, x.code]), [[1, 'SLUICE_POLICY_REFERENCE'], [2, 'SLUICE_POLICY_REFERENCE'], [3, 'SLUICE_POLICY_REFERENCE']]);
    assert.doesNotMatch(JSON.stringify(d), /node_modules|__sluice/, 'no host or virtual paths');
  });

  it('the declarations catch misuse of the API', () => {
    const cases: [string, string][] = [
      ['smpp.onPdu("bind_transceiver", () => {});', 'unknown command'],
      ['smpp.onPdu("submit_sm", (pdu) => pdu.reply({ command_status: "ESME_NOPE" }));', 'unknown status name'],
      ['smpp.onPdu("submit_sm", (pdu) => pdu.replyQuery({ message_state: 2 }));', 'replyQuery only on query_sm'],
      ['smpp.onPdu("cancel_sm", (pdu) => pdu.reply({ message_id: "x" }));', 'cancel_sm_resp has no message_id'],
      ['smpp.onPdu("alert_notification", (pdu) => pdu.reply());', 'alert_notification has no response'],
      ['smpp.onPdu("deliver_sm", (pdu) => { const id: string = pdu.receipt.id; });', 'receipt may be absent'],
      ['smpp.onPdu("submit_sm", (pdu, session) => { const b: string = session.bind; });', 'submit_sm comes from an ESME'],
      ['smpp.onPdu("submit_sm", (pdu) => { pdu.short_message.toUpperCase(); });', 'short_message is bytes'],
      ['smpp.onBind((bind) => { if (bind.password) return bind.accept(); });', 'a bind decision on every path'],
      ['smpp.onBind((bind) => bind.reject("NOT_A_STATUS"));', 'unknown status name'],
      ['void smpp.submitVia("b", { short_message: "x" });', 'destination_addr is required'],
      ['void smpp.submitVia("b", { destination_addr: "1", destinaton_addr: "2" });', 'typo in a field name'],
      ['void smpp.queryVia("b", {});', 'message_id is required'],
      ['void cache.set("k", { bytes: new Uint8Array(2) });', 'bytes are not JSON'],
      ['void cache.set("k", { when: new Date() });', 'a Date is not JSON'],
      ['void cache.set("k", undefined);', 'undefined is not JSON'],
      ['void smpp.timers.after(10, "t", () => 1);', 'a function is not a payload'],
      ['smpp.onSession("closed", () => {});', 'unknown event'],
      ['void smpp.submitVia("b", { destination_addr: "1" }).then((r) => r.message_id.length);', 'message_id only when ok'],
      ['const s: Sluice.BindState = "up";', 'unknown bind state'],
      ['smpp.tenant = "other";', 'read-only'],
      ['log.info({ msg: "x" });', 'message first'],
    ];
    for (const [src, why] of cases) {
      assert.notDeepEqual(checkPolicySource(src, 'p.ts'), [], `${why}: ${src}`);
    }
  });

  it('StatusName is exactly the codec\'s list of command_status names', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    const block = dts.slice(dts.indexOf('type StatusName ='), dts.indexOf(';', dts.indexOf('type StatusName =')));
    const names = [...block.matchAll(/\|\s*'([A-Z_]+)'/g)].map((m) => m[1]);
    assert.deepEqual(names, Object.keys(smppLib.errors));
  });

  it('every TLV the codec knows is declared by name, with the codec\'s value type', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'sandbox/sluice.d.ts'), 'utf8');
    const block = dts.slice(dts.indexOf('interface Tlvs {'), dts.indexOf('\n  }', dts.indexOf('interface Tlvs {')));
    const declared = new Map([...block.matchAll(/^\s+(\w+)\?: (.+);$/gm)].map((m) => [m[1]!, m[2]!]));
    const kind = (t: smppLib.FieldType): string => {
      const tlv = smppLib.types.tlv;
      if (t === tlv.int8 || t === tlv.int16 || t === tlv.int32) return 'number';
      if (t === tlv.cstring || t === tlv.string) return 'string';
      return 'Uint8Array';
    };
    for (const [name, def] of Object.entries(smppLib.tlvs)) {
      const want = def.multiple ? `readonly ${kind(def.type)}[]` : kind(def.type);
      assert.equal(declared.get(name), want, name);
    }
    assert.equal(declared.size, Object.keys(smppLib.tlvs).length);
  });

  it('POLICY_LIBS is ES2022 minus shared memory and weak references; sandbox/tsconfig.json agrees', () => {
    const libDir = path.dirname(ts.getDefaultLibFilePath({}));
    const closure = new Set<string>();
    const visit = (lib: string): void => {
      if (closure.has(lib)) return;
      closure.add(lib);
      const text = fs.readFileSync(path.join(libDir, `lib.${lib}.d.ts`), 'utf8');
      for (const m of text.matchAll(/<reference lib="([^"]+)"/g)) visit(m[1]!);
    };
    visit('es2022');
    const aggregates = /^es20\d\d$|^decorators/;
    const removed = ['es2017.sharedmemory', 'es2020.sharedmemory', 'es2021.weakref'];
    const want = [...closure].filter((l) => !aggregates.test(l) && !removed.includes(l)).sort();
    assert.deepEqual([...POLICY_LIBS].sort(), want);

    const cfg = ts.readConfigFile(path.join(ROOT, 'sandbox/tsconfig.json'), ts.sys.readFile);
    assert.equal(cfg.error, undefined);
    assert.deepEqual([...(cfg.config as { compilerOptions: { lib: string[] } }).compilerOptions.lib].sort(), want);
  });

  it('sandbox/sluice.d.ts itself is valid under `tsc -p sandbox` (full lib check)', () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'sandbox/tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) });
    assert.ok(parsed);
    const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diags, []);
  });

  after(() => clearCompileCache());
});

/** From the compiled script back to the tenant source: the LineMapper and runtime errors mapped to line:column. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as vm from 'node:vm';
import { describe, it } from 'node:test';
import { compilePolicy, decodeMappings, errorDiagnostic, mapError, mapStack, type LineMapper } from '../../src/policy-compiler/compile';
import '../helpers/ivm-teardown';
import { ROOT, ok, positionOf } from '../helpers/policy-fixtures';

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

/**
 * The prelude's modules (src/isolate/) run inside an isolate: no Node, no
 * DOM, only ECMAScript's globals. Their own tsconfig checks them against
 * exactly that (docs/design.md, "The process boundary").
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ts from 'typescript';

// Runs from dist/test/isolate/ after the build; the sources stay at the root.
const ROOT = path.resolve(__dirname, '../../..');
const CONFIG = path.join(ROOT, 'src/isolate/tsconfig.json');
const PROBE = path.join(ROOT, 'src/isolate/probe.ts');

/** Each host name a probe uses, on a line of its own (line numbers are 1-based: the name is on line i + 1). */
const HOST_NAMES = ['require', 'process', 'Buffer', 'setTimeout', 'setImmediate', 'console', 'document', 'globalThis.process'] as const;
const PROBE_TEXT = [
  "export const fs: unknown = require('node:fs');",
  'export const env: unknown = process.env;',
  "export const bytes: unknown = Buffer.from('x');",
  'export const timer: unknown = setTimeout(() => undefined, 1);',
  'export const soon: unknown = setImmediate(() => undefined);',
  "console.log('x');",
  'export const title: unknown = document.title;',
  'export const viaGlobal: unknown = globalThis.process;',
].join('\n');

function parsed(extend: ts.CompilerOptions = {}): ts.ParsedCommandLine {
  const cmd = ts.getParsedCommandLineOfConfigFile(CONFIG, extend, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  });
  assert.ok(cmd);
  assert.deepEqual(cmd.errors, []);
  return cmd;
}

/** The check as `tsc -p src/isolate` runs it, with the probe among the prelude's files when asked: each diagnostic as file:line and its text. */
function check(opts: { probe?: boolean; extend?: ts.CompilerOptions } = {}): { where: string; text: string }[] {
  const cmd = parsed(opts.extend);
  const host = ts.createCompilerHost(cmd.options);
  const files = [...cmd.fileNames];
  if (opts.probe) {
    files.push(PROBE);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, ...rest) => (path.resolve(name) === PROBE ? ts.createSourceFile(name, PROBE_TEXT, lang) : getSourceFile(name, lang, ...rest));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => path.resolve(name) === PROBE || fileExists(name);
  }
  const program = ts.createProgram(files, cmd.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    return { where: `${d.file ? path.relative(ROOT, d.file.fileName) : '?'}:${line}`, text: ts.flattenDiagnosticMessageText(d.messageText, ' ') };
  });
}

describe('src/isolate/: type-checked against the isolate globals only', () => {
  it('its tsconfig has ECMAScript 2022 and nothing else: no @types, no DOM', () => {
    const cmd = parsed();
    assert.deepEqual(cmd.options.types, []);
    assert.deepEqual(cmd.options.lib, ['lib.es2022.d.ts']);
    assert.ok(cmd.fileNames.some((f) => f.endsWith('src/isolate/prelude.ts')));
    assert.ok(cmd.fileNames.every((f) => path.dirname(f) === path.dirname(CONFIG)), 'the prelude modules, nothing else');
  });

  it('the prelude modules, and the protocol types they take, pass it', () => {
    assert.deepEqual(check(), []);
  });

  it('a module that uses require, process, Buffer, timers, console or the DOM fails it, on each of those lines', () => {
    const failed = check({ probe: true });
    assert.ok(failed.every((d) => d.where.startsWith('src/isolate/probe.ts:')), JSON.stringify(failed));
    const lines = new Set(failed.map((d) => Number(d.where.slice(d.where.lastIndexOf(':') + 1))));
    for (const [i, name] of HOST_NAMES.entries()) assert.ok(lines.has(i + 1), `${name} (line ${i + 1}) should not type-check: ${JSON.stringify(failed)}`);
    assert.match(failed.map((d) => d.text).join('\n'), /Cannot find name 'require'/);
  });

  it('the same module passes with Node types: it is this config that refuses them (the DOM line aside)', () => {
    const failed = check({ probe: true, extend: { types: ['node'] } });
    assert.deepEqual(
      failed.map((d) => d.where),
      [`src/isolate/probe.ts:${HOST_NAMES.indexOf('document') + 1}`],
      JSON.stringify(failed),
    );
  });
});

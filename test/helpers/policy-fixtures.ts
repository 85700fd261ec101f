/** Fixtures and assertions the policy-compiler tests share (they run from dist/test/policy-compiler/; fixtures and sandbox/ stay at the root). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compilePolicy, type PolicyDiagnostic } from '../../src/policy-compiler/compile';

// Runs from dist/test/policy-compiler/ after the build; fixtures and sandbox/ stay at the root.
export const ROOT = path.resolve(__dirname, '../../..');
export const FIXTURES = path.join(ROOT, 'test/fixtures/policies');
export const fixture = (name: string): string => path.join(FIXTURES, name);
export const read = (name: string): string => fs.readFileSync(fixture(name), 'utf8');

export function ok(r: ReturnType<typeof compilePolicy>): Extract<ReturnType<typeof compilePolicy>, { ok: true }> {
  if (!r.ok) assert.fail(`expected a successful compile, got ${JSON.stringify(r.errors)}`);
  return r;
}

export function errors(r: ReturnType<typeof compilePolicy>): PolicyDiagnostic[] {
  if (r.ok) assert.fail('expected compile errors');
  return r.errors;
}

/** 1-based line:column of the first occurrence of `needle` in `text` (after `from`, if given). */
export function positionOf(text: string, needle: string, from?: string): { line: number; column: number } {
  const start = from === undefined ? 0 : text.indexOf(from);
  assert.ok(start >= 0, `${from} not found`);
  const i = text.indexOf(needle, start);
  assert.ok(i >= 0, `${needle} not found`);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

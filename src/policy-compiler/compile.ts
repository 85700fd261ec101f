import { createHash } from 'node:crypto';
import * as vm from 'node:vm';
import type * as TS from 'typescript';

// Loaded on first compile: the compiler is ~50 MB of heap, and a sandbox
// process hosting only idle tenants should not pay for it.
let tsLib: typeof TS | undefined;
const ts = new Proxy({} as typeof TS, { get: (_t, key) => (tsLib ??= require('typescript') as typeof TS)[key as keyof typeof TS] });

/**
 * Tenant policy compilation: one TypeScript or JavaScript file → one ES2022
 * *script* (no module system) for an isolate, plus a line mapper from the
 * emitted JS back to the tenant's own source.
 *
 * Uses TypeScript 5.9's in-process `transpileModule` (TypeScript 7's API has
 * no in-process transpile; see docs/design.md, "Hazards we design around"). Results are cached by sha256 of
 * (source + compiler fingerprint), so 10,000 tenants sharing a policy cost one
 * compilation. Nothing here runs tenant code: the emitted JS is only *parsed*
 * by V8 (`vm.Script` compiles, never runs) so early errors such as
 * `let x; let x;` are reported here, at the tenant's line:column, instead of
 * at isolate start.
 *
 * Positions are 1-based; columns count UTF-16 code units (a tab is one).
 */

/** A problem in a tenant policy, at a 1-based line:column of the tenant's own source. */
export interface PolicyDiagnostic {
  /** The policy's file name, as given by the caller. */
  file: string;
  /** 1-based line in the tenant's source. */
  line: number;
  /** 1-based column in the tenant's source (UTF-16 code units). */
  column: number;
  message: string;
  /** `TS1005` for TypeScript's own diagnostics, one of {@link POLICY_DIAGNOSTIC_CODES} for Sluice's. */
  code?: string;
}

/** A 1-based position. */
export interface SourcePosition {
  line: number;
  column: number;
}

/** Maps positions in the compiled JS to positions in the tenant's source. */
export interface LineMapper {
  /**
   * Compiled 1-based line:column → source 1-based line:column. A column
   * inside a mapped token keeps its offset from the token start; a column
   * before the first mapping of a line maps to that first mapping. A line
   * with no mapping (emitted helper code, the `"use strict"` prologue) maps
   * to the nearest mapping before it, else after it, else 1:1.
   */
  toSource(line: number, column: number): SourcePosition;
}

/** The outcome of {@link compilePolicy}. A successful result is frozen and may be shared between tenants. */
export type CompileResult =
  | {
      ok: true;
      /** The script to run in the isolate (ES2022, strict mode, no import/export, no sourceMappingURL). */
      js: string;
      /** sha256 (hex) of source + compiler fingerprint: equal hashes mean equal `js`. */
      hash: string;
      /** Compiled → source positions, for runtime errors. */
      sourceMap: LineMapper;
    }
  | { ok: false; errors: PolicyDiagnostic[] };

/** Options of {@link compilePolicy}. */
export interface CompileOptions {
  /** Largest accepted source in UTF-8 bytes (a tenant's `max_script_kb` × 1024). Default {@link DEFAULT_MAX_SCRIPT_BYTES}. */
  maxBytes?: number;
}

/** Codes of the diagnostics Sluice itself raises (TypeScript's are `TS<number>`). */
export const POLICY_DIAGNOSTIC_CODES = {
  /** The source is larger than `maxBytes` (`max_script_kb`). */
  SLUICE_POLICY_TOO_LARGE: 'policy too large',
  /** A value `import`/`export`, or `import()`/`import.meta`: a policy is one script, not a module. */
  SLUICE_POLICY_MODULE: 'modules are not available',
  /** `await` outside any function: a module feature, and a policy is a script. */
  SLUICE_POLICY_TOP_LEVEL_AWAIT: 'top-level await',
  /** V8 refused the emitted script (an early error TypeScript's transpiler does not report, e.g. a redeclared `let`). */
  SLUICE_POLICY_SCRIPT: 'script does not parse',
  /** A `/// <reference …>` to other declarations (type check only): the sandbox has ES2022 and the Sluice API, nothing else. */
  SLUICE_POLICY_REFERENCE: 'declarations cannot be pulled in',
} as const;

/** Code of a Sluice policy diagnostic. */
export type PolicyDiagnosticCode = keyof typeof POLICY_DIAGNOSTIC_CODES;

/** Default source size limit: the config default of `max_script_kb` (512). */
export const DEFAULT_MAX_SCRIPT_BYTES = 512 * 1024;

// ---------------------------------------------------------------------------
// Compiler setup

/**
 * ESNext module kind leaves import/export syntax alone (no CommonJS
 * `exports`/`require` scaffolding); the only module syntax that can survive
 * our checks is the `export {}` marker TS adds to files that had type-only
 * imports/exports, and the `after` transformer removes it.
 */
const compilerOptions = (): Readonly<TS.CompilerOptions> => Object.freeze({
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  sourceMap: true,
  inlineSources: false,
  inlineSourceMap: false,
  alwaysStrict: true,
  newLine: ts.NewLineKind.LineFeed,
  removeComments: false,
  useDefineForClassFields: true,
  importHelpers: false,
  noEmitHelpers: false,
});

/** Bump when the checks or transforms below change what a source compiles to. */
const SLUICE_COMPILE_REVISION = 1;

/** Everything besides the source that decides the output. */
let fingerprint: string | undefined;
const FINGERPRINT = (): string => (fingerprint ??= `sluice-compile/${SLUICE_COMPILE_REVISION} typescript/${ts.version} ${JSON.stringify(compilerOptions())}`);

/** Compile under a fixed name so the output (and the cache entry) does not depend on the tenant's file name. */
const TS_NAME = 'policy.ts';
const JS_NAME = 'policy.js';

function isJavaScriptName(filename: string): boolean {
  return /\.[cm]?js$/i.test(filename);
}

// ---------------------------------------------------------------------------
// Cache

/** A diagnostic without its file name: what the cache keeps. */
type Located = Omit<PolicyDiagnostic, 'file'>;

interface Entry {
  result: CompileResult & { ok: true } | undefined;
  errors: readonly Located[];
  /** Approximate memory held, for the byte budget. */
  cost: number;
}

/** Counters of the compile cache. */
export interface CompileCacheStats {
  /** Compiles answered from the cache. */
  hits: number;
  /** Compiles that ran the compiler. */
  misses: number;
  /** Entries dropped to stay within the bounds. */
  evictions: number;
  /** Entries held now. */
  entries: number;
  /** Approximate bytes held now. */
  bytes: number;
  /** Bound on entries. */
  maxEntries: number;
  /** Bound on bytes. */
  maxBytes: number;
}

const cache = new Map<string, Entry>();
const stats = { hits: 0, misses: 0, evictions: 0, bytes: 0 };
let maxEntries = 1000;
let maxCacheBytes = 64 * 1024 * 1024;

/** Counters and bounds of the compile cache (an LRU keyed by source hash). */
export function compileCacheStats(): CompileCacheStats {
  return { hits: stats.hits, misses: stats.misses, evictions: stats.evictions, entries: cache.size, bytes: stats.bytes, maxEntries, maxBytes: maxCacheBytes };
}

/** Empty the compile cache and zero its counters (tests, or after an upgrade of the compiler). */
export function clearCompileCache(): void {
  cache.clear();
  stats.hits = 0;
  stats.misses = 0;
  stats.evictions = 0;
  stats.bytes = 0;
}

/** Change the cache bounds (defaults: 1000 entries, 64 MiB); shrinking evicts at once. */
export function configureCompileCache(bounds: { maxEntries?: number; maxBytes?: number }): void {
  if (bounds.maxEntries !== undefined) maxEntries = Math.max(0, Math.floor(bounds.maxEntries));
  if (bounds.maxBytes !== undefined) maxCacheBytes = Math.max(0, Math.floor(bounds.maxBytes));
  evict();
}

function evict(): void {
  while (cache.size > 0 && (cache.size > maxEntries || stats.bytes > maxCacheBytes)) {
    const oldest = cache.keys().next().value as string;
    stats.bytes -= cache.get(oldest)!.cost;
    cache.delete(oldest);
    stats.evictions++;
  }
}

function remember(key: string, entry: Entry): void {
  cache.set(key, entry);
  stats.bytes += entry.cost;
  evict();
}

// ---------------------------------------------------------------------------
// compilePolicy

/**
 * Compile a tenant policy to a script for its isolate. `filename` decides
 * TypeScript vs JavaScript (`.js`/`.cjs`/`.mjs` are JavaScript, anything else
 * TypeScript) and names the file in diagnostics. Never throws for bad input:
 * every problem comes back as a diagnostic at the tenant's line:column.
 */
export function compilePolicy(source: string, filename: string, options: CompileOptions = {}): CompileResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  // Cheap bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (source.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(source, 'utf8');
    if (bytes > maxBytes) {
      return {
        ok: false,
        errors: [
          {
            file: filename,
            line: 1,
            column: 1,
            message: `policy is ${bytes} bytes; the limit is ${maxBytes} bytes (max_script_kb ${Math.floor(maxBytes / 1024)})`,
            code: 'SLUICE_POLICY_TOO_LARGE',
          },
        ],
      };
    }
  }
  // Editors hide a byte order mark; columns on line 1 should not count it.
  if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
  const js = isJavaScriptName(filename);
  const hash = createHash('sha256').update(FINGERPRINT()).update(js ? '\0js\0' : '\0ts\0').update(source).digest('hex');

  let entry = cache.get(hash);
  if (entry) {
    stats.hits++;
    cache.delete(hash); // LRU: move to the young end
    cache.set(hash, entry);
  } else {
    stats.misses++;
    entry = compileUncached(source, js, hash);
    remember(hash, entry);
  }
  if (entry.result) return entry.result;
  return { ok: false, errors: entry.errors.map((d) => ({ file: filename, ...d })) };
}

function compileUncached(source: string, isJs: boolean, hash: string): Entry {
  const rules: Located[] = [];
  let wasModule = false;
  const check: TS.TransformerFactory<TS.SourceFile> = () => (sf) => {
    wasModule = ts.isExternalModule(sf);
    checkScriptRules(sf, rules);
    return sf;
  };
  const toScript: TS.TransformerFactory<TS.SourceFile> = (context) => (sf) => {
    if (!wasModule) return sf;
    // Only the `export {}` marker can be left (anything else was rejected);
    // a script must not contain it. Module files were strict; keep them so.
    const f = context.factory;
    const statements = sf.statements.filter((s) => !ts.isExportDeclaration(s) && !ts.isExportAssignment(s));
    if (!hasUseStrict(statements)) statements.unshift(f.createExpressionStatement(f.createStringLiteral('use strict')));
    return f.updateSourceFile(sf, statements);
  };

  const out = ts.transpileModule(source, {
    fileName: isJs ? JS_NAME : TS_NAME,
    reportDiagnostics: true,
    compilerOptions: { ...compilerOptions() },
    transformers: { before: [check], after: [toScript] },
  });

  const errors: Located[] = [];
  for (const d of out.diagnostics ?? []) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    errors.push(locate(d));
  }
  errors.push(...rules);
  if (errors.length > 0) return { result: undefined, errors: sortDiagnostics(errors), cost: 256 + 128 * errors.length };

  const compiled = stripSourceMappingUrl(out.outputText);
  const mappings = readMappings(out.sourceMapText);
  const mapper = new SourceMapLineMapper(mappings);

  // Parse (never run) the script as the isolate will: early errors TS's
  // transpiler does not look for surface here, mapped to the tenant's source.
  const early = v8EarlyError(compiled, isJs ? JS_NAME : TS_NAME, mapper);
  if (early) return { result: undefined, errors: [early], cost: 512 };

  const result = Object.freeze({ ok: true as const, js: compiled, hash, sourceMap: mapper });
  return { result, errors: [], cost: 2 * (compiled.length + mappings.length) + 512 };
}

function hasUseStrict(statements: readonly TS.Statement[]): boolean {
  for (const s of statements) {
    if (!ts.isExpressionStatement(s) || !ts.isStringLiteral(s.expression)) return false; // end of the prologue
    if (s.expression.text === 'use strict') return true;
  }
  return false;
}

function locate(d: TS.Diagnostic): Located {
  let line = 1;
  let column = 1;
  if (d.file && d.start !== undefined) {
    const lc = d.file.getLineAndCharacterOfPosition(d.start);
    line = lc.line + 1;
    column = lc.character + 1;
  }
  return { line, column, message: ts.flattenDiagnosticMessageText(d.messageText, '\n'), code: `TS${d.code}` };
}

/** Sort by position, stable. */
export function sortDiagnostics<T extends { line: number; column: number }>(list: T[]): T[] {
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
    .map((x) => x.d);
}

function stripSourceMappingUrl(js: string): string {
  return js.replace(/\n?\/\/# sourceMappingURL=[^\n]*\n?$/, '\n');
}

function readMappings(sourceMapText: string | undefined): string {
  if (!sourceMapText) return '';
  const map = JSON.parse(sourceMapText) as { mappings?: unknown };
  return typeof map.mappings === 'string' ? map.mappings : '';
}

// ---------------------------------------------------------------------------
// Script rules

/**
 * A policy is one script: import/export are allowed only when they vanish
 * (type-only), and there is nothing for `import()` or `import.meta` to reach.
 */
function checkScriptRules(sf: TS.SourceFile, out: Located[]): void {
  const text = sf.text;
  if (text.includes('await')) checkTopLevelAwait(sf, out);
  if (!text.includes('import') && !text.includes('export')) return;

  const reject = (node: TS.Node, message: string): void => {
    const lc = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push({ line: lc.line + 1, column: lc.character + 1, message, code: 'SLUICE_POLICY_MODULE' });
  };

  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s)) {
      const clause = s.importClause;
      if (!clause) reject(s, 'a policy is one file: side-effect imports are not available');
      else if (!isTypeOnlyImport(clause)) {
        reject(s, 'a policy is one file: only type-only imports are allowed (`import type { … } from "…"`)');
      }
    } else if (ts.isImportEqualsDeclaration(s)) {
      // `import x = require("m")` loads a module; `import x = N.y` is a local alias.
      if (ts.isExternalModuleReference(s.moduleReference) && !s.isTypeOnly) {
        reject(s, 'a policy is one file: `import … = require(…)` is not available');
      }
    } else if (ts.isExportDeclaration(s)) {
      const empty = !s.moduleSpecifier && s.exportClause !== undefined && ts.isNamedExports(s.exportClause) && s.exportClause.elements.length === 0;
      const typeOnly = s.isTypeOnly || (s.exportClause !== undefined && ts.isNamedExports(s.exportClause) && s.exportClause.elements.length > 0 && s.exportClause.elements.every((e) => e.isTypeOnly));
      if (!empty && !typeOnly) reject(s, 'a policy is one script: it cannot export values');
    } else if (ts.isExportAssignment(s)) {
      reject(s, 'a policy is one script: it cannot export values');
    } else if (hasExportModifier(s) && !isTypeOnlyDeclaration(s)) {
      reject(s, 'a policy is one script: it cannot export values (remove `export`)');
    }
  }

  const visit = (node: TS.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      reject(node, 'a policy is one file: dynamic `import()` is not available');
    } else if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) {
      reject(node, 'a policy is a script: `import.meta` is not available');
    }
    ts.forEachChild(node, visit);
  };
  if (text.includes('import')) visit(sf);
}

/**
 * `await` outside any function. V8 refuses it too, but with messages such as
 * "Unexpected identifier" (in a script `await` is an identifier); say what is
 * wrong, at the `await`.
 */
function checkTopLevelAwait(sf: TS.SourceFile, out: Located[]): void {
  const report = (node: TS.Node): void => {
    const lc = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push({
      line: lc.line + 1,
      column: lc.character + 1,
      message: 'a policy is a script: `await` is only available inside a function (await in the handler, not at the top level)',
      code: 'SLUICE_POLICY_TOP_LEVEL_AWAIT',
    });
  };
  const visit = (node: TS.Node): void => {
    // Function bodies (and class members) may await or not on their own terms.
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return;
    if (ts.isAwaitExpression(node)) report(node);
    else if (ts.isForOfStatement(node) && node.awaitModifier) report(node.awaitModifier);
    else if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing) report(node);
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(sf, visit);
}

function isTypeOnlyImport(clause: TS.ImportClause): boolean {
  if (clause.isTypeOnly) return true;
  // `import { type A, type B } from "m"`: every binding type-only, no default.
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

function hasExportModifier(s: TS.Statement): boolean {
  return ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function isTypeOnlyDeclaration(s: TS.Statement): boolean {
  if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) return true;
  // `export declare …` emits nothing.
  return ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword);
}

// ---------------------------------------------------------------------------
// V8 early errors

function v8EarlyError(js: string, name: string, mapper: LineMapper): Located | undefined {
  try {
    // Compiles only: nothing runs. Early errors in nested functions are found too.
    new vm.Script(js, { filename: name });
    return undefined;
  } catch (err) {
    const e = err as { name?: unknown; message?: unknown; stack?: unknown };
    const message = `${typeof e.name === 'string' ? e.name : 'SyntaxError'}: ${String(e.message)}`;
    const at = typeof e.stack === 'string' ? syntaxErrorPosition(e.stack, name) : undefined;
    const mapped = at ? mapper.toSource(at.line, at.column) : undefined;
    return { line: mapped?.line ?? 1, column: mapped?.column ?? 1, message, code: 'SLUICE_POLICY_SCRIPT' };
  }
}

/** Node decorates a compile error's stack with `name:LINE`, the source line, and a caret line under the culprit. */
function syntaxErrorPosition(stack: string, name: string): SourcePosition | undefined {
  const lines = stack.split('\n');
  const head = new RegExp(`^${escapeRegExp(name)}:(\\d+)$`).exec(lines[0] ?? '');
  if (!head) return undefined;
  const caret = (lines[2] ?? '').indexOf('^');
  return { line: Number(head[1]), column: caret >= 0 ? caret + 1 : 1 };
}

// ---------------------------------------------------------------------------
// Source maps

const BASE64 = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  BASE64[c.charCodeAt(0)] = i;
});

/**
 * Decode a source map's `mappings` (Base64 VLQ, source map v3) into, per
 * generated line, triples of (generated column, source line, source column),
 * all 0-based. Segments without a source position are skipped.
 */
export function decodeMappings(mappings: string): Int32Array[] {
  const lines: Int32Array[] = [];
  let current: number[] = [];
  let srcLine = 0;
  let srcCol = 0;
  let genCol = 0;
  const fields = [0, 0, 0, 0, 0];
  let n = 0; // fields read in this segment
  let value = 0;
  let shift = 0;

  const endSegment = (): void => {
    if (n === 0) return;
    genCol += fields[0]!;
    if (n >= 4) {
      // fields[1] is the source index: a policy map has one source.
      srcLine += fields[2]!;
      srcCol += fields[3]!;
      current.push(genCol, srcLine, srcCol);
    }
    n = 0;
  };
  const endLine = (): void => {
    endSegment();
    lines.push(sortTriples(current));
    current = [];
    genCol = 0;
  };

  for (let i = 0; i < mappings.length; i++) {
    const c = mappings.charCodeAt(i);
    if (c === 59 /* ; */) {
      endLine();
      continue;
    }
    if (c === 44 /* , */) {
      endSegment();
      continue;
    }
    const digit = c < 128 ? BASE64[c]! : -1;
    if (digit < 0) throw new Error(`invalid source map: bad character at ${i}`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    const negative = value % 2 === 1;
    const magnitude = Math.floor(value / 2);
    if (n < 5) fields[n] = negative ? -magnitude : magnitude;
    n++;
    value = 0;
    shift = 0;
  }
  endLine();
  return lines;
}

function sortTriples(t: number[]): Int32Array {
  const a = Int32Array.from(t);
  for (let i = 3; i < a.length; i += 3) {
    if (a[i]! < a[i - 3]!) {
      // Out of order (allowed by the format, not produced by TS): sort by generated column.
      const idx = Array.from({ length: a.length / 3 }, (_, k) => k).sort((x, y) => t[x * 3]! - t[y * 3]!);
      return Int32Array.from(idx.flatMap((k) => [t[k * 3]!, t[k * 3 + 1]!, t[k * 3 + 2]!]));
    }
  }
  return a;
}

/** A {@link LineMapper} over a source map's `mappings`; decoded on first use. */
export class SourceMapLineMapper implements LineMapper {
  private lines: Int32Array[] | undefined;

  constructor(private readonly mappings: string) {}

  toSource(line: number, column: number): SourcePosition {
    this.lines ??= decodeMappings(this.mappings);
    const lines = this.lines;
    const l = Number.isFinite(line) ? Math.max(1, Math.floor(line)) : 1;
    const c = Number.isFinite(column) ? Math.max(1, Math.floor(column)) : 1;
    const segs = lines[l - 1];
    if (segs && segs.length > 0) return onLine(segs, c - 1);
    // No mapping on this line: the nearest mapped position before it, else after it.
    for (let i = Math.min(l - 2, lines.length - 1); i >= 0; i--) {
      const s = lines[i]!;
      if (s.length > 0) return { line: s[s.length - 2]! + 1, column: s[s.length - 1]! + 1 };
    }
    for (let i = l; i < lines.length; i++) {
      const s = lines[i]!;
      if (s.length > 0) return { line: s[1]! + 1, column: s[2]! + 1 };
    }
    return { line: 1, column: 1 };
  }
}

/** Map 0-based column `col` through one generated line's segments. */
function onLine(segs: Int32Array, col: number): SourcePosition {
  // Last segment starting at or before col.
  let lo = 0;
  let hi = segs.length / 3 - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segs[mid * 3]! <= col) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0) return { line: segs[1]! + 1, column: segs[2]! + 1 };
  const delta = col - segs[found * 3]!;
  return { line: segs[found * 3 + 1]! + 1, column: segs[found * 3 + 2]! + delta + 1 };
}

// ---------------------------------------------------------------------------
// Runtime errors

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Where the prelude's frames come from; kept in stacks next to the tenant's own. */
export const PRELUDE_FILENAME = '<sluice>';

function positionPattern(filename: string): RegExp {
  // Not part of a longer path: `/srv/x/policy.ts:1:2` is not `policy.ts:1:2`.
  return new RegExp(`(?<![\\w./\\\\-])${escapeRegExp(filename)}:(\\d+)(?::(\\d+))?`, 'g');
}

function rewritePositions(text: string, filename: string, mapper: LineMapper, pattern: RegExp): string {
  return text.replace(pattern, (_m, l: string, c: string | undefined) => {
    const p = mapper.toSource(Number(l), c === undefined ? 1 : Number(c));
    return c === undefined ? `${filename}:${p.line}` : `${filename}:${p.line}:${p.column}`;
  });
}

const FRAME = /^\s*at\s/;

/**
 * Rewrite an error stack from the isolate for the tenant: every
 * `filename:L:C` (a position in the compiled JS) becomes the position in the
 * tenant's source, and every frame that is neither the policy's nor the
 * prelude's (`<sluice>`) is dropped — host paths, isolated-vm boundaries and
 * built-ins never reach a tenant. Message lines are kept, positions rewritten
 * (isolated-vm appends `[filename:L:C]` to compile errors). `filename` must
 * be the tenant-facing name the script was compiled under in the isolate.
 */
export function mapStack(stack: string, filename: string, mapper: LineMapper): string {
  const pattern = positionPattern(filename);
  const own = new RegExp(`(?<![\\w./\\\\-])${escapeRegExp(filename)}:\\d`);
  const out: string[] = [];
  for (const line of stack.split('\n')) {
    if (FRAME.test(line)) {
      if (!own.test(line) && !line.includes(PRELUDE_FILENAME)) continue;
    }
    out.push(rewritePositions(line, filename, mapper, pattern));
  }
  return out.join('\n');
}

/** An isolate error rewritten for the tenant. */
export interface MappedError {
  /** The message, positions rewritten. */
  message: string;
  /** The stack, rewritten by {@link mapStack}; absent when the error had none. */
  stack?: string;
  /** The first position in the tenant's source the error names (message first, then the top frame). */
  position?: SourcePosition;
}

/**
 * Rewrite an error (or the `{ message, stack }` copy of one) thrown by policy
 * code in the isolate: positions mapped to the tenant's source, foreign frames
 * dropped, and the tenant position it points at.
 */
export function mapError(error: unknown, filename: string, mapper: LineMapper): MappedError {
  let message: string;
  let stack: string | undefined;
  if (error !== null && typeof error === 'object') {
    const e = error as { message?: unknown; stack?: unknown };
    message = typeof e.message === 'string' ? e.message : String(e.message ?? '');
    stack = typeof e.stack === 'string' ? e.stack : undefined;
  } else {
    message = String(error);
  }
  const pattern = positionPattern(filename);
  const out: MappedError = { message: rewritePositions(message, filename, mapper, pattern) };
  if (stack !== undefined) out.stack = mapStack(stack, filename, mapper);
  for (const text of [message, stack ?? '']) {
    pattern.lastIndex = 0;
    const m = pattern.exec(text);
    if (m) {
      out.position = mapper.toSource(Number(m[1]), m[2] === undefined ? 1 : Number(m[2]));
      break;
    }
  }
  return out;
}

/**
 * A policy that compiled but failed when its top level ran in a fresh isolate
 * (README, "Policies"): the error as a diagnostic at the tenant's line:column (1:1
 * when the error names no position in the policy).
 */
export function errorDiagnostic(error: unknown, filename: string, mapper: LineMapper): PolicyDiagnostic {
  const m = mapError(error, filename, mapper);
  const name = error !== null && typeof error === 'object' && typeof (error as { name?: unknown }).name === 'string' ? (error as { name: string }).name : 'Error';
  // isolated-vm's `[file:L:C]` suffix is redundant once the position is a field.
  const suffix = new RegExp(`\\s*\\[${escapeRegExp(filename)}(?::\\d+)*\\]$`);
  const message = m.message.replace(suffix, '');
  return { file: filename, line: m.position?.line ?? 1, column: m.position?.column ?? 1, message: `${name}: ${message}` };
}

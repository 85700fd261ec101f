import { createHash } from 'node:crypto';
import * as vm from 'node:vm';
import type * as TS from 'typescript';
import { sortDiagnostics, type LineMapper, type Located, type PolicyDiagnostic, type SourcePosition } from './diagnostics';
import { checkScriptRules } from './script-rules';
import { escapeRegExp, SourceMapLineMapper } from './source-map';
import { ts } from './typescript';

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

function stripSourceMappingUrl(js: string): string {
  return js.replace(/\n?\/\/# sourceMappingURL=[^\n]*\n?$/, '\n');
}

function readMappings(sourceMapText: string | undefined): string {
  if (!sourceMapText) return '';
  const map = JSON.parse(sourceMapText) as { mappings?: unknown };
  return typeof map.mappings === 'string' ? map.mappings : '';
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

// What the rest of Sluice takes from the compiler, in one place.
export { POLICY_DIAGNOSTIC_CODES, sortDiagnostics, type LineMapper, type PolicyDiagnostic, type PolicyDiagnosticCode, type SourcePosition } from './diagnostics';
export { decodeMappings, errorDiagnostic, mapError, mapStack, PRELUDE_FILENAME, SourceMapLineMapper, type MappedError } from './source-map';

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { compilePolicy, sortDiagnostics, type CompileOptions, type PolicyDiagnostic } from './compile';

/**
 * `sluice check`: a full type check of one tenant policy against the
 * declarations tenants code against (`sandbox/sluice.d.ts`), with the
 * ECMAScript library the sandbox really has and nothing else — no DOM, no
 * @types/node. Uses TypeScript 5.9's in-process program API; lib and
 * declaration SourceFiles are parsed once and shared between checks.
 *
 * Only the policy, the declarations and the lib files are ever read: the
 * policy lives at a virtual path, so nothing next to it on disk (a
 * tsconfig, node_modules, other files) takes part.
 */

/**
 * The ES2022 library minus what the sandbox removes or never had:
 * SharedArrayBuffer and Atomics (es2017/es2020.sharedmemory), WeakRef and
 * FinalizationRegistry (es2021.weakref). `sandbox/tsconfig.json` lists the same.
 * (`eval` and `Function` are in es5 and cannot be left out; the sandbox
 * makes them throw.)
 */
export const POLICY_LIBS: readonly string[] = Object.freeze([
  'es5',
  'es2015.core',
  'es2015.collection',
  'es2015.iterable',
  'es2015.generator',
  'es2015.promise',
  'es2015.proxy',
  'es2015.reflect',
  'es2015.symbol',
  'es2015.symbol.wellknown',
  'es2016.array.include',
  'es2016.intl',
  'es2017.arraybuffer',
  'es2017.date',
  'es2017.intl',
  'es2017.object',
  'es2017.string',
  'es2017.typedarrays',
  'es2018.asynciterable',
  'es2018.asyncgenerator',
  'es2018.promise',
  'es2018.regexp',
  'es2018.intl',
  'es2019.array',
  'es2019.object',
  'es2019.string',
  'es2019.symbol',
  'es2019.intl',
  'es2020.bigint',
  'es2020.date',
  'es2020.number',
  'es2020.promise',
  'es2020.string',
  'es2020.symbol.wellknown',
  'es2020.intl',
  'es2021.promise',
  'es2021.string',
  'es2021.intl',
  'es2022.array',
  'es2022.error',
  'es2022.intl',
  'es2022.object',
  'es2022.regexp',
  'es2022.string',
]);

/** Compiler options of a policy type check. */
export const POLICY_CHECK_OPTIONS: Readonly<ts.CompilerOptions> = Object.freeze({
  target: ts.ScriptTarget.ES2022,
  lib: POLICY_LIBS.map((l) => `lib.${l}.d.ts`),
  types: [],
  strict: true,
  noEmit: true,
  // lib and sluice.d.ts are checked once by the test suite, not per policy.
  skipLibCheck: true,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  allowJs: true,
  // As in any TS project: a JavaScript policy opts in with `// @ts-check`
  // (its syntax, module rules and early errors are always checked).
  checkJs: false,
  noFallthroughCasesInSwitch: true,
  useDefineForClassFields: true,
});

/** Options of {@link checkPolicySource} / {@link checkPolicyFile}. */
export interface CheckOptions extends CompileOptions {
  /** Path of the Sluice declarations; default: `sandbox/sluice.d.ts` found by {@link findSluiceDeclarations}. */
  declarations?: string;
}

const DECLARATIONS_NAME = 'sluice.d.ts';

/**
 * Find `sandbox/sluice.d.ts` by walking up from `from` (default: this
 * module's directory). Works from `src/policy-compiler/` and from the build output
 * `dist/src/policy-compiler/`, as `sandbox/` sits at the repository root.
 */
export function findSluiceDeclarations(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    const candidate = path.join(dir, 'sandbox', DECLARATIONS_NAME);
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`sandbox/${DECLARATIONS_NAME} not found above ${from}`);
    dir = parent;
  }
}

/** Type-check a policy file (read as UTF-8). Throws only when the file cannot be read. */
export function checkPolicyFile(file: string, options: CheckOptions = {}): PolicyDiagnostic[] {
  return checkPolicySource(fs.readFileSync(file, 'utf8'), file, options);
}

/**
 * Type-check a policy: compile errors first (size, syntax, module rules; as
 * `tsc`, no type errors are reported while the syntax is broken), then every
 * type error, sorted by position in the tenant's source. Empty when clean.
 */
export function checkPolicySource(source: string, filename: string, options: CheckOptions = {}): PolicyDiagnostic[] {
  const compiled = compilePolicy(source, filename, options);
  const compileErrors = compiled.ok ? [] : compiled.errors;
  // Too large, or unparsable: types would be noise (or too costly).
  if (compileErrors.some((d) => d.code === 'SLUICE_POLICY_TOO_LARGE' || (d.code !== undefined && d.code.startsWith('TS')))) return compileErrors;

  if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
  const declarations = path.resolve(options.declarations ?? defaultDeclarations());
  const policyPath = /\.[cm]?js$/i.test(filename) ? VIRTUAL_JS : VIRTUAL_TS;
  const host = new PolicyHost(policyPath, source, declarations);
  const program = ts.createProgram({ rootNames: [declarations, policyPath], options: POLICY_CHECK_OPTIONS, host });
  const policy = program.getSourceFile(policyPath)!;

  const found: PolicyDiagnostic[] = [...compileErrors];
  const seen = new Set(compileErrors.map((d) => `${d.line}:${d.column}:${d.message}`));
  const add = (d: PolicyDiagnostic): void => {
    const key = `${d.line}:${d.column}:${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      found.push(d);
    }
  };

  for (const d of referenceRules(policy, filename)) add(d);
  // Where Sluice already explains a problem (a reference it refuses, a
  // top-level await V8 refuses), TypeScript's take on the same spot only
  // adds noise, or host paths ("File '/…/lib.dom.d.ts' not found").
  const explained = new Set(found.filter((d) => d.code?.startsWith('SLUICE_')).map((d) => `${d.line}:${d.column}`));
  const all = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSyntacticDiagnostics(policy),
    ...program.getSemanticDiagnostics(policy),
  ];
  for (const d of all) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    if (isEditorReference(d, policy)) continue;
    const pd = toPolicyDiagnostic(d, policyPath, filename);
    if (pd.file === filename && explained.has(`${pd.line}:${pd.column}`)) continue;
    add(pd);
  }
  return sortDiagnostics(found);
}

// ---------------------------------------------------------------------------

const VIRTUAL_DIR = '/__sluice_policy__';
const VIRTUAL_TS = `${VIRTUAL_DIR}/policy.ts`;
const VIRTUAL_JS = `${VIRTUAL_DIR}/policy.js`;

let cachedDefault: string | undefined;
function defaultDeclarations(): string {
  return (cachedDefault ??= findSluiceDeclarations());
}

const LIB_DIR = path.dirname(ts.getDefaultLibFilePath(POLICY_CHECK_OPTIONS));
const ALLOWED_LIBS = new Set(
  // The references inside the allowed lib files (es5 pulls in the decorator libs).
  [...POLICY_LIBS, 'decorators', 'decorators.legacy'].map((l) => path.join(LIB_DIR, `lib.${l}.d.ts`)),
);

/** Parsed lib files, shared by every check (the checker keeps its state outside SourceFiles). */
const libFiles = new Map<string, ts.SourceFile>();
/** The parsed declarations, reparsed when the file changes. */
let declarationsFile: { path: string; mtimeMs: number; size: number; sf: ts.SourceFile } | undefined;

function sourceFileOptions(): ts.CreateSourceFileOptions {
  return { languageVersion: ts.ScriptTarget.ES2022 };
}

/** A compiler host that can read exactly three kinds of file: the policy (in memory), the declarations, and the allowed libs. */
class PolicyHost implements ts.CompilerHost {
  constructor(
    private readonly policyPath: string,
    private readonly policySource: string,
    private readonly declarations: string,
  ) {}

  getSourceFile(fileName: string): ts.SourceFile | undefined {
    if (fileName === this.policyPath) {
      return ts.createSourceFile(fileName, this.policySource, sourceFileOptions(), false, fileName.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
    }
    if (fileName === this.declarations) return loadDeclarations(fileName);
    if (ALLOWED_LIBS.has(fileName)) {
      let sf = libFiles.get(fileName);
      if (!sf) {
        sf = ts.createSourceFile(fileName, fs.readFileSync(fileName, 'utf8'), sourceFileOptions(), false);
        libFiles.set(fileName, sf);
      }
      return sf;
    }
    return undefined;
  }

  getDefaultLibFileName(options: ts.CompilerOptions): string {
    return ts.getDefaultLibFilePath(options);
  }

  getDefaultLibLocation(): string {
    return LIB_DIR;
  }

  writeFile(): void {
    // noEmit
  }

  getCurrentDirectory(): string {
    return VIRTUAL_DIR;
  }

  getCanonicalFileName(fileName: string): string {
    return fileName;
  }

  useCaseSensitiveFileNames(): boolean {
    return true;
  }

  getNewLine(): string {
    return '\n';
  }

  fileExists(fileName: string): boolean {
    return fileName === this.policyPath || fileName === this.declarations || ALLOWED_LIBS.has(fileName);
  }

  readFile(fileName: string): string | undefined {
    if (fileName === this.policyPath) return this.policySource;
    if (this.fileExists(fileName)) return fs.readFileSync(fileName, 'utf8');
    return undefined;
  }

  directoryExists(directoryName: string): boolean {
    return directoryName === VIRTUAL_DIR || directoryName === LIB_DIR || directoryName === path.dirname(this.declarations);
  }

  getDirectories(): string[] {
    return [];
  }
}

function loadDeclarations(fileName: string): ts.SourceFile {
  const st = fs.statSync(fileName);
  if (declarationsFile && declarationsFile.path === fileName && declarationsFile.mtimeMs === st.mtimeMs && declarationsFile.size === st.size) {
    return declarationsFile.sf;
  }
  const sf = ts.createSourceFile(fileName, fs.readFileSync(fileName, 'utf8'), sourceFileOptions(), false);
  declarationsFile = { path: fileName, mtimeMs: st.mtimeMs, size: st.size, sf };
  return sf;
}

/** `/// <reference path="…/sluice.d.ts" />` is for editors; the check provides those declarations itself. */
function isEditorReference(d: ts.Diagnostic, policy: ts.SourceFile): boolean {
  if (d.file !== policy || d.start === undefined) return false;
  return policy.referencedFiles.some((r) => r.pos <= d.start! && d.start! < r.end && path.basename(r.fileName) === DECLARATIONS_NAME);
}

/** The sandbox has ES2022 and the Sluice API: a policy cannot pull in other libs, @types or files. */
function referenceRules(policy: ts.SourceFile, filename: string): PolicyDiagnostic[] {
  const out: PolicyDiagnostic[] = [];
  const at = (r: ts.FileReference, message: string): void => {
    const lc = policy.getLineAndCharacterOfPosition(r.pos);
    out.push({ file: filename, line: lc.line + 1, column: lc.character + 1, message, code: 'SLUICE_POLICY_REFERENCE' });
  };
  for (const r of policy.libReferenceDirectives) at(r, `the sandbox has the ES2022 library only; lib "${r.fileName}" is not available`);
  for (const r of policy.typeReferenceDirectives) at(r, `a policy sees only the Sluice API; types "${r.fileName}" are not available`);
  for (const r of policy.referencedFiles) {
    if (path.basename(r.fileName) !== DECLARATIONS_NAME) at(r, `a policy is one file; "${r.fileName}" cannot be referenced`);
  }
  return out;
}

function toPolicyDiagnostic(d: ts.Diagnostic, policyPath: string, filename: string): PolicyDiagnostic {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return { file: filename, line: 1, column: 1, message, code: `TS${d.code}` };
  const lc = d.file.getLineAndCharacterOfPosition(d.start);
  // Errors in the declarations or a lib mean a broken installation; name that file.
  const file = d.file.fileName === policyPath ? filename : path.basename(d.file.fileName);
  return { file, line: lc.line + 1, column: lc.character + 1, message, code: `TS${d.code}` };
}

/**
 * What a policy's compilation or a runtime error reports: positions in the
 * tenant's own source (1-based lines, columns in UTF-16 code units) and the
 * codes of Sluice's own diagnostics.
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

/** A diagnostic without its file name: what the compile cache keeps. */
export type Located = Omit<PolicyDiagnostic, 'file'>;

/** Sort by position, stable. */
export function sortDiagnostics<T extends { line: number; column: number }>(list: T[]): T[] {
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
    .map((x) => x.d);
}

import type { LineMapper, PolicyDiagnostic, SourcePosition } from './diagnostics';

/**
 * From the compiled script back to the tenant's source: the source map's
 * mappings decoded into a LineMapper, and runtime errors (messages, stacks)
 * rewritten to the tenant's file and line:column.
 */

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

export function escapeRegExp(s: string): string {
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

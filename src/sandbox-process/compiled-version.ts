/**
 * One compiled version of a tenant's policy, and what its source map is
 * for: a load error placed at line:column in the tenant's source, and a
 * handler's answer checked before it leaves — a thrown error's message
 * bounded and placed in the tenant's source, anything that is not an answer
 * refused.
 */
import { compilePolicy, mapStack, type LineMapper, type PolicyDiagnostic } from '../policy-compiler/compile';
import type { SandboxOutcome } from '../sandbox-protocol/messages';
import { PolicyLoadError } from './isolate-failures';

export interface Version {
  number: number;
  hash: string;
  js: string;
  filename: string;
  mapper: LineMapper;
}

/** Compile under `maxBytes` (max_script_kb) into version `number`. */
export function compileVersion(source: string, filename: string, number: number, maxBytes: number): { ok: true; version: Version } | { ok: false; errors: PolicyDiagnostic[] } {
  const c = compilePolicy(source, filename, { maxBytes });
  if (!c.ok) return { ok: false, errors: c.errors };
  return { ok: true, version: { number, hash: c.hash, js: c.js, filename, mapper: c.sourceMap } };
}

/** Why a version did not start, at its place in the tenant's source where known. */
export function loadDiagnostic(err: unknown, v: Version): PolicyDiagnostic {
  if (err instanceof PolicyLoadError && err.line !== undefined) {
    const pos = v.mapper.toSource(err.line, err.column ?? 1);
    return { file: v.filename, line: pos.line, column: pos.column, message: err.message };
  }
  return { file: v.filename, line: 0, column: 0, message: (err as Error).message };
}

/** What a handler of version `v` answered, as it may leave the sandbox. */
export function outcomeOf(outcome: SandboxOutcome, v: Version): SandboxOutcome {
  const raw = outcome as unknown as { kind?: string; stack?: unknown };
  // Bounded here too: the prelude cuts these, but with intrinsics the policy can reach.
  if (raw && raw.kind === 'error' && typeof raw.stack === 'string') {
    const stack = mapStack(raw.stack.slice(0, 4000), v.filename, v.mapper);
    const first = /:(\d+):(\d+)/.exec(stack);
    const where = first ? ` (${v.filename}:${first[1]}:${first[2]})` : '';
    outcome = { kind: 'error', reason: 'throw', message: `${String((raw as { message?: unknown }).message).slice(0, 500)}${where}` };
  } else if (raw && raw.kind === 'error') {
    outcome = { kind: 'error', reason: 'throw', message: String((raw as { message?: unknown }).message).slice(0, 500) };
  } else if (raw && raw.kind === 'bind' && (raw as { reason?: unknown }).reason !== undefined) {
    outcome = { ...(outcome as { kind: 'bind'; accept: boolean; status: number }), reason: String((raw as { reason?: unknown }).reason).slice(0, 200) };
  }
  return isOutcome(outcome) ? outcome : { kind: 'error', reason: 'throw', message: 'handler returned something that is not an answer' };
}

function isOutcome(o: unknown): o is SandboxOutcome {
  if (!o || typeof o !== 'object') return false;
  const k = (o as { kind?: unknown }).kind;
  if (k === 'reply') return typeof (o as { status?: unknown }).status === 'number';
  if (k === 'bind') return typeof (o as { status?: unknown }).status === 'number';
  return k === 'default' || k === 'done' || k === 'error';
}

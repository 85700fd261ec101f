/**
 * How an isolate's failures are told apart and placed: why an entry failed
 * (timeout, memory, disposed, or the policy's own error), a policy that did
 * not load and where in its source, and the wrapper that makes whatever the
 * policy's top level throws readable inside the timed run.
 */

/** Why an entry into the isolate failed. */
export type EntryFailure = 'timeout' | 'memory' | 'disposed' | 'error';

export class EntryError extends Error {
  constructor(
    readonly failure: EntryFailure,
    message: string,
  ) {
    super(message);
    this.name = 'EntryError';
  }
}

/** Thrown by a source thunk whose policy did not compile (the caller has the diagnostics already). */
export class NotCompiled extends Error {
  constructor() {
    super('policy does not compile');
    this.name = 'NotCompiled';
  }
}

/** A policy that failed to load: the message and, where known, its position in the tenant's source. */
export class PolicyLoadError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'PolicyLoadError';
  }
}

export function classify(err: unknown): EntryError {
  const message = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(message)) return new EntryError('timeout', message);
  if (/memory limit/i.test(message)) return new EntryError('memory', message);
  if (/disposed/i.test(message)) return new EntryError('disposed', message);
  return new EntryError('error', message);
}

/** `policy.ts:12:5` positions from a V8 error, for mapping back to the tenant's source. */
export function firstPosition(text: string, filename: string): { line: number; column: number } | undefined {
  const escaped = filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(text);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : undefined;
}

/**
 * The policy's top level as it runs: in a try whose catch rethrows only a
 * string (the thrown value's stack or text, read inside the timed run), and
 * ending in `void 0`. isolated-vm copies a thrown object — running its
 * getters, or formatting its stack through a getter the policy put on
 * Error.prototype — after the timed part: `throw { get message() { for (;;) {} } }`
 * at top level would otherwise spin forever outside any timeout. Only syntax
 * is used in the catch, nothing a policy can replace. The prefix goes on
 * line 1, which compiled policies keep for their "use strict", so positions
 * hold. (A block also scopes the policy's top-level functions, which nothing
 * outside the policy refers to.)
 */
export function wrapTopLevel(js: string): string {
  const rethrow = 'catch(e){let m;try{m=e!==null&&(typeof e=="object"||typeof e=="function")?`${e.stack===undefined?e.message:e.stack}`:`${e}`}catch(_){m="a value that cannot be read"}throw m}';
  return `"use strict";try{${js}\n;void 0}${rethrow}`;
}

/**
 * What comes out of an isolate, and where it goes: the hooks its taker
 * (the tenant runtime) gives it, and the routing of what the prelude sends —
 * an entry's return value, or a late batch through `__sluice_send` — to them.
 */

/** What the isolate sends out; called on the sandbox process's main thread. */
export interface IsolateHooks {
  result(id: number, outcome: unknown): void;
  call(id: number, call: { op: string; origin: number; args: unknown }): void;
  log(entry: { level: string; msg: string; fields?: unknown; dropped?: number }): void;
  view(name: string): string;
  /**
   * isolated-vm lost this isolate for good (a V8 out-of-memory no heap limit
   * absorbs). Its thread never returns; the process should say whose it was
   * and exit (isolated-vm's README).
   */
  fatal?(message: string): void;
  /** May this isolate's entries run inline now (its tenant's standing)? Asked when a trial passes. */
  mayInline?(): boolean;
  /** An inline entry ran `ms` or failed: its entries are back on the isolate's thread. */
  demoted?(ms: number, why: string): void;
  /** An inline entry finished but ran `ms`, over `inlineEntryMs`: may it pass as a one-off (true), or demote (false, the default)? */
  tolerate?(ms: number): boolean;
}

/** Route what the prelude sent: `[op, id, data]` items (`['reply', id, status, message_id]` for the common answer), from an entry's return value or a late batch. */
export function route(hooks: IsolateHooks, items: unknown[]): void {
  for (const item of items) {
    if (!Array.isArray(item)) continue;
    const [op, id, data] = item as [string, number, unknown];
    if (op === 'reply') hooks.result(id, { kind: 'reply', status: data, fields: { message_id: String((item as unknown[])[3]) } });
    else if (op === 'result') hooks.result(id, data);
    else if (op === 'call') hooks.call(id, data as { op: string; origin: number; args: unknown });
    else if (op === 'log') hooks.log(data as { level: string; msg: string });
  }
}

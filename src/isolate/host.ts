/**
 * The prelude's line to the host. Everything it needs from the host arrives
 * as plain functions on the global object, which this module captures and
 * deletes as the prelude loads, before any tenant code:
 *
 *   __sluice_send(op, id, data)  fire-and-forget message to the host; here
 *                                only ever a 'batch' of items this prelude
 *                                built itself (src/sandbox-process/isolate-hooks.ts
 *                                `route()` reads them)
 *   __sluice_view(name)          a JSON string: the tenant's binds / sessions
 *   __sluice_pdu(bytes, View)    a PDU's view from its raw frame, defined by
 *                                the script run just before the prelude
 *                                (src/policy-compiler/pdu-bundle.ts)
 *
 * What a handler sends while an entry runs synchronously (a handler that
 * answers without awaiting, its host calls, its logs) goes back as the
 * entry's return value: no callback per message. What comes later, from
 * microtasks or continuations, is collected and posted once per microtask
 * checkpoint.
 */
import type { HostOp } from '../sandbox-protocol/host-calls';
import { apply, create, hasOwn, promiseResolve, StringCtor, then } from './intrinsics';

interface HostGlobals {
  __sluice_send: (op: 'batch', id: number, items: Item[]) => void;
  __sluice_view: (name: string) => string;
  __sluice_pdu: (bytes: Uint8Array, View: new () => object) => object | undefined;
}

const host = globalThis as unknown as Partial<HostGlobals>;
const post = host.__sluice_send!;
const view = host.__sluice_view!;
/** The PDU view builder (src/pdu/view.ts, loaded just before the prelude). */
export const pduView = host.__sluice_pdu!;
delete host.__sluice_send;
delete host.__sluice_view;
delete host.__sluice_pdu;

/** What a dispatch came to (`SandboxOutcome` in src/sandbox-protocol/messages.ts; an error also carries what was thrown, read and cut here). */
export type Outcome =
  | { kind: 'default' }
  | { kind: 'reply'; status: number; fields: unknown }
  | { kind: 'bind'; accept: boolean; status: number; reason: string | undefined }
  | { kind: 'done' }
  | { kind: 'error'; reason: 'throw'; message: string; code?: string | undefined; stack?: string | undefined };

/** A host call, as the host's `call` hook gets it. */
export interface CallRequest {
  op: HostOp;
  /** The dispatch it was made in. */
  origin: number;
  args: unknown;
}

/** A policy's log line, as the host's `log` hook gets it. */
export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: unknown;
  /** Lines dropped here since the last one sent. */
  dropped: number;
}

/**
 * One message to the host: `['result', id, outcome]` settles dispatch `id`,
 * `['call', id, request]` asks for host call `id`, `['log', 0, line]`, and
 * `['reply', id, status, message_id]` is the common answer, flat.
 */
export type Item = [op: 'result', id: number, outcome: Outcome] | [op: 'call', id: number, request: CallRequest] | [op: 'log', id: 0, line: LogLine] | [op: 'reply', id: number, status: number, messageId: string];

let outbox: Item[] | null = null;
let late: Item[] | null = null;
const flushLate = (): void => {
  const items = late;
  late = null;
  if (items !== null) post('batch', 0, items);
};

/** Send an item; true if it waits in the running entry's outbox (it is not yet the host's: a `call` item may still be marked). */
export function send(op: 'result', id: number, outcome: Outcome): boolean;
export function send(op: 'call', id: number, request: CallRequest): boolean;
export function send(op: 'log', id: 0, line: LogLine): boolean;
export function send(op: 'reply', id: number, status: number, messageId: string): boolean;
export function send(op: Item[0], id: number, data: unknown, extra?: string): boolean {
  const item = (extra === undefined ? [op, id, data] : [op, id, data, extra]) as Item;
  if (outbox !== null) {
    outbox[outbox.length] = item;
    return true;
  }
  if (late === null) {
    late = [];
    then(promiseResolve(undefined), flushLate);
  }
  late[late.length] = item;
  return false;
}

// One host round trip per view per entry: a synchronous host callback runs
// on the sandbox's main thread and is not charged to this isolate's CPU, so
// a policy calling smpp.sessions() in a loop must not reach the host each time.
let views: Record<string, string> = create(null);

/** The host's view `name` as JSON text, asked of the host once per entry. */
export function hostViewText(name: 'binds' | 'sessions'): string {
  if (!apply(hasOwn, views, [name])) views[name] = StringCtor(view(name));
  return views[name]!;
}

/** An entry from the host begins: what it sends is collected as its return value, and views are asked afresh. */
export function beginEntry(): void {
  views = create(null);
  outbox = [];
}

/** The entry ends: what it sent, for its return value. Only arrays and objects this prelude built: copying them out runs no policy code. */
export function endEntry(): Item[] | undefined {
  const out = outbox!;
  outbox = null;
  return out.length === 0 ? undefined : out;
}

import type { MsgRow } from '../cache/forward-store';
import type { PduOutcome, SessionInfo } from '../dispatch/policy-host';
import { isDlrEsmClass, MESSAGE_STATES, parseReceipt, type Receipt } from '../pdu/dlr';
import type { UnknownTlv } from '../wire/codec';
import { statusValue } from '../wire/status';

/**
 * What store and forward speaks in (forwarder.ts and its parts do the work): a PDU a
 * policy hands on and what it comes to, what the journal keeps of a message,
 * its keys, and the readings of receipts and receipt requests.
 */

/** A PDU a policy hands to `smpp.forward`. */
export interface ForwardRequest {
  command: string;
  fields: Record<string, unknown>;
  unknownTlvs?: UnknownTlv[];
  session: SessionInfo;
  /** Steps to take instead of the routing table's. */
  chain?: readonly string[];
  /** A routing rule to take by name instead of the longest prefix match. */
  rule?: string;
  /** MO: the system_id of the ESME it is for. */
  to?: string;
}

/** What `smpp.forward` resolves to. */
export interface ForwardResult {
  ok: boolean;
  command_status: string;
  /** Our id (submits), as the ESME is answered with. */
  message_id?: string;
  /** The bind that took it. */
  via?: string;
  /** Durably queued, to be sent on by the core. */
  queued?: true;
  /** For an ESME not bound here: held for its next session. */
  held?: true;
  /** A receipt: whether it named a message we know; `early` if it came before that message's submit_sm_resp. */
  matched?: boolean;
  early?: true;
  duplicate?: true;
  /** query_sm answers. */
  message_state?: number;
  final_date?: string;
  error_code?: number;
}

/**
 * The answer a forward's result gives the PDU it forwarded, as the policy's
 * `return smpp.forward(pdu)` gives it (the prelude's forwardReply): its
 * status, with our message_id (query_sm: and the message's state) on
 * ESME_ROK. Used when the policy cannot return it itself (its sandbox died
 * while the forward was under way). Undefined for a status that has no value.
 */
export function forwardAnswer(r: ForwardResult): PduOutcome | undefined {
  let status: number;
  try {
    status = statusValue(r.command_status);
  } catch {
    return undefined;
  }
  if (status !== 0) return { kind: 'reply', status };
  if (r.message_state !== undefined) return { kind: 'reply', status, fields: { message_id: r.message_id, message_state: r.message_state, final_date: r.final_date, error_code: r.error_code } };
  return { kind: 'reply', status, fields: typeof r.message_id === 'string' ? { message_id: r.message_id } : {} };
}

/** What the core keeps of one message (the journal row's JSON). */
export interface MsgData {
  sys: string;
  sid: string;
  id: string;
  cmd: string;
  src: string;
  dst: string;
  rd: number;
  /** Accepted at (wall ms). */
  at: number;
  /** Expires at (wall ms): the validity period, or the tenant's default. */
  exp: number;
  /** Queued: the steps it may take, and its fields, bytes as base64. */
  chain?: string[];
  f?: unknown;
  tlv?: unknown;
  /** Attempts so far. */
  n: number;
  /** Sent: the bind and the upstream's id as written. */
  bind?: string;
  uid?: string;
  /** Destinations still to send a final receipt (submit_sm_multi). */
  left?: number;
  /** Last receipt stat seen, final date, error. */
  stat?: string;
  done?: number;
  err?: string;
}

/** The upstream bind a receipt came on, and when (wall clock: an early receipt is matched later, maybe by another replica). */
export interface ReceiptVia {
  bind: string;
  at: number;
}

export const MESSAGE_STATE_OF: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(MESSAGE_STATES).map(([n, s]) => [s, Number(n)]));
export const FINAL_STATS = new Set(['DELIVRD', 'EXPIRED', 'DELETED', 'UNDELIV', 'REJECTD', 'UNKNOWN', 'SKIPPED']);
export const SUBMITS = new Set(['submit_sm', 'data_sm', 'submit_sm_multi']);
/** Upstream answers that mean "not now" rather than "no": the next step is tried. */
export const TRANSIENT = new Set([statusValue('ESME_RTHROTTLED'), statusValue('ESME_RMSGQFUL')]);

/** Our key of a message: the tenant and our id. */
export const msgKey = (tenant: string, id: string): string => `${encodeURIComponent(tenant)}/${encodeURIComponent(id)}`;
/** A correlation key: the tenant, the upstream account ('@' never starts an encoded name) and the id's key. */
export const upKey = (tenant: string, account: string, key: string): string => `${encodeURIComponent(tenant)}/@${encodeURIComponent(account)}/${key}`;
/** Rows written before receipts were correlated per account were keyed by bind: looked up too, until they age out. */
export const bindUpKey = (tenant: string, bind: string, key: string): string => `${encodeURIComponent(tenant)}/${encodeURIComponent(bind)}/${key}`;

/** The row under the first of `ups` that has one (the most likely reading of the id first). */
export function firstByUp(rows: readonly MsgRow[], ups: readonly string[]): MsgRow | undefined {
  for (const u of ups) {
    const r = rows.find((x) => x.up === u);
    if (r) return r;
  }
  return undefined;
}

/** registered_delivery bits 0-1 (SMSC delivery receipt: 1 on any final outcome, 2 on failure) and 4 (intermediate notifications). */
export function wantsReceipt(rd: number, stat: string): boolean {
  if (!FINAL_STATS.has(stat)) return (rd & 0x10) !== 0;
  const mc = rd & 0x03;
  return mc === 1 || (mc === 2 && stat !== 'DELIVRD');
}

export function firstDestination(fields: Record<string, unknown>): string | undefined {
  const list = fields.dest_address;
  if (!Array.isArray(list)) return undefined;
  for (const d of list as { destination_addr?: unknown }[]) if (typeof d?.destination_addr === 'string') return d.destination_addr;
  return undefined;
}

/** A deliver_sm / data_sm that is a delivery receipt, parsed; undefined for anything else. */
export function asReceipt(fields: Record<string, unknown>): Receipt | undefined {
  if (!isDlrEsmClass(Number(fields.esm_class ?? 0))) return undefined;
  const body = fields.short_message instanceof Uint8Array && fields.short_message.length > 0 ? fields.short_message : fields.message_payload;
  const text = body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1') : undefined;
  return parseReceipt(text, {
    receipted_message_id: typeof fields.receipted_message_id === 'string' ? fields.receipted_message_id : undefined,
    message_state: typeof fields.message_state === 'number' ? fields.message_state : undefined,
    network_error_code: fields.network_error_code instanceof Uint8Array ? fields.network_error_code : undefined,
  });
}

/**
 * Delivery receipts as Sluice policies see them: the SMPP 3.4 Appendix B text
 * body, read tolerantly, with the receipt TLVs filling what the body lacks.
 * Pure; no I/O.
 */

/** esm_class message-type bits (5..2). */
const ESM_TYPE_MASK = 0x3c;
/** Message type 0001: MC delivery receipt. */
const ESM_DELIVERY_RECEIPT = 0x04;
/** Message type 1000: intermediate delivery notification. */
const ESM_INTERMEDIATE_NOTIFICATION = 0x20;

/** True when esm_class marks a deliver_sm / data_sm as a delivery receipt or intermediate notification. */
export function isDlrEsmClass(esmClass: number): boolean {
  const type = esmClass & ESM_TYPE_MASK;
  return type === ESM_DELIVERY_RECEIPT || type === ESM_INTERMEDIATE_NOTIFICATION;
}

/** A delivery receipt. Field names follow the Appendix B keys; every value is kept as text. */
export interface Receipt {
  id: string;
  sub?: string;
  dlvrd?: string;
  submit_date?: string;
  done_date?: string;
  /** Upper case, e.g. DELIVRD. UNKNOWN when neither body nor TLV says. */
  stat: string;
  err?: string;
  text?: string;
  /** The body as given, '' when there was none. */
  raw: string;
}

/** The receipt TLVs parseReceipt looks at. */
export interface ReceiptTlvs {
  receipted_message_id?: string;
  message_state?: number;
  network_error_code?: Uint8Array;
}

/** SMPP 3.4 message_state values → the stat word used in receipt bodies. */
export const MESSAGE_STATES: Readonly<Record<number, string>> = {
  1: 'ENROUTE',
  2: 'DELIVRD',
  3: 'EXPIRED',
  4: 'DELETED',
  5: 'UNDELIV',
  6: 'ACCEPTD',
  7: 'UNKNOWN',
  8: 'REJECTD',
  9: 'SKIPPED',
};

type Field = 'id' | 'sub' | 'dlvrd' | 'submit_date' | 'done_date' | 'stat' | 'err' | 'text';

/**
 * A key is a word at the start of the body or after whitespace, followed by a
 * colon. The two date keys may be split by spaces, '_' or '-' (or not at all),
 * so they are tried first. Requiring whitespace before a key stops a value
 * such as "DELIVRD" in "stat:DELIVRD err:0" from being read as part of a key.
 */
const KEY_RE = /(?<=^|\s)(submit[\s_-]*date|done[\s_-]*date|[A-Za-z][A-Za-z0-9_-]*)\s*:/gi;

function fieldOf(key: string): Field | undefined {
  switch (key.toLowerCase().replace(/[\s_-]+/g, '')) {
    case 'id':
      return 'id';
    case 'sub':
      return 'sub';
    case 'dlvrd':
      return 'dlvrd';
    case 'submitdate':
      return 'submit_date';
    case 'donedate':
      return 'done_date';
    case 'stat':
      return 'stat';
    case 'err':
      return 'err';
    case 'text':
      return 'text';
    default:
      return undefined;
  }
}

/** Reads the known fields of a receipt body; unknown keys are skipped, the first occurrence of a key wins. */
function parseBody(body: string): Partial<Record<Field, string>> {
  const found: Partial<Record<Field, string>> = {};
  const keys: { field: Field | undefined; start: number; valueStart: number }[] = [];
  for (const m of body.matchAll(KEY_RE)) {
    const field = fieldOf(m[1]!);
    keys.push({ field, start: m.index, valueStart: m.index + m[0].length });
    if (field === 'text') break; // text runs to the end, colons and all
  }
  for (let i = 0; i < keys.length; i++) {
    const { field, valueStart } = keys[i]!;
    if (field === undefined || found[field] !== undefined) continue;
    if (field === 'text') {
      found.text = body.slice(valueStart);
      continue;
    }
    const end = i + 1 < keys.length ? keys[i + 1]!.start : body.length;
    const span = body.slice(valueStart, end).trim();
    // Dates may carry a space ("2024-01-31 12:00:00"); the other values are
    // single tokens, so stray words after them are not taken as part of them.
    found[field] = field === 'submit_date' || field === 'done_date' ? span : (span.split(/\s+/)[0] ?? '');
  }
  return found;
}

/**
 * Builds a Receipt from a receipt body (Appendix B text form, read tolerantly:
 * keys in any case and order, date keys spelt `submit date` / `submit_date` /
 * `submitdate`, unknown keys, extra spaces, `text:` to the end) and the receipt
 * TLVs. Body values win; the TLVs fill an id, stat or err the body lacks.
 * Returns undefined when neither gives a message id.
 */
export function parseReceipt(body: string | undefined, tlvs: ReceiptTlvs): Receipt | undefined {
  const raw = body ?? '';
  const f = parseBody(raw);

  // A C-Octet String TLV may reach here with its terminating NUL still on.
  const tlvId = tlvs.receipted_message_id?.replace(/\0+$/, '');
  const id = f.id || tlvId;
  if (!id) return undefined;

  const tlvStat = tlvs.message_state === undefined ? undefined : MESSAGE_STATES[tlvs.message_state];
  const stat = (f.stat || tlvStat || 'UNKNOWN').toUpperCase();

  let tlvErr: string | undefined;
  const nec = tlvs.network_error_code;
  if (nec && nec.length === 3) tlvErr = String((nec[1]! << 8) | nec[2]!).padStart(3, '0');
  const err = f.err || tlvErr;

  const r: Receipt = { id, stat, raw };
  if (f.sub !== undefined) r.sub = f.sub;
  if (f.dlvrd !== undefined) r.dlvrd = f.dlvrd;
  if (f.submit_date !== undefined) r.submit_date = f.submit_date;
  if (f.done_date !== undefined) r.done_date = f.done_date;
  if (err) r.err = err;
  if (f.text !== undefined) r.text = f.text;
  return r;
}

import { isDlrEsmClass, parseReceipt } from './dlr';
import type { Destination, PolicyPdu } from './model';
import { decodeText } from './text';
import { splitUdh } from './udh';

/**
 * The policy's view of a PDU, built from its raw frame. This module runs in
 * two places: in the core (through `toPolicyPdu`) and inside every tenant's
 * isolate, where the sandbox hands a policy its PDUs as raw frames and the
 * prelude builds the views itself — one copy of bytes into the isolate
 * instead of a structured clone of an object per PDU, and the work charged
 * to the tenant whose view it is. So it must stay free of Node: no Buffer,
 * no `require` beyond its sibling pure modules (the isolate loader provides
 * `./dlr`, `./text`, `./udh`, `./gsm7` and `../errors`, nothing else).
 *
 * The field layouts come from npm `smpp`'s definitions (`viewTables()` in
 * src/wire/codec.ts), as plain data. Frames reaching a policy were checked by the
 * core's codec (src/wire/codec.ts) already; this walk still never reads past
 * the frame and answers undefined for what does not parse.
 */

/** Mandatory field layouts: C-string, unsigned ints, length-prefixed octets, submit_multi's address lists. */
export type FieldKind = 'c' | 'i1' | 'i2' | 'i4' | 'b' | 'da' | 'us';
/** TLV value kinds: unsigned ints, C-string, 7-bit string, octets. */
export type TlvKind = 'i1' | 'i2' | 'i4' | 'c' | 's' | 'b';

export interface ViewTables {
  /** command_id → [SMPP command name, mandatory fields in wire order, TLV renames for this command]. */
  commands: Record<number, [string, [string, FieldKind][], Record<string, string>?]>;
  /** tag → [name, kind, 1 when the TLV may repeat]. */
  tlvs: Record<number, [string, TlvKind, 0 | 1]>;
}

const HEADER = 16;
const UDHI = 0x40;
const FIXED: Record<string, number> = { i1: 1, i2: 2, i4: 4 };

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Bytes as Latin-1 text; `mask` clears the high bit (npm smpp's 'ascii' reading). */
export function latin1(b: Uint8Array, start: number, end: number, mask = false): string {
  let s = '';
  if (end - start <= 48) {
    // Addresses, ids, short texts: a loop beats the typed-array apply.
    for (let i = start; i < end; i++) s += String.fromCharCode(mask ? b[i]! & 0x7f : b[i]!);
    return s;
  }
  for (let i = start; i < end; i += 1024) {
    const part = b.subarray(i, Math.min(end, i + 1024));
    s += String.fromCharCode.apply(null, (mask ? part.map((x) => x & 0x7f) : part) as unknown as number[]);
  }
  return s;
}

function copy(b: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(b.subarray(start, end));
  return out;
}

function nulIndex(b: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (b[i] === 0) return i;
  return -1;
}

/** submit_multi's destination list (or unsuccess_sme list), as npm `smpp` reads it; undefined when it runs past `end`. */
function readList(b: Uint8Array, off: number, end: number, kind: 'da' | 'us'): { value: unknown[]; next: number } | undefined {
  if (off >= end) return undefined;
  let n = b[off++]!;
  const value: unknown[] = [];
  const cstr = (): string | undefined => {
    const nul = nulIndex(b, off, end);
    if (nul === -1) return undefined;
    const s = latin1(b, off, nul, true);
    off = nul + 1;
    return s;
  };
  while (n-- > 0) {
    if (kind === 'da') {
      if (off >= end) return undefined;
      const flag = b[off++]!;
      if (flag === 1) {
        if (off + 2 > end) return undefined;
        const ton = b[off]!;
        const npi = b[off + 1]!;
        off += 2;
        const addr = cstr();
        if (addr === undefined) return undefined;
        value.push({ dest_addr_ton: ton, dest_addr_npi: npi, destination_addr: addr });
      } else {
        const dl = cstr();
        if (dl === undefined) return undefined;
        value.push({ dl_name: dl });
      }
    } else {
      if (off + 2 > end) return undefined;
      const ton = b[off]!;
      const npi = b[off + 1]!;
      off += 2;
      const addr = cstr();
      if (addr === undefined || off + 4 > end) return undefined;
      value.push({ dest_addr_ton: ton, dest_addr_npi: npi, destination_addr: addr, error_status_code: u32(b, off) });
      off += 4;
    }
  }
  return { value, next: off };
}

/**
 * The policy's view of one whole PDU frame (command_length bytes); undefined
 * when it does not parse. `View` makes the empty object the fields go on (the
 * prelude's class, which carries `reply` and `replyQuery`); a plain object by
 * default.
 */
export function decodeView(b: Uint8Array, tables: ViewTables, View?: new () => object): PolicyPdu | undefined {
  if (b.length < HEADER) return undefined;
  const def = tables.commands[u32(b, 4)];
  if (!def) return undefined;
  const pdu: PolicyPdu = View ? (new View() as PolicyPdu) : ({} as PolicyPdu);
  pdu.command = def[0];
  pdu.sequence_number = u32(b, 12);
  return walk(b, tables, pdu) === undefined ? derive(pdu) : undefined;
}

/**
 * Why a whole frame of a known command does not parse, or undefined when it
 * does: the same walk as `decodeView` without building anything, so the core
 * can check a PDU it will only forward without decoding it.
 */
export function checkFrame(b: Uint8Array, tables: ViewTables): string | undefined {
  return walk(b, tables, undefined);
}

/**
 * The field walk: every mandatory field of a request must be present and end
 * inside the PDU (a response may stop early), TLVs must fit exactly, unknown
 * or oddly sized TLVs are kept as bytes. Fills `pdu` when given. Returns why
 * it failed, or undefined.
 */
function walk(b: Uint8Array, tables: ViewTables, pdu: PolicyPdu | undefined): string | undefined {
  const end = b.length;
  const commandId = u32(b, 4);
  const [command, params, renames] = tables.commands[commandId]!;
  const isResp = (commandId & 0x80000000) !== 0;
  let off = HEADER;
  for (let i = 0; i < params.length; i++) {
    if (off >= end && isResp) break;
    const [key, kind] = params[i]!;
    if (kind === 'c') {
      const nul = nulIndex(b, off, end);
      if (nul === -1) return `${command}: ${key} is not NUL-terminated inside the PDU`;
      if (pdu) pdu[key] = latin1(b, off, nul);
      off = nul + 1;
    } else if (kind === 'b') {
      if (off + 1 > end || off + 1 + b[off]! > end) return `${command}: ${key} length runs past the end of the PDU`;
      if (pdu) pdu[key] = copy(b, off + 1, off + 1 + b[off]!);
      off += 1 + b[off]!;
    } else if (kind === 'da' || kind === 'us') {
      const r = readList(b, off, end, kind);
      if (!r) return `${command}: ${key} runs past the end of the PDU`;
      if (pdu && kind === 'da') pdu.destinations = r.value as Destination[];
      else if (pdu) pdu[key] = r.value;
      off = r.next;
    } else {
      const size = FIXED[kind]!;
      if (off + size > end) return `${command}: ${key} runs past the end of the PDU`;
      if (pdu) pdu[key] = size === 1 ? b[off]! : size === 2 ? u16(b, off) : u32(b, off);
      off += size;
    }
  }
  while (off < end) {
    if (off + 4 > end) return `${command}: trailing bytes that are not a TLV`;
    const tag = u16(b, off);
    const len = u16(b, off + 2);
    const start = off + 4;
    off = start + len;
    if (off > end) return `${command}: TLV 0x${tag.toString(16)} runs past the end of the PDU`;
    if (!pdu) continue;
    const tlv = tables.tlvs[tag];
    const fixed = tlv ? FIXED[tlv[1]] : undefined;
    if (!tlv || (fixed !== undefined && fixed !== len)) {
      // Unknown, or not the size its definition says: the bytes, in order.
      (pdu.unknown_tlvs ??= []).push({ tag, value: copy(b, start, off) });
      continue;
    }
    const kind = tlv[1];
    let value: unknown;
    if (kind === 'c') {
      const nul = nulIndex(b, start, off);
      value = latin1(b, start, nul === -1 ? off : nul);
    } else if (kind === 's') value = latin1(b, start, off, true);
    else if (kind === 'b') value = copy(b, start, off);
    else value = kind === 'i1' ? b[start]! : kind === 'i2' ? u16(b, start) : u32(b, start);
    const name = renames?.[tlv[0]] ?? tlv[0];
    if (tlv[2]) ((pdu[name] ??= []) as unknown[]).push(value);
    else pdu[name] = value;
  }
  return undefined;
}

/** What Sluice derives from the fields: `text`, `udh`, and for deliver_sm / data_sm `isDlr` and `receipt`. */
export function derive(pdu: PolicyPdu): PolicyPdu {
  const dataCoding = typeof pdu.data_coding === 'number' ? pdu.data_coding : 0;
  const esmClass = typeof pdu.esm_class === 'number' ? pdu.esm_class : 0;
  // The payload TLV replaces short_message when present (SMPP 3.4 §5.3.2.32).
  const user = pdu.message_payload && pdu.message_payload.length > 0 ? pdu.message_payload : pdu.short_message;
  if (user) {
    let body = user;
    if (esmClass & UDHI) {
      const split = splitUdh(user);
      if (split) {
        pdu.udh = split.udh;
        body = split.body;
      }
    }
    const text = decodeText(body, dataCoding);
    if (text !== undefined) pdu.text = text;
  }
  if (pdu.command === 'deliver_sm' || pdu.command === 'data_sm') {
    const isDlr = isDlrEsmClass(esmClass);
    pdu.isDlr = isDlr;
    if (isDlr) {
      const body = pdu.text ?? (user ? latin1(user, 0, user.length) : undefined);
      const receipt = parseReceipt(body, {
        receipted_message_id: typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : undefined,
        message_state: typeof pdu.message_state === 'number' ? pdu.message_state : undefined,
        network_error_code: pdu.network_error_code instanceof Uint8Array ? pdu.network_error_code : undefined,
      });
      if (receipt) pdu.receipt = receipt;
    }
  }
  return pdu;
}

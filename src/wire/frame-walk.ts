/**
 * The walk over one whole PDU frame (command_length bytes) by the field
 * layouts of npm `smpp`'s definitions (`viewTables()` in codec.ts, as plain
 * data): the codec's check of a frame before anything decodes it, and the
 * first half of the policy's view (src/pdu/view.ts), which fills its fields
 * from the same walk. It runs in the core and inside every isolate, so it
 * uses no Node API and imports nothing; it never reads past the frame.
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

/** What the walk fills: field names to values, submit_multi's list, TLVs it has no name for. */
export interface WalkTarget {
  destinations?: unknown[];
  unknown_tlvs?: { tag: number; value: Uint8Array }[];
  [field: string]: unknown;
}

export const HEADER = 16;
const FIXED: Record<string, number> = { i1: 1, i2: 2, i4: 4 };

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32(b: Uint8Array, o: number): number {
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
 * Why a whole frame of a known command does not parse, or undefined when it
 * does: the same walk as `decodeView` without building anything, so the core
 * can check a PDU it will only forward without decoding it.
 */
export function checkFrame(b: Uint8Array, tables: ViewTables): string | undefined {
  return walkFrame(b, tables, undefined);
}

/**
 * The field walk: every mandatory field of a request must be present and end
 * inside the PDU (a response may stop early), TLVs must fit exactly, unknown
 * or oddly sized TLVs are kept as bytes. Fills `pdu` when given. Returns why
 * it failed, or undefined.
 */
export function walkFrame(b: Uint8Array, tables: ViewTables, pdu: WalkTarget | undefined): string | undefined {
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
      if (pdu && kind === 'da') pdu.destinations = r.value;
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

/**
 * User Data Header (GSM 03.40 §9.2.3.24) at the front of short_message when
 * esm_class has UDHI set. Pure; no I/O.
 */
import { SluiceError } from '../errors';

/** One information element of a UDH. */
export interface UdhIe {
  iei: number;
  data: Uint8Array;
}

/** Concatenated-message position taken from IEI 0x00 (8-bit ref) or 0x08 (16-bit ref). */
export interface UdhConcat {
  ref: number;
  total: number;
  seq: number;
}

/** A short_message split into its UDH and the rest. */
export interface SplitUdh {
  /** The whole header, UDHL byte included. */
  udh: Uint8Array;
  /** What follows the header. */
  body: Uint8Array;
  ies: UdhIe[];
  concat?: UdhConcat;
}

/** IEI of the concatenated short message IE with an 8-bit reference. */
export const IEI_CONCAT_8 = 0x00;
/** IEI of the concatenated short message IE with a 16-bit reference. */
export const IEI_CONCAT_16 = 0x08;

/** A fresh plain Uint8Array copy, so results neither alias the input nor come back as Buffer. */
function copy(src: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(src.subarray(start, end));
  return out;
}

/**
 * Reads a concat IE; undefined when its length or numbers are not ones a
 * receiver may act on (03.40: ignore the IE when seq is 0 or beyond total).
 */
function readConcat(ie: UdhIe): UdhConcat | undefined {
  const d = ie.data;
  let c: UdhConcat;
  if (ie.iei === IEI_CONCAT_8 && d.length === 3) c = { ref: d[0]!, total: d[1]!, seq: d[2]! };
  else if (ie.iei === IEI_CONCAT_16 && d.length === 4) c = { ref: (d[0]! << 8) | d[1]!, total: d[2]!, seq: d[3]! };
  else return undefined;
  return c.total >= 1 && c.seq >= 1 && c.seq <= c.total ? c : undefined;
}

/**
 * Splits `sm` (short_message with UDHI set) into header and body. Returns
 * undefined when the header is malformed: empty input, UDHL running past the
 * end, or an IE running past UDHL. UDHL 0 is valid and gives no IEs. When
 * several concat IEs appear the last valid one wins, as 03.40 asks of repeats.
 */
export function splitUdh(sm: Uint8Array): SplitUdh | undefined {
  if (sm.length < 1) return undefined;
  const udhl = sm[0]!;
  const end = 1 + udhl;
  if (end > sm.length) return undefined;
  const ies: UdhIe[] = [];
  let concat: UdhConcat | undefined;
  let p = 1;
  while (p < end) {
    if (p + 2 > end) return undefined; // IEI without its length byte
    const iei = sm[p]!;
    const len = sm[p + 1]!;
    const dataEnd = p + 2 + len;
    if (dataEnd > end) return undefined;
    const ie: UdhIe = { iei, data: copy(sm, p + 2, dataEnd) };
    ies.push(ie);
    concat = readConcat(ie) ?? concat;
    p = dataEnd;
  }
  const out: SplitUdh = { udh: copy(sm, 0, end), body: copy(sm, end, sm.length), ies };
  if (concat) out.concat = concat;
  return out;
}

/**
 * Puts a header (UDHL byte included, as splitUdh returns it) back in front of
 * `body`. An empty `udh` gives a copy of `body`. Throws
 * SluiceError('INVALID_FIELD') when the UDHL byte disagrees with udh's length.
 */
export function joinUdh(udh: Uint8Array, body: Uint8Array): Uint8Array {
  if (udh.length > 0 && udh[0]! + 1 !== udh.length) {
    throw new SluiceError('INVALID_FIELD', `UDH length byte says ${udh[0]!} but the header has ${udh.length - 1} bytes after it`);
  }
  const out = new Uint8Array(udh.length + body.length);
  out.set(udh, 0);
  out.set(body, udh.length);
  return out;
}

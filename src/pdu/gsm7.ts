/**
 * GSM 03.38 default alphabet and its extension table, as Sluice carries them
 * over SMPP with data_coding 0: UNPACKED septets, one septet per octet.
 * Pure functions over precomputed tables; this is on the hot path of every
 * submit_sm / deliver_sm a policy looks at.
 */
import { SluiceError } from '../errors';

/** The escape septet that prefixes an extension-table character. */
export const GSM7_ESC = 0x1b;

/**
 * The basic character set, indexed by septet. 0x1B is the escape; the entry
 * given here (NBSP) is what 03.38 says to show for it when it cannot be
 * interpreted, and is never produced by the encoder.
 */
const BASIC =
  '@£$¥èéùìòÇ\nØø\rÅå' +
  'Δ_ΦΓΛΩΠΨΣΘΞ\u00a0ÆæßÉ' +
  ' !"#¤%&\'()*+,-./' +
  '0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNO' +
  'PQRSTUVWXYZÄÖÑÜ§' +
  '¿abcdefghijklmno' +
  'pqrstuvwxyzäöñüà';

/** The extension table: septet following ESC → character. */
const EXTENSION: ReadonlyArray<readonly [number, string]> = [
  [0x0a, '\f'],
  [0x14, '^'],
  [0x28, '{'],
  [0x29, '}'],
  [0x2f, '\\'],
  [0x3c, '['],
  [0x3d, '~'],
  [0x3e, ']'],
  [0x40, '|'],
  [0x65, '€'],
];

/** Septet → UTF-16 code unit for the basic table. */
const DECODE_BASIC = new Uint16Array(128);
/** Septet after ESC → UTF-16 code unit, 0 where the extension table has no entry. */
const DECODE_EXT = new Uint16Array(128);

/** Marks a code unit with no GSM representation in ENCODE. */
const NONE = 0xffff;
/** Set in an ENCODE entry when the character needs ESC before its septet. */
const EXT_FLAG = 0x100;
/**
 * UTF-16 code unit → septet (or EXT_FLAG | septet). Every GSM character is in
 * the BMP, so a flat 64K table answers every lookup with one index.
 */
const ENCODE = new Uint16Array(0x10000).fill(NONE);

for (let i = 0; i < 128; i++) {
  const cu = BASIC.charCodeAt(i);
  DECODE_BASIC[i] = cu;
  if (i !== GSM7_ESC) ENCODE[cu] = i;
}
for (const [septet, ch] of EXTENSION) {
  const cu = ch.charCodeAt(0);
  DECODE_EXT[septet] = cu;
  ENCODE[cu] = EXT_FLAG | septet;
}

const REPLACEMENT = 0xfffd;

function describe(text: string, index: number): string {
  const cp = text.codePointAt(index) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  return `character ${JSON.stringify(String.fromCodePoint(cp))} (U+${hex}) at index ${index} is not in the GSM 03.38 alphabet`;
}

/** Index of the first UTF-16 code unit with no GSM representation, or -1. */
function firstUnencodable(text: string): number {
  for (let i = 0; i < text.length; i++) {
    if (ENCODE[text.charCodeAt(i)] === NONE) return i;
  }
  return -1;
}

/**
 * Number of septets `text` takes in GSM 03.38, counting each extension
 * character as two (ESC + code). Throws SluiceError('INVALID_FIELD') like
 * gsm7Encode when the text is not representable.
 */
export function gsm7Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const e = ENCODE[text.charCodeAt(i)]!;
    if (e === NONE) throw new SluiceError('INVALID_FIELD', describe(text, i));
    n += e & EXT_FLAG ? 2 : 1;
  }
  return n;
}

/** True when every character of `text` is in the GSM 03.38 basic or extension table. */
export function isGsm7(text: string): boolean {
  return firstUnencodable(text) === -1;
}

/**
 * Encodes `text` as unpacked GSM 03.38 septets, one per octet. Throws
 * SluiceError('INVALID_FIELD') naming the first unrepresentable character and
 * its (UTF-16) index.
 */
export function gsm7Encode(text: string): Uint8Array {
  const out = new Uint8Array(gsm7Length(text));
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const e = ENCODE[text.charCodeAt(i)]!;
    if (e & EXT_FLAG) {
      out[o++] = GSM7_ESC;
      out[o++] = e & 0x7f;
    } else {
      out[o++] = e;
    }
  }
  return out;
}

/**
 * Decodes unpacked GSM 03.38 septets. Never throws:
 * - an octet ≥ 0x80 (not a septet) decodes as U+FFFD;
 * - ESC followed by a code the extension table lacks decodes as the basic
 *   character of that following septet (ESC ESC gives NBSP, the basic entry for 0x1B);
 * - a trailing lone ESC decodes as nothing.
 */
export function gsm7Decode(bytes: Uint8Array): string {
  const units = new Uint16Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === GSM7_ESC) {
      if (i + 1 >= bytes.length) break;
      const next = bytes[++i]!;
      if (next >= 0x80) units[n++] = REPLACEMENT;
      else units[n++] = DECODE_EXT[next]! || DECODE_BASIC[next]!;
    } else {
      units[n++] = b >= 0x80 ? REPLACEMENT : DECODE_BASIC[b]!;
    }
  }
  return unitsToString(units, n);
}

/**
 * Builds a string from the first `n` UTF-16 code units, in chunks to stay clear
 * of argument-count limits. Shared with text.ts; not part of the policy API.
 * @internal
 */
export function unitsToString(units: Uint16Array, n: number): string {
  const CHUNK = 0x2000;
  if (n <= 48) {
    // Short texts (most SMS): a loop beats the typed-array apply.
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(units[i]!);
    return s;
  }
  if (n <= CHUNK) return String.fromCharCode.apply(null, units.subarray(0, n) as unknown as number[]);
  let s = '';
  for (let i = 0; i < n; i += CHUNK) {
    s += String.fromCharCode.apply(null, units.subarray(i, Math.min(n, i + CHUNK)) as unknown as number[]);
  }
  return s;
}

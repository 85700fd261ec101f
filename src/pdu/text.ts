/**
 * short_message / message_payload text as Sluice policies see it: bytes plus
 * data_coding in, a JS string out, and back. Pure; no I/O.
 */
import { SluiceError } from '../errors';
import { gsm7Decode, gsm7Encode, isGsm7, unitsToString } from './gsm7';

/** How a data_coding value says the octets are to be read. */
type Scheme = 'gsm7' | 'ia5' | 'latin1' | 'ucs2' | 'binary' | 'unsupported';

/**
 * Classifies an SMPP 3.4 data_coding value, including the GSM 03.38 coding
 * groups Sluice understands:
 * - 0x10–0x1F general data coding, uncompressed: bits 3..2 pick the alphabet;
 * - 0x20–0x3F general data coding, compressed (bit 5): no decompressor, so unsupported;
 * - 0xF0–0xFF data coding / message class: bit 2 set is 8-bit data, else GSM 7-bit.
 */
function schemeOf(dataCoding: number): Scheme {
  if (!Number.isInteger(dataCoding) || dataCoding < 0 || dataCoding > 0xff) return 'unsupported';
  switch (dataCoding) {
    case 0x00:
      return 'gsm7';
    case 0x01:
      return 'ia5';
    case 0x02:
    case 0x04:
      return 'binary';
    case 0x03:
      return 'latin1';
    case 0x08:
      return 'ucs2';
  }
  if (dataCoding >= 0x10 && dataCoding <= 0x1f) {
    switch ((dataCoding >> 2) & 0x03) {
      case 0:
        return 'gsm7';
      case 1:
        return 'binary';
      case 2:
        return 'ucs2';
      default:
        return 'unsupported'; // alphabet 11 is reserved
    }
  }
  if (dataCoding >= 0xf0) return dataCoding & 0x04 ? 'binary' : 'gsm7';
  return 'unsupported';
}

function dcName(dc: number): string {
  return Number.isInteger(dc) && dc >= 0 && dc <= 0xff
    ? `${dc} (0x${dc.toString(16).toUpperCase().padStart(2, '0')})`
    : String(dc);
}

function unencodable(text: string, index: number, what: string): SluiceError {
  const cp = text.codePointAt(index) ?? 0;
  const u = cp.toString(16).toUpperCase().padStart(4, '0');
  return new SluiceError(
    'INVALID_FIELD',
    `character ${JSON.stringify(String.fromCodePoint(cp))} (U+${u}) at index ${index} is not representable in ${what}`,
  );
}

function decodeIa5(bytes: Uint8Array): string {
  const units = new Uint16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    units[i] = b < 0x80 ? b : 0xfffd;
  }
  return unitsToString(units, bytes.length);
}

function decodeLatin1(bytes: Uint8Array): string {
  return unitsToString(Uint16Array.from(bytes), bytes.length);
}

/** UTF-16BE, so surrogate pairs (emoji) survive; an odd trailing byte is dropped. */
function decodeUcs2(bytes: Uint8Array): string {
  const n = bytes.length >> 1;
  const units = new Uint16Array(n);
  for (let i = 0; i < n; i++) units[i] = (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  return unitsToString(units, n);
}

function encodeSingleByte(text: string, max: number, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const cu = text.charCodeAt(i);
    if (cu > max) throw unencodable(text, i, what);
    out[i] = cu;
  }
  return out;
}

function encodeUcs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const cu = text.charCodeAt(i);
    out[2 * i] = cu >> 8;
    out[2 * i + 1] = cu & 0xff;
  }
  return out;
}

/**
 * Decodes message octets according to `dataCoding`. Returns undefined when the
 * octets are not text (8-bit binary) or the coding is one Sluice does not
 * read (reserved, compressed, JIS, Cyrillic, …). Never throws.
 */
export function decodeText(bytes: Uint8Array, dataCoding: number): string | undefined {
  switch (schemeOf(dataCoding)) {
    case 'gsm7':
      return gsm7Decode(bytes);
    case 'ia5':
      return decodeIa5(bytes);
    case 'latin1':
      return decodeLatin1(bytes);
    case 'ucs2':
      return decodeUcs2(bytes);
    case 'binary':
    case 'unsupported':
      return undefined;
  }
}

/**
 * Encodes `text` for `dataCoding`. Throws SluiceError('INVALID_FIELD') when a
 * character is not representable in that coding (naming it and its index),
 * when the coding is binary, or when Sluice does not write that coding.
 */
export function encodeText(text: string, dataCoding: number): Uint8Array {
  switch (schemeOf(dataCoding)) {
    case 'gsm7':
      return gsm7Encode(text);
    case 'ia5':
      return encodeSingleByte(text, 0x7f, 'IA5 (data_coding 1)');
    case 'latin1':
      return encodeSingleByte(text, 0xff, 'Latin-1 (data_coding 3)');
    case 'ucs2':
      return encodeUcs2(text);
    case 'binary':
      throw new SluiceError('INVALID_FIELD', `data_coding ${dcName(dataCoding)} is 8-bit binary; it carries bytes, not text`);
    case 'unsupported':
      throw new SluiceError('INVALID_FIELD', `data_coding ${dcName(dataCoding)} is not a text coding Sluice can encode`);
  }
}

/** The data_coding Sluice picks for outgoing text: 0 (GSM 03.38) when every character fits, else 8 (UCS-2). */
export function chooseDataCoding(text: string): 0 | 8 {
  return isGsm7(text) ? 0 : 8;
}

/**
 * Upstream message ids as correlation keys. An SMSC answers submit_sm_resp
 * with one id and may write another form of it in the delivery receipt:
 * upper or lower case hex, zero-padded, or the decimal of a hex id. Each
 * outbound bind says how its upstream writes them (`receipt_id`):
 *
 * - `exact`: byte for byte.
 * - `hex`: both are hex numbers (case and leading zeros do not matter).
 * - `decimal`: both are decimal numbers (leading zeros do not matter).
 * - `hex-decimal`: the response is hex, the receipt the same number in decimal.
 * - `decimal-hex`: the response is decimal, the receipt the same number in hex.
 * - `auto` (default): any of the above. The response id is stored under one
 *   key; a receipt's id is looked up under every key it could stand for,
 *   in that order, and the first that names a message wins.
 */

import type { ReceiptIdForm } from '../config/schema';
export type { ReceiptIdForm };

const HEX = /^[0-9a-fA-F]+$/;
const DEC = /^[0-9]+$/;
/** Longer ids are not numbers to us: kept as text. */
const MAX_DIGITS = 64;

/** A number written in hex, as its canonical key: lower case, no leading zeros. */
function hexKey(s: string): string {
  const t = s.toLowerCase().replace(/^0+/, '');
  return `x${t === '' ? '0' : t}`;
}

const isHex = (s: string): boolean => s.length <= MAX_DIGITS && HEX.test(s);
const isDec = (s: string): boolean => s.length <= MAX_DIGITS && DEC.test(s);
const decToHex = (s: string): string => BigInt(s).toString(16);
const hexToDec = (s: string): string => BigInt(`0x${s}`).toString(10);
const exactKey = (s: string): string => `=${s}`;

/** The key a submit_sm_resp's message_id is stored under. */
export function storedIdKey(form: ReceiptIdForm, id: string): string {
  const s = id.trim();
  switch (form) {
    case 'exact':
      return exactKey(id);
    case 'decimal':
    case 'decimal-hex':
      // Decimal numbers are stored as the hex of their value: one key space for both.
      return isDec(s) ? hexKey(decToHex(s)) : exactKey(s);
    case 'hex':
    case 'hex-decimal':
    case 'auto':
      // auto stores what looks like hex as hex: the digits, whatever base the upstream meant.
      return isHex(s) ? hexKey(s) : exactKey(s.toLowerCase());
  }
}

/** The keys a receipt's id may have been stored under, most likely first. */
export function receiptIdKeys(form: ReceiptIdForm, id: string): string[] {
  const s = id.trim();
  switch (form) {
    case 'exact':
      return [exactKey(id)];
    case 'hex':
      return [isHex(s) ? hexKey(s) : exactKey(s.toLowerCase())];
    case 'decimal':
      return [isDec(s) ? hexKey(decToHex(s)) : exactKey(s)];
    case 'hex-decimal':
      // The receipt's decimal is the number the hex response id wrote.
      return [isDec(s) ? hexKey(decToHex(s)) : isHex(s) ? hexKey(s) : exactKey(s.toLowerCase())];
    case 'decimal-hex':
      // The receipt's hex is the number the decimal response id wrote (stored as its hex).
      return [isHex(s) ? hexKey(s) : exactKey(s)];
    case 'auto': {
      if (!isHex(s)) return [exactKey(s.toLowerCase())];
      const keys = [hexKey(s)];
      // Decimal digits may be the decimal of a hex response id …
      if (isDec(s)) keys.push(hexKey(decToHex(s)));
      // … and hex digits the hex of a decimal response id (stored as its digits read as hex).
      keys.push(hexKey(hexToDec(s)));
      return [...new Set(keys)];
    }
  }
}

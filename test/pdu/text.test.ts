import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chooseDataCoding, decodeText, encodeText } from '../../src/pdu/text';
import { isSluiceError } from '../../src/errors';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const invalid = (e: unknown): boolean => isSluiceError(e, 'INVALID_FIELD');

test('text: data_coding 0 is GSM 03.38', () => {
  assert.deepEqual(encodeText('Hello', 0), bytes(0x48, 0x65, 0x6c, 0x6c, 0x6f));
  assert.deepEqual(encodeText('€@', 0), bytes(0x1b, 0x65, 0x00));
  assert.equal(decodeText(bytes(0x1b, 0x28, 0x7d, 0x1b, 0x29), 0), '{ñ}');
  assert.throws(() => encodeText('😀', 0), invalid);
});

test('text: data_coding 1 is IA5 (ASCII)', () => {
  assert.deepEqual(encodeText('A~`{', 1), bytes(0x41, 0x7e, 0x60, 0x7b));
  assert.equal(decodeText(bytes(0x41, 0x7e, 0xc8, 0x80, 0x42), 1), 'A~\ufffd\ufffdB');
  assert.throws(() => encodeText('café', 1), (e: unknown) => invalid(e) && /index 3/.test((e as Error).message));
});

test('text: data_coding 3 is Latin-1', () => {
  assert.deepEqual(encodeText('é', 3), bytes(0xe9));
  assert.deepEqual(encodeText('Ünïcödé ÿ', 3), bytes(0xdc, 0x6e, 0xef, 0x63, 0xf6, 0x64, 0xe9, 0x20, 0xff));
  assert.equal(decodeText(bytes(0xe9, 0x80, 0xa3), 3), 'é\u0080£');
  assert.throws(() => encodeText('5€', 3), (e: unknown) => invalid(e) && /U\+20AC/.test((e as Error).message));
});

test('text: data_coding 8 is UTF-16BE, surrogate pairs included', () => {
  assert.deepEqual(encodeText('😀', 8), bytes(0xd8, 0x3d, 0xde, 0x00));
  assert.deepEqual(encodeText('Hi', 8), bytes(0x00, 0x48, 0x00, 0x69));
  assert.deepEqual(encodeText('Привет', 8), bytes(0x04, 0x1f, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35, 0x04, 0x42));
  assert.equal(decodeText(bytes(0xd8, 0x3d, 0xde, 0x00), 8), '😀');
  assert.equal(decodeText(bytes(0x00, 0x41, 0x00), 8), 'A', 'odd trailing byte dropped');
  assert.equal(decodeText(bytes(0x42), 8), '');
  assert.equal(decodeText(Buffer.from([0x20, 0xac]), 8), '€', 'accepts a Buffer');
});

test('text: binary codings 2 and 4', () => {
  for (const dc of [2, 4]) {
    assert.equal(decodeText(bytes(0x01, 0x02), dc), undefined);
    assert.throws(() => encodeText('x', dc), invalid);
  }
});

test('text: GSM 03.38 coding groups', () => {
  const hi = bytes(0x48, 0x69);
  // 0x10–0x1F: general data coding, uncompressed; bits 3..2 select the alphabet.
  assert.equal(decodeText(hi, 0x10), 'Hi');
  assert.equal(decodeText(hi, 0x11), 'Hi', 'class 1, GSM');
  assert.equal(decodeText(hi, 0x14), undefined, '8-bit data');
  assert.equal(decodeText(hi, 0x15), undefined);
  assert.equal(decodeText(hi, 0x18), String.fromCharCode(0x4869), 'UCS2');
  assert.equal(decodeText(hi, 0x1a), String.fromCharCode(0x4869));
  assert.equal(decodeText(hi, 0x1c), undefined, 'reserved alphabet');
  assert.deepEqual(encodeText('€', 0x10), bytes(0x1b, 0x65));
  assert.deepEqual(encodeText('😀', 0x18), bytes(0xd8, 0x3d, 0xde, 0x00));
  assert.throws(() => encodeText('x', 0x14), invalid);
  assert.throws(() => encodeText('x', 0x1c), invalid);
  // 0x20–0x3F: compressed (bit 5); Sluice has no decompressor.
  assert.equal(decodeText(hi, 0x20), undefined);
  assert.equal(decodeText(hi, 0x38), undefined);
  assert.throws(() => encodeText('x', 0x20), invalid);
  // 0xF0–0xFF: bit 2 set → 8-bit data, else GSM 7-bit.
  assert.equal(decodeText(hi, 0xf0), 'Hi');
  assert.equal(decodeText(hi, 0xf1), 'Hi');
  assert.equal(decodeText(hi, 0xf3), 'Hi');
  assert.equal(decodeText(hi, 0xf4), undefined);
  assert.equal(decodeText(hi, 0xf6), undefined);
  assert.deepEqual(encodeText('Hi', 0xf1), hi);
  assert.throws(() => encodeText('Hi', 0xf5), invalid);
});

test('text: codings Sluice does not read or write', () => {
  for (const dc of [5, 6, 7, 9, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x40, 0x80, 0xc0, 0xe0, 256, -1, 1.5, Number.NaN]) {
    assert.equal(decodeText(bytes(0x41), dc), undefined, String(dc));
    assert.throws(() => encodeText('A', dc), invalid, String(dc));
  }
});

test('text: chooseDataCoding', () => {
  assert.equal(chooseDataCoding(''), 0);
  assert.equal(chooseDataCoding('Hello {you} €10'), 0);
  assert.equal(chooseDataCoding('Grüße'), 0);
  assert.equal(chooseDataCoding('ç'), 8);
  assert.equal(chooseDataCoding('hi 😀'), 8);
  assert.equal(chooseDataCoding('Привет'), 8);
});

test('text property: every string round-trips through UCS-2', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
      const enc = encodeText(s, 8);
      assert.equal(enc.length, s.length * 2);
      assert.equal(decodeText(enc, 8), s);
    }),
    { numRuns: 500 },
  );
  // Lone surrogates too: UCS-2 is carried code unit for code unit.
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 100 }), (units) => {
      const s = String.fromCharCode(...units);
      assert.equal(decodeText(encodeText(s, 8), 8), s);
    }),
    { numRuns: 200 },
  );
});

test('text property: Latin-1 and IA5 round-trip their own ranges', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii', maxLength: 100 }), (s) => {
      assert.equal(decodeText(encodeText(s, 3), 3), s);
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 0x7f }), { maxLength: 100 }), (codes) => {
      const s = String.fromCharCode(...codes);
      assert.equal(decodeText(encodeText(s, 1), 1), s);
    }),
    { numRuns: 300 },
  );
});

test('text property: the chosen coding always round-trips', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
      const dc = chooseDataCoding(s);
      assert.equal(decodeText(encodeText(s, dc), dc), s);
    }),
    { numRuns: 300 },
  );
});

test('text property: decodeText never throws on any bytes and any data_coding 0..255', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 255 }), (b, dc) => {
      const out = decodeText(b, dc);
      assert.ok(out === undefined || typeof out === 'string');
    }),
    { numRuns: 500 },
  );
  // And exhaustively over data_coding for one awkward buffer.
  const awkward = bytes(0x1b, 0xff, 0xd8, 0x00, 0x1b);
  for (let dc = 0; dc <= 255; dc++) decodeText(awkward, dc);
});

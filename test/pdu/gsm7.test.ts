import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gsm7Decode, gsm7Encode, gsm7Length, isGsm7 } from '../../src/pdu/gsm7';
import { isSluiceError } from '../../src/errors';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

/** Every character Sluice may send as GSM text: the basic table (minus ESC) and the extension table. */
const GSM_CHARS = [
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?',
  ...'¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
  ...'\f^{}\\[~]|€',
];

test('gsm7: basic-table vectors', () => {
  assert.deepEqual(gsm7Encode('Hello'), bytes(0x48, 0x65, 0x6c, 0x6c, 0x6f));
  const cases: [string, number][] = [
    ['@', 0x00], ['£', 0x01], ['$', 0x02], ['¥', 0x03], ['è', 0x04], ['é', 0x05],
    ['Ç', 0x09], ['\n', 0x0a], ['\r', 0x0d], ['Δ', 0x10], ['_', 0x11], ['Ξ', 0x1a],
    ['ß', 0x1e], ['É', 0x1f], [' ', 0x20], ['¤', 0x24], ['¡', 0x40], ['Ä', 0x5b],
    ['§', 0x5f], ['¿', 0x60], ['ä', 0x7b], ['ñ', 0x7d], ['ü', 0x7e], ['à', 0x7f],
  ];
  for (const [ch, septet] of cases) {
    assert.deepEqual(gsm7Encode(ch), bytes(septet), ch);
    assert.equal(gsm7Decode(bytes(septet)), ch);
  }
});

test('gsm7: the whole basic table matches the 03.38 code points', () => {
  // Septets 0x00–0x7F as Unicode code points; 0x20–0x7F are ASCII except where listed.
  const low = [
    0x40, 0xa3, 0x24, 0xa5, 0xe8, 0xe9, 0xf9, 0xec, 0xf2, 0xc7, 0x0a, 0xd8, 0xf8, 0x0d, 0xc5, 0xe5,
    0x394, 0x5f, 0x3a6, 0x393, 0x39b, 0x3a9, 0x3a0, 0x3a8, 0x3a3, 0x398, 0x39e, -1, 0xc6, 0xe6, 0xdf, 0xc9,
  ];
  const high: Record<number, number> = {
    0x24: 0xa4, 0x40: 0xa1, 0x5b: 0xc4, 0x5c: 0xd6, 0x5d: 0xd1, 0x5e: 0xdc, 0x5f: 0xa7,
    0x60: 0xbf, 0x7b: 0xe4, 0x7c: 0xf6, 0x7d: 0xf1, 0x7e: 0xfc, 0x7f: 0xe0,
  };
  for (let septet = 0; septet < 0x80; septet++) {
    const cp = septet < 0x20 ? low[septet]! : (high[septet] ?? septet);
    if (cp === -1) continue; // ESC
    const ch = String.fromCodePoint(cp);
    assert.equal(gsm7Decode(bytes(septet)), ch, `septet 0x${septet.toString(16)}`);
    assert.deepEqual(gsm7Encode(ch), bytes(septet), `U+${cp.toString(16)}`);
  }
  // Every printable ASCII character but ` is representable, basic or extension table.
  for (let c = 0x20; c < 0x7f; c++) assert.equal(isGsm7(String.fromCharCode(c)), c !== 0x60, String.fromCharCode(c));
});

test('gsm7: extension-table vectors', () => {
  const cases: [string, number][] = [
    ['\f', 0x0a], ['^', 0x14], ['{', 0x28], ['}', 0x29], ['\\', 0x2f],
    ['[', 0x3c], ['~', 0x3d], [']', 0x3e], ['|', 0x40], ['€', 0x65],
  ];
  for (const [ch, code] of cases) {
    assert.deepEqual(gsm7Encode(ch), bytes(0x1b, code), ch);
    assert.equal(gsm7Decode(bytes(0x1b, code)), ch);
    assert.equal(gsm7Length(ch), 2);
  }
  assert.deepEqual(gsm7Encode('5€ {ok}'), bytes(0x35, 0x1b, 0x65, 0x20, 0x1b, 0x28, 0x6f, 0x6b, 0x1b, 0x29));
});

test('gsm7: encode throws INVALID_FIELD naming the first bad character and its index', () => {
  assert.throws(
    () => gsm7Encode('abc😀x'),
    (e: unknown) => isSluiceError(e, 'INVALID_FIELD') && /U\+1F600/.test(e.message) && /index 3/.test(e.message),
  );
  assert.throws(() => gsm7Encode('Straße ç'), (e: unknown) => isSluiceError(e, 'INVALID_FIELD') && /index 7/.test(e.message));
  for (const ch of ['`', 'ç', '\u00a0', '\t', 'Привет']) {
    assert.throws(() => gsm7Encode(ch), (e: unknown) => isSluiceError(e, 'INVALID_FIELD'), ch);
  }
  // A combining accent is its own code unit, and not in the alphabet.
  assert.throws(() => gsm7Encode('Ω\u0301'), (e: unknown) => isSluiceError(e, 'INVALID_FIELD') && /index 1/.test(e.message));
});

test('gsm7: decode oddities never throw', () => {
  assert.equal(gsm7Decode(bytes()), '');
  assert.equal(gsm7Decode(bytes(0x41, 0x80, 0xff)), 'A\ufffd\ufffd');
  assert.equal(gsm7Decode(bytes(0x1b)), '', 'trailing lone ESC → nothing');
  assert.equal(gsm7Decode(bytes(0x41, 0x1b)), 'A');
  assert.equal(gsm7Decode(bytes(0x1b, 0x41)), 'A', 'unknown extension → basic char of the next septet');
  assert.equal(gsm7Decode(bytes(0x1b, 0x00)), '@');
  assert.equal(gsm7Decode(bytes(0x1b, 0x1b)), '\u00a0');
  assert.equal(gsm7Decode(bytes(0x1b, 0x1b, 0x65)), '\u00a0e');
  assert.equal(gsm7Decode(bytes(0x1b, 0x90, 0x41)), '\ufffdA');
  assert.equal(gsm7Decode(Buffer.from([0x48, 0x69])), 'Hi', 'accepts a Buffer');
});

test('gsm7: isGsm7 and gsm7Length', () => {
  assert.equal(isGsm7(''), true);
  assert.equal(isGsm7('Hello {world} €5 @ ñ'), true);
  assert.equal(isGsm7('héllo'), true);
  assert.equal(isGsm7('ĥello'), false);
  assert.equal(isGsm7('Привет'), false);
  assert.equal(isGsm7('hi 😀'), false);
  assert.equal(gsm7Length(''), 0);
  assert.equal(gsm7Length('Hello'), 5);
  assert.equal(gsm7Length('[x]'), 5);
  assert.equal(gsm7Length('a'.repeat(160)), 160);
  assert.throws(() => gsm7Length('😀'), (e: unknown) => isSluiceError(e, 'INVALID_FIELD'));
});

test('gsm7: long text decodes past the chunk size', () => {
  const long = 'ab€'.repeat(10_000);
  assert.equal(gsm7Decode(gsm7Encode(long)), long);
});

test('gsm7 property: every GSM-encodable string round-trips', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...GSM_CHARS), maxLength: 200 }), (s) => {
      assert.equal(isGsm7(s), true);
      const enc = gsm7Encode(s);
      assert.equal(enc.length, gsm7Length(s));
      assert.ok(enc.every((b) => b < 0x80));
      assert.equal(gsm7Decode(enc), s);
    }),
    { numRuns: 500 },
  );
});

test('gsm7 property: septet streams without ESC round-trip byte for byte', () => {
  const septet = fc.integer({ min: 0, max: 0x7f }).filter((b) => b !== 0x1b);
  fc.assert(
    fc.property(fc.array(septet, { maxLength: 200 }), (arr) => {
      const b = Uint8Array.from(arr);
      assert.deepEqual(gsm7Encode(gsm7Decode(b)), b);
    }),
    { numRuns: 300 },
  );
});

test('gsm7 property: decode never throws; isGsm7 agrees with gsm7Encode', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      assert.equal(typeof gsm7Decode(b), 'string');
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 50 }), (s) => {
      let ok = true;
      try {
        gsm7Encode(s);
      } catch (e) {
        assert.ok(isSluiceError(e, 'INVALID_FIELD'));
        ok = false;
      }
      assert.equal(isGsm7(s), ok);
    }),
    { numRuns: 300 },
  );
});

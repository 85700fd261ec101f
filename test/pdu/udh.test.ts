import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { joinUdh, splitUdh } from '../../src/pdu/udh';
import { isSluiceError } from '../../src/errors';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

test('udh: 8-bit concat (IEI 0x00)', () => {
  const r = splitUdh(bytes(0x05, 0x00, 0x03, 0xa7, 0x03, 0x01, 0x48, 0x69));
  assert.ok(r);
  assert.deepEqual(r.udh, bytes(0x05, 0x00, 0x03, 0xa7, 0x03, 0x01));
  assert.deepEqual(r.body, bytes(0x48, 0x69));
  assert.deepEqual(r.ies, [{ iei: 0x00, data: bytes(0xa7, 0x03, 0x01) }]);
  assert.deepEqual(r.concat, { ref: 0xa7, total: 3, seq: 1 });
});

test('udh: 16-bit concat (IEI 0x08)', () => {
  const r = splitUdh(bytes(0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02, 0x00, 0x41));
  assert.ok(r);
  assert.deepEqual(r.concat, { ref: 0x1234, total: 2, seq: 2 });
  assert.deepEqual(r.body, bytes(0x00, 0x41));
});

test('udh: several IEs (port addressing + concat)', () => {
  const sm = bytes(0x0b, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x00, 0x03, 0x01, 0x02, 0x02, 0xaa);
  const r = splitUdh(sm);
  assert.ok(r);
  assert.deepEqual(r.ies, [
    { iei: 0x05, data: bytes(0x0b, 0x84, 0x23, 0xf0) },
    { iei: 0x00, data: bytes(0x01, 0x02, 0x02) },
  ]);
  assert.deepEqual(r.concat, { ref: 1, total: 2, seq: 2 });
  assert.deepEqual(r.body, bytes(0xaa));
});

test('udh: UDHL 0 is valid and empty', () => {
  assert.deepEqual(splitUdh(bytes(0x00, 0x41)), { udh: bytes(0x00), body: bytes(0x41), ies: [] });
  assert.deepEqual(splitUdh(bytes(0x00)), { udh: bytes(0x00), body: bytes(), ies: [] });
});

test('udh: zero-length IE and header with no body', () => {
  const r = splitUdh(bytes(0x02, 0x70, 0x00));
  assert.deepEqual(r, { udh: bytes(0x02, 0x70, 0x00), body: bytes(), ies: [{ iei: 0x70, data: bytes() }] });
});

test('udh: malformed headers give undefined', () => {
  const cases: [string, Uint8Array][] = [
    ['empty', bytes()],
    ['UDHL past the end', bytes(0x05, 0x00, 0x03, 0x01)],
    ['UDHL 0xFF on a short message', bytes(0xff, 0x00)],
    ['IE data overruns UDHL', bytes(0x03, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04)],
    ['IE length byte missing', bytes(0x01, 0x00, 0x41)],
    ['second IE overruns UDHL', bytes(0x06, 0x00, 0x03, 0x01, 0x02, 0x01, 0x08, 0x41)],
    ['IE overruns by one', bytes(0x04, 0x00, 0x03, 0x01, 0x02, 0x03)],
  ];
  for (const [name, sm] of cases) assert.equal(splitUdh(sm), undefined, name);
});

test('udh: concat IEs a receiver must ignore', () => {
  const seqZero = splitUdh(bytes(0x05, 0x00, 0x03, 0x01, 0x02, 0x00));
  assert.ok(seqZero);
  assert.equal(seqZero.concat, undefined);
  assert.equal(seqZero.ies.length, 1);
  const seqPastTotal = splitUdh(bytes(0x05, 0x00, 0x03, 0x01, 0x02, 0x03));
  assert.equal(seqPastTotal?.concat, undefined);
  const totalZero = splitUdh(bytes(0x05, 0x00, 0x03, 0x01, 0x00, 0x00));
  assert.equal(totalZero?.concat, undefined);
  const wrongLength = splitUdh(bytes(0x06, 0x00, 0x04, 0x01, 0x02, 0x01, 0x00));
  assert.equal(wrongLength?.concat, undefined);
  assert.equal(wrongLength?.ies.length, 1);
});

test('udh: a repeated concat IE — the last valid one wins', () => {
  const r = splitUdh(bytes(0x0b, 0x00, 0x03, 0x01, 0x02, 0x01, 0x08, 0x04, 0x00, 0x09, 0x03, 0x02));
  assert.deepEqual(r?.concat, { ref: 9, total: 3, seq: 2 });
});

test('udh: results are plain Uint8Array copies, not views of a Buffer', () => {
  const sm = Buffer.from([0x05, 0x00, 0x03, 0x07, 0x02, 0x01, 0x41, 0x42]);
  const r = splitUdh(sm);
  assert.ok(r);
  for (const part of [r.udh, r.body, r.ies[0]!.data]) {
    assert.equal(Object.getPrototypeOf(part), Uint8Array.prototype);
  }
  sm[6] = 0x5a;
  sm[3] = 0x99;
  assert.deepEqual(r.body, bytes(0x41, 0x42));
  assert.deepEqual(r.ies[0]!.data, bytes(0x07, 0x02, 0x01));
});

test('udh: joinUdh', () => {
  const udh = bytes(0x05, 0x00, 0x03, 0xa7, 0x03, 0x01);
  assert.deepEqual(joinUdh(udh, bytes(0x48, 0x69)), bytes(0x05, 0x00, 0x03, 0xa7, 0x03, 0x01, 0x48, 0x69));
  assert.deepEqual(joinUdh(bytes(0x00), bytes(0x41)), bytes(0x00, 0x41));
  assert.deepEqual(joinUdh(bytes(), bytes(0x41)), bytes(0x41));
  assert.throws(() => joinUdh(bytes(0x05, 0x00), bytes(0x41)), (e: unknown) => isSluiceError(e, 'INVALID_FIELD'));
});

test('udh property: splitUdh never throws, and what it splits joins back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (sm) => {
      const r = splitUdh(sm);
      if (r) {
        assert.deepEqual(joinUdh(r.udh, r.body), sm);
        assert.equal(r.udh.length, sm[0]! + 1);
      }
    }),
    { numRuns: 500 },
  );
});

test('udh property: well-formed headers built from IEs parse back to those IEs', () => {
  const ie = fc.record({ iei: fc.integer({ min: 0, max: 255 }), data: fc.uint8Array({ maxLength: 20 }) });
  fc.assert(
    fc.property(fc.array(ie, { maxLength: 8 }), fc.uint8Array({ maxLength: 40 }), (ies, body) => {
      const flat = ies.flatMap((x) => [x.iei, x.data.length, ...x.data]);
      fc.pre(flat.length <= 255);
      const udh = Uint8Array.from([flat.length, ...flat]);
      const r = splitUdh(joinUdh(udh, body));
      assert.ok(r);
      assert.deepEqual(r.ies, ies.map((x) => ({ iei: x.iei, data: Uint8Array.from(x.data) })));
      assert.deepEqual(r.udh, udh);
      assert.deepEqual(r.body, Uint8Array.from(body));
    }),
    { numRuns: 300 },
  );
});

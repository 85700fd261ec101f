import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as smpp from 'smpp';
import { toPolicyPdu } from '../../src/pdu/model';
import { decodeView } from '../../src/pdu/view';
import { checkPdu, commandId, decodePdu, viewTables } from '../../src/wire/codec';

const SEED = 0x5eed;

function frame(id: number, seq: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(id >>> 0, 4);
  b.writeUInt32BE(seq >>> 0, 12);
  b.set(body, 16);
  return b;
}

/**
 * The view the core builds (codec, then model) and the one built from the raw
 * frame (as in a policy's isolate) agree; and the core's check-only walk
 * accepts exactly what the codec decodes, with the same status.
 */
function agree(buf: Buffer): boolean {
  const wire = decodePdu(buf);
  const view = decodeView(new Uint8Array(buf), viewTables());
  const checked = checkPdu(buf);
  assert.equal(checked.ok, wire.ok, `check and decode agree on ${buf.toString('hex')}`);
  if (!checked.ok && !wire.ok) assert.equal(checked.status, wire.status);
  if (!wire.ok) return false;
  assert.ok(checked.ok);
  assert.deepEqual(checked.pdu.fields, wire.pdu.fields, 'fields decoded on demand are the codec’s');
  assert.deepEqual(checked.pdu.unknownTlvs, wire.pdu.unknownTlvs);
  assert.deepEqual(view, toPolicyPdu(wire.pdu));
  return true;
}

const cstr = fc.uint8Array({ maxLength: 30 }).map((a) => [...a.filter((x) => x !== 0), 0]);
const bytes = (max: number): fc.Arbitrary<number[]> => fc.uint8Array({ maxLength: max }).map((a) => [...a]);

/** A well-formed body for `command`: its mandatory fields from the shared layout, then TLVs known and unknown, right-sized or not. */
function bodyOf(command: string): fc.Arbitrary<number[]> {
  const [, params] = viewTables().commands[commandId(command)]!;
  const parts = params.map(([, kind]): fc.Arbitrary<number[]> => {
    switch (kind) {
      case 'c':
        return cstr;
      case 'i1':
        return bytes(1).map((a) => [a[0] ?? 0]);
      case 'i2':
        return fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }));
      case 'i4':
        return fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
      case 'b':
        return bytes(160).map((a) => [a.length, ...a]);
      case 'da':
        return fc
          .array(fc.oneof(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), cstr).map(([t, n, s]) => [1, t, n, ...s]), cstr.map((s) => [2, ...s])), { maxLength: 4 })
          .map((ds) => [ds.length, ...ds.flat()]);
      default:
        return fc.constant([0]);
    }
  });
  const knownTags = Object.keys(smpp.tlvsById).map(Number);
  const tlv = fc
    .tuple(fc.oneof(fc.constantFrom(...knownTags), fc.integer({ min: 0x1400, max: 0xffff })), fc.oneof(bytes(12), fc.constantFrom([0], [0, 1], [0, 0, 0, 7], [0x68, 0x69, 0]))) // ints of the right size, C-strings
    .map(([tag, v]) => [tag >> 8, tag & 0xff, v.length >> 8, v.length & 0xff, ...v]);
  return fc.tuple(fc.tuple(...parts), fc.array(tlv, { maxLength: 5 })).map(([p, t]) => [...p.flat(), ...t.flat()]);
}

describe('policy view from a raw frame (what runs in the isolate)', () => {
  it('property: equals the core’s codec + model view for every request a policy can get', () => {
    let checked = 0;
    for (const command of ['submit_sm', 'deliver_sm', 'data_sm', 'submit_sm_multi', 'query_sm', 'cancel_sm', 'replace_sm', 'alert_notification']) {
      fc.assert(
        fc.property(bodyOf(command), fc.integer({ min: 0, max: 0xffffffff }), (body, seq) => {
          if (agree(frame(commandId(command), seq, Uint8Array.from(body)))) checked++;
        }),
        { numRuns: 150, seed: SEED },
      );
    }
    assert.ok(checked > 800, `most generated frames are valid PDUs (${checked})`);
  });

  it('property: on arbitrary bytes it never throws, and agrees wherever the codec accepts', () => {
    const ids = [0x04, 0x05, 0x103, 0x21, 0x03, 0x08, 0x07, 0x102, 0x80000004];
    fc.assert(
      fc.property(fc.constantFrom(...ids), fc.uint8Array({ maxLength: 300 }), (id, body) => {
        const buf = frame(id, 1, body);
        decodeView(new Uint8Array(buf), viewTables());
        agree(buf);
        // And with any command id, known or not.
        agree(frame(body.length > 3 ? Buffer.from(body).readUInt32BE(0) : id, 2, body));
      }),
      { numRuns: 2000, seed: SEED + 1 },
    );
  });

  it('reads a delivery receipt, UDH text and UCS-2 the same way', () => {
    const receipt = Buffer.from('id:abc123 sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:hi');
    // deliver_sm: seven bytes of empty addresses, esm_class 0x04 (receipt), eight zero bytes, sm_length.
    const dlr = [0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, receipt.length, ...receipt];
    const ucs2 = Buffer.from('Привет 👍', 'utf16le').swap16();
    const udh = [0x05, 0x00, 0x03, 0x2a, 0x02, 0x01];
    // submit_sm: UDHI set, data_coding 0x08 (UCS-2).
    const sm = [0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0x08, 0, udh.length + ucs2.length, ...udh, ...ucs2];
    assert.ok(agree(frame(0x05, 1, Uint8Array.from(dlr))));
    assert.ok(agree(frame(0x04, 2, Uint8Array.from(sm))));
    const v = decodeView(new Uint8Array(frame(0x04, 2, Uint8Array.from(sm))), viewTables())!;
    assert.equal(v.text, 'Привет 👍');
    assert.deepEqual([...v.udh!], udh);
    assert.equal(decodeView(new Uint8Array(frame(0x05, 1, Uint8Array.from(dlr))), viewTables())!.receipt?.stat, 'DELIVRD');
  });
});

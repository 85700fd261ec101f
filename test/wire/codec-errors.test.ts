/**
 * The codec on what it must refuse or answer without a policy: decodePdu on
 * bad input never throws (the session answers with generic_nack or the
 * right status), and the simple responses it writes itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { commandName, decodePdu, encodePdu, encodeSimpleResponse, genericNack } from '../../src/wire/codec';
import { ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_RTHROTTLED } from '../../src/wire/status';
import { FUZZ_SEED, cstr, u8, tlv, pdu, smBody, decoded } from '../helpers/pdu-bytes';

// ---- decodePdu on bad input -------------------------------------------------------

describe('codec: decodePdu on bad input never throws', () => {
  it('unknown command_id → { ok: false } with ESME_RINVCMDID and the sequence number', () => {
    for (const id of [0x00000099, 0x12345678, 0x7fffffff]) {
      const r = decodePdu(pdu(id, 4242, u8(1, 2, 3)));
      assert.equal(r.ok, false);
      if (!r.ok) assert.deepEqual([r.command_id, r.sequence_number, r.status], [id, 4242, ESME_RINVCMDID]);
    }
  });

  it('a known TLV whose value runs past the PDU → { ok: false } with ESME_RINVCMDLEN', () => {
    const r = decodePdu(pdu(0x00000004, 17, Buffer.concat([smBody({ short_message: Buffer.from('x') }), u8(0x02, 0x04, 0x00, 0x02, 0x01)])));
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.sequence_number, r.status], [17, ESME_RINVCMDLEN]);
  });

  it(
    'a body missing mandatory fields (submit_sm, command_length 17) → { ok: false } with ESME_RINVCMDLEN',
    () => {
      for (const body of [u8(0x00), u8(0x41)]) {
        const r = decodePdu(pdu(0x00000004, 5, body));
        assert.equal(r.ok, false, `submit_sm body ${body.toString('hex')}`);
        if (!r.ok) assert.equal(r.status, ESME_RINVCMDLEN);
      }
    },
  );

  it(
    'a C-Octet String cut off by command_length (bind_transceiver "acme-app\\0p") → { ok: false } with ESME_RINVCMDLEN',
    () => {
      const r = decodePdu(pdu(0x00000009, 6, Buffer.from('acme-app\0p', 'latin1')));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.status, ESME_RINVCMDLEN);
    },
  );

  it(
    'sm_length running past the PDU → { ok: false } with ESME_RINVCMDLEN, not a silently shortened short_message',
    () => {
      const body = smBody({ short_message: Buffer.from('abc') });
      body[body.length - 4] = 200;
      const r = decodePdu(pdu(0x00000004, 7, body));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.status, ESME_RINVCMDLEN);
    },
  );

  it(
    'a C-Octet String TLV is read within its own length, never into the next TLV',
    () => {
      const buf = pdu(0x00000005, 8, Buffer.concat([smBody({ esm_class: 0x04 }), tlv(0x001e, Buffer.from('abc')), tlv(0x1401, u8(1, 2))]));
      const r = decodePdu(buf);
      if (!r.ok) return; // refusing the malformed TLV is also acceptable
      assert.equal(r.pdu.fields.receipted_message_id, 'abc');
      assert.deepEqual(r.pdu.unknownTlvs?.map((t) => t.tag), [0x1401]);
    },
  );

  it('property: decodePdu never throws on any bytes with a consistent command_length, and names what it accepts', () => {
    const ids = [0x01, 0x02, 0x04, 0x05, 0x09, 0x15, 0x21, 0x103, 0x102, 0x80000004, 0x80000009, 0x80000021, 0x80000000];
    const arb = fc.record({
      id: fc.oneof(fc.constantFrom(...ids), fc.integer({ min: 0, max: 0xffffffff })),
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      status: fc.integer({ min: 0, max: 0xffffffff }),
      body: fc.uint8Array({ maxLength: 600 }),
    });
    fc.assert(
      fc.property(arb, ({ id, seq, status, body }) => {
        const buf = pdu(id, seq, Buffer.from(body), status);
        const r = decodePdu(buf);
        if (r.ok) {
          assert.equal(r.pdu.command, commandName(id));
          assert.equal(r.pdu.command_id, id);
          assert.equal(r.pdu.sequence_number, seq);
        } else {
          assert.equal(r.sequence_number, seq);
          assert.equal(r.status, commandName(id) === undefined ? ESME_RINVCMDID : ESME_RINVCMDLEN);
        }
      }),
      { numRuns: 100, seed: FUZZ_SEED + 1 },
    );
  });
});

// ---- responses ----------------------------------------------------------------------

describe('codec: encodeSimpleResponse', () => {
  it('writes a submit_sm_resp with its message_id exactly as encodePdu would', () => {
    const fast = encodeSimpleResponse(0x80000004, 99, 0, 'msg-42');
    assert.equal(fast.toString('hex'), pdu(0x80000004, 99, cstr('msg-42')).toString('hex'));
    assert.equal(fast.toString('hex'), encodePdu('submit_sm_resp', 99, 0, { message_id: 'msg-42' }).toString('hex'));
    assert.deepEqual(decoded(fast).fields, { message_id: 'msg-42' });
  });

  it('an empty message_id is a single NUL; no message_id is an empty body', () => {
    assert.equal(encodeSimpleResponse(0x80000004, 1, 0, '').toString('hex'), pdu(0x80000004, 1, u8(0)).toString('hex'));
    assert.equal(encodeSimpleResponse(0x80000015, 1, 0).toString('hex'), pdu(0x80000015, 1, Buffer.alloc(0)).toString('hex'));
    assert.equal(
      encodeSimpleResponse(0x80000009, 2, 0, 'sluice').toString('hex'),
      encodePdu('bind_transceiver_resp', 2, 0, { system_id: 'sluice' }).toString('hex'),
    );
  });

  it('an error status carries no body, even when a message_id is given; 32-bit values are written unsigned', () => {
    assert.equal(encodeSimpleResponse(0x80000004, 0xffffffff, ESME_RTHROTTLED, 'ignored').toString('hex'), pdu(0x80000004, 0xffffffff, Buffer.alloc(0), ESME_RTHROTTLED).toString('hex'));
    assert.equal(encodeSimpleResponse(0x80000004, 3, 0xffffffff).readUInt32BE(8), 0xffffffff);
  });

  it('genericNack is a 16-byte generic_nack with the status and sequence number', () => {
    const n = genericNack(0x7ffffffe, ESME_RINVCMDID);
    assert.equal(n.toString('hex'), pdu(0x80000000, 0x7ffffffe, Buffer.alloc(0), ESME_RINVCMDID).toString('hex'));
    const p = decoded(n);
    assert.equal(p.command, 'generic_nack');
    assert.equal(p.command_status, ESME_RINVCMDID);
  });
});

/**
 * Policy fields to wire fields (src/pdu/fields.ts): text encodings, lengths,
 * TLVs by name and unknown TLVs, INVALID_FIELD for what cannot be sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toWireFields } from '../../src/pdu/fields';
import { toPolicyPdu } from '../../src/pdu/model';
import { encodePdu } from '../../src/wire/codec';
import { u8, dataCodingOffset, decoded, invalidField } from '../helpers/pdu-bytes';

// ---- policy fields → wire -------------------------------------------------------------

describe('fields: toWireFields', () => {
  it('a string short_message that GSM 03.38 can carry is encoded unpacked with data_coding 0, never 1', () => {
    const w = toWireFields('submit_sm', { destination_addr: '31600000000', short_message: 'Hello @ {€}' });
    assert.equal(w.fields.data_coding, 0);
    assert.deepEqual(
      Buffer.from(w.fields.short_message as Uint8Array),
      u8(0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x00, 0x20, 0x1b, 0x28, 0x1b, 0x65, 0x1b, 0x29),
    );
    const buf = encodePdu('submit_sm', 1, 0, w.fields, w.unknownTlvs);
    assert.equal(buf[dataCodingOffset(buf)], 0);
    assert.equal(toPolicyPdu(decoded(buf)).text, 'Hello @ {€}');
  });

  it('text GSM 03.38 cannot carry is encoded UCS-2 (data_coding 8), surrogate pairs kept', () => {
    const w = toWireFields('submit_sm', { destination_addr: '316', short_message: 'Привет 👍' });
    assert.equal(w.fields.data_coding, 8);
    assert.deepEqual(Buffer.from(w.fields.short_message as Uint8Array), Buffer.concat([Buffer.from('Привет ', 'utf16le').swap16(), u8(0xd8, 0x3d, 0xdc, 0x4d)]));
    const buf = encodePdu('submit_sm', 1, 0, w.fields);
    assert.equal(buf[dataCodingOffset(buf)], 8);
    assert.equal(toPolicyPdu(decoded(buf)).text, 'Привет 👍');
  });

  it('an explicit data_coding is honoured, and text it cannot carry is INVALID_FIELD', () => {
    const w = toWireFields('submit_sm', { destination_addr: '316', data_coding: 3, short_message: 'café' });
    assert.equal(w.fields.data_coding, 3);
    assert.deepEqual(Buffer.from(w.fields.short_message as Uint8Array), Buffer.from('café', 'latin1'));
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', data_coding: 0, short_message: 'Привет' }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', data_coding: 4, short_message: 'text in binary' }), invalidField);
  });

  it('a udh with a string message is prepended once and sets UDHI', () => {
    const udh = new Uint8Array([0x05, 0x00, 0x03, 0x01, 0x02, 0x01]);
    const w = toWireFields('submit_sm', { destination_addr: '316', esm_class: 0x03, udh, short_message: 'Hi' });
    assert.equal(w.fields.esm_class, 0x43);
    assert.deepEqual(Buffer.from(w.fields.short_message as Uint8Array), Buffer.concat([Buffer.from(udh), u8(0x48, 0x69)]));
  });

  it('a short_message over 254 octets is INVALID_FIELD (string or bytes); 254 is fine; message_payload takes more', () => {
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', short_message: 'a'.repeat(300) }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', short_message: new Uint8Array(300) }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', short_message: '€'.repeat(128) }), invalidField); // 256 septets
    assert.equal((toWireFields('submit_sm', { short_message: new Uint8Array(254) }).fields.short_message as Uint8Array).length, 254);
    const big = toWireFields('submit_sm', { destination_addr: '316', message_payload: 'a'.repeat(300) });
    assert.equal((big.fields.message_payload as Uint8Array).length, 300);
    const buf = encodePdu('submit_sm', 1, 0, big.fields);
    assert.equal(Buffer.from(decoded(buf).fields.message_payload as Uint8Array).toString(), 'a'.repeat(300));
  });

  it('unknown field names, fields of another command and an unknown command are INVALID_FIELD', () => {
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '316', no_such_field: 1 }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { message_id: 'abc' }), invalidField); // a submit_sm_resp field
    assert.throws(() => toWireFields('cancel_sm', { short_message: 'x' }), invalidField);
    assert.throws(() => toWireFields('no_such_command', {}), invalidField);
  });

  it('bad values are INVALID_FIELD before anything is encoded', () => {
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '3'.repeat(21) }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { destination_addr: '31\u00006' }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { esm_class: 256 }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { data_coding: -1 }), invalidField);
    assert.throws(() => toWireFields('submit_sm', { unknown_tlvs: [{ tag: 0x0204, value: new Uint8Array(2) }] }), invalidField); // known tag
  });
});

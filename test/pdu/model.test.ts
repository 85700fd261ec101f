/**
 * Wire fields to the policy's view (src/pdu/model.ts): text, UDH,
 * destinations, receipts parsed, byte fields copied.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toPolicyPdu } from '../../src/pdu/model';
import { cstr, u8, tlv, pdu, smBody, decoded } from '../helpers/pdu-bytes';

// ---- wire → policy view ----------------------------------------------------------------

describe('model: toPolicyPdu', () => {
  const receiptText = 'id:abc123 sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 stat:DELIVRD err:000 text:Hello';

  it('a DLR deliver_sm gives text, udh, unknown_tlvs, isDlr and receipt, with raw bytes kept', () => {
    const udh = u8(0x05, 0x00, 0x03, 0x2a, 0x01, 0x01);
    const sm = Buffer.concat([udh, Buffer.from(receiptText, 'latin1')]);
    const buf = pdu(
      0x00000005,
      31,
      Buffer.concat([
        smBody({ source_addr: '31600000000', destination_addr: 'Sluice', esm_class: 0x44, data_coding: 0, short_message: sm }),
        tlv(0x001e, cstr('abc123')),
        tlv(0x0427, u8(2)),
        tlv(0x1410, Buffer.from('opaque')),
      ]),
    );
    const p = toPolicyPdu(decoded(buf));
    assert.equal(p.command, 'deliver_sm');
    assert.equal(p.sequence_number, 31);
    assert.equal(p.isDlr, true);
    assert.deepEqual(p.udh, new Uint8Array(udh));
    assert.equal(p.text, receiptText);
    assert.deepEqual(p.short_message, new Uint8Array(sm));
    assert.equal(Buffer.isBuffer(p.short_message), false, 'a plain Uint8Array, not a view of the socket buffer');
    assert.deepEqual(p.unknown_tlvs, [{ tag: 0x1410, value: new Uint8Array(Buffer.from('opaque')) }]);
    assert.equal(p.receipted_message_id, 'abc123');
    assert.equal(p.message_state, 2);
    assert.deepEqual(p.receipt, {
      id: 'abc123',
      sub: '001',
      dlvrd: '001',
      submit_date: '2401311200',
      done_date: '2401311201',
      stat: 'DELIVRD',
      err: '000',
      text: 'Hello',
      raw: receiptText,
    });
  });

  it('a DLR without a text body takes its receipt from the TLVs', () => {
    const buf = pdu(
      0x00000005,
      32,
      Buffer.concat([smBody({ esm_class: 0x04 }), tlv(0x001e, cstr('ff00aa')), tlv(0x0427, u8(5)), tlv(0x0423, u8(0x03, 0x00, 0x22))]),
    );
    const p = toPolicyPdu(decoded(buf));
    assert.equal(p.isDlr, true);
    assert.equal(p.text, '');
    assert.deepEqual(p.receipt, { id: 'ff00aa', stat: 'UNDELIV', err: '034', raw: '' });
  });

  it('a mobile-originated deliver_sm is not a DLR and has no receipt', () => {
    const p = toPolicyPdu(decoded(pdu(0x00000005, 33, smBody({ esm_class: 0x00, short_message: Buffer.from(receiptText) }))));
    assert.equal(p.isDlr, false);
    assert.equal(p.receipt, undefined);
    assert.equal(p.udh, undefined);
    assert.equal(p.unknown_tlvs, undefined);
  });
});

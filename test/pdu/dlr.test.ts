import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDlrEsmClass, parseReceipt } from '../../src/pdu/dlr';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

test('dlr: isDlrEsmClass', () => {
  assert.equal(isDlrEsmClass(0x04), true, 'MC delivery receipt');
  assert.equal(isDlrEsmClass(0x20), true, 'intermediate delivery notification');
  assert.equal(isDlrEsmClass(0x44), true, 'receipt with UDHI');
  assert.equal(isDlrEsmClass(0x84), true, 'receipt with reply path');
  assert.equal(isDlrEsmClass(0x07), true, 'mode bits are ignored');
  assert.equal(isDlrEsmClass(0x00), false);
  assert.equal(isDlrEsmClass(0x08), false, 'SME delivery ack');
  assert.equal(isDlrEsmClass(0x10), false, 'SME manual/user ack');
  assert.equal(isDlrEsmClass(0x18), false, 'conversation abort');
  assert.equal(isDlrEsmClass(0x24), false);
  assert.equal(isDlrEsmClass(0x40), false);
});

test('dlr 1: the Appendix B form', () => {
  const body = 'id:0123456789 sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 stat:DELIVRD err:000 text:Hello world';
  assert.deepEqual(parseReceipt(body, {}), {
    id: '0123456789',
    sub: '001',
    dlvrd: '001',
    submit_date: '2401311200',
    done_date: '2401311201',
    stat: 'DELIVRD',
    err: '000',
    text: 'Hello world',
    raw: body,
  });
});

test('dlr 2: keys in any case, stat normalised to upper case', () => {
  const r = parseReceipt('ID:77 Sub:001 DLVRD:001 Submit Date:2401311200 DONE DATE:2401311201 Stat:delivrd Err:000 Text:hi', {});
  assert.equal(r?.id, '77');
  assert.equal(r?.sub, '001');
  assert.equal(r?.dlvrd, '001');
  assert.equal(r?.submit_date, '2401311200');
  assert.equal(r?.done_date, '2401311201');
  assert.equal(r?.stat, 'DELIVRD');
  assert.equal(r?.err, '000');
  assert.equal(r?.text, 'hi');
  assert.equal(parseReceipt('Id:78 stat:Undeliv', {})?.stat, 'UNDELIV');
});

test('dlr 3: submit_date / done_date with underscores, submitdate without separator', () => {
  const a = parseReceipt('id:1 sub:001 dlvrd:001 submit_date:2401311200 done_date:2401311201 stat:DELIVRD err:000', {});
  assert.equal(a?.submit_date, '2401311200');
  assert.equal(a?.done_date, '2401311201');
  const b = parseReceipt('id:1 submitdate:2401311200 donedate:2401311201 stat:DELIVRD', {});
  assert.equal(b?.submit_date, '2401311200');
  assert.equal(b?.done_date, '2401311201');
});

test('dlr 4: seconds in dates, and a date with a space in it', () => {
  const r = parseReceipt('id:1 sub:001 dlvrd:001 submit date:240131120005 done date:240131120107 stat:DELIVRD err:000', {});
  assert.equal(r?.submit_date, '240131120005');
  assert.equal(r?.done_date, '240131120107');
  const s = parseReceipt('id:1 submit date:2024-01-31 12:00:05 done date:2024-01-31 12:01:07 stat:DELIVRD', {});
  assert.equal(s?.submit_date, '2024-01-31 12:00:05');
  assert.equal(s?.done_date, '2024-01-31 12:01:07');
  assert.equal(s?.stat, 'DELIVRD');
});

test('dlr 5: missing fields are left out', () => {
  assert.deepEqual(parseReceipt('id:abc123 stat:UNDELIV', {}), { id: 'abc123', stat: 'UNDELIV', raw: 'id:abc123 stat:UNDELIV' });
});

test('dlr 6: unknown extra fields are skipped', () => {
  const r = parseReceipt('id:42 sub:001 dlvrd:000 mcc:234 mnc:15 submit date:2401311200 done date:2401311205 stat:REJECTD err:0B3 price:0.05 text:x', {});
  assert.equal(r?.id, '42');
  assert.equal(r?.dlvrd, '000');
  assert.equal(r?.submit_date, '2401311200');
  assert.equal(r?.stat, 'REJECTD');
  assert.equal(r?.err, '0B3');
  assert.equal(r?.text, 'x');
  assert.equal(Object.keys(r ?? {}).includes('mcc'), false);
});

test('dlr 7: fields in another order', () => {
  const r = parseReceipt('stat:EXPIRED err:001 done date:2401311300 id:A1B2 dlvrd:000 sub:001 submit date:2401301300 text:late', {});
  assert.deepEqual(r, {
    id: 'A1B2',
    sub: '001',
    dlvrd: '000',
    submit_date: '2401301300',
    done_date: '2401311300',
    stat: 'EXPIRED',
    err: '001',
    text: 'late',
    raw: 'stat:EXPIRED err:001 done date:2401311300 id:A1B2 dlvrd:000 sub:001 submit date:2401301300 text:late',
  });
});

test('dlr 8: multiple spaces, tabs and a trailing newline', () => {
  const r = parseReceipt('  id:5   sub:001  dlvrd:001\tsubmit   date:2401311200  done  date:2401311201   stat:DELIVRD   err:000\n', {});
  assert.equal(r?.id, '5');
  assert.equal(r?.dlvrd, '001');
  assert.equal(r?.submit_date, '2401311200');
  assert.equal(r?.done_date, '2401311201');
  assert.equal(r?.stat, 'DELIVRD');
  assert.equal(r?.err, '000');
  assert.equal(r?.text, undefined);
});

test('dlr 9: text runs to the end, colons and spaces included', () => {
  const r = parseReceipt('id:9 stat:DELIVRD err:000 text:Code: 1234 at 12:30  id:fake stat:NOPE', {});
  assert.equal(r?.id, '9');
  assert.equal(r?.stat, 'DELIVRD');
  assert.equal(r?.text, 'Code: 1234 at 12:30  id:fake stat:NOPE');
  assert.equal(parseReceipt('id:9 stat:DELIVRD text:', {})?.text, '');
  assert.equal(parseReceipt('id:9 stat:DELIVRD Text: hello', {})?.text, ' hello');
});

test('dlr 10: hex, UUID and zero-padded ids kept verbatim', () => {
  assert.equal(parseReceipt('id:3a9f0c1bde stat:DELIVRD', {})?.id, '3a9f0c1bde');
  assert.equal(
    parseReceipt('id:6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b sub:001 dlvrd:001 stat:DELIVRD', {})?.id,
    '6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b',
  );
  assert.equal(parseReceipt('id:0000012345 stat:DELIVRD', {})?.id, '0000012345');
});

test('dlr 11: alphanumeric err', () => {
  assert.equal(parseReceipt('id:1 stat:UNDELIV err:E0A', {})?.err, 'E0A');
  assert.equal(parseReceipt('id:1 stat:UNDELIV err:ABSENT_SUBSCRIBER', {})?.err, 'ABSENT_SUBSCRIBER');
});

test('dlr 12: TLV-only receipt, no body', () => {
  const r = parseReceipt(undefined, {
    receipted_message_id: 'F00D01',
    message_state: 2,
    network_error_code: bytes(0x03, 0x00, 0x0b),
  });
  assert.deepEqual(r, { id: 'F00D01', stat: 'DELIVRD', err: '011', raw: '' });
});

test('dlr 13: TLV-only receipt whose body is free text', () => {
  const r = parseReceipt('Your message to 447700900123 was delivered', { receipted_message_id: '88', message_state: 5 });
  assert.deepEqual(r, { id: '88', stat: 'UNDELIV', raw: 'Your message to 447700900123 was delivered' });
});

test('dlr 14: every message_state value', () => {
  const names = ['ENROUTE', 'DELIVRD', 'EXPIRED', 'DELETED', 'UNDELIV', 'ACCEPTD', 'UNKNOWN', 'REJECTD', 'SKIPPED'];
  names.forEach((name, i) => assert.equal(parseReceipt(undefined, { receipted_message_id: 'x', message_state: i + 1 })?.stat, name));
  assert.equal(parseReceipt(undefined, { receipted_message_id: 'x', message_state: 0 })?.stat, 'UNKNOWN');
  assert.equal(parseReceipt(undefined, { receipted_message_id: 'x', message_state: 42 })?.stat, 'UNKNOWN');
  assert.equal(parseReceipt(undefined, { receipted_message_id: 'x' })?.stat, 'UNKNOWN');
});

test('dlr 15: mixed — body values win, TLVs fill the gaps', () => {
  const both = parseReceipt('id:body-1 stat:DELIVRD err:000', {
    receipted_message_id: 'tlv-1',
    message_state: 5,
    network_error_code: bytes(0x01, 0x00, 0x22),
  });
  assert.equal(both?.id, 'body-1');
  assert.equal(both?.stat, 'DELIVRD');
  assert.equal(both?.err, '000');

  const gaps = parseReceipt('sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 text:hi', {
    receipted_message_id: 'tlv-2',
    message_state: 3,
    network_error_code: bytes(0x03, 0x04, 0xd2),
  });
  assert.deepEqual(gaps, {
    id: 'tlv-2',
    sub: '001',
    dlvrd: '001',
    submit_date: '2401311200',
    done_date: '2401311201',
    stat: 'EXPIRED',
    err: '1234',
    text: 'hi',
    raw: 'sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 text:hi',
  });

  const emptyId = parseReceipt('id: stat:ACCEPTD err:', { receipted_message_id: 'tlv-3', network_error_code: bytes(0x02, 0x00, 0x05) });
  assert.equal(emptyId?.id, 'tlv-3');
  assert.equal(emptyId?.stat, 'ACCEPTD');
  assert.equal(emptyId?.err, '005');
});

test('dlr 16: TLV oddities', () => {
  assert.equal(parseReceipt(undefined, { receipted_message_id: 'abc\0' })?.id, 'abc', 'C-Octet NUL dropped');
  const badNec = parseReceipt(undefined, { receipted_message_id: 'a', network_error_code: bytes(0x03, 0x01) });
  assert.equal(badNec?.err, undefined, 'network_error_code of the wrong length is ignored');
});

test('dlr 17: no id anywhere gives undefined', () => {
  assert.equal(parseReceipt(undefined, {}), undefined);
  assert.equal(parseReceipt('', {}), undefined);
  assert.equal(parseReceipt('sub:001 dlvrd:001 stat:DELIVRD err:000', { message_state: 2 }), undefined);
  assert.equal(parseReceipt('hello there', { receipted_message_id: '' }), undefined);
  assert.equal(parseReceipt('text:id:5 stat:DELIVRD', {}), undefined, 'an id inside text does not count');
});

test('dlr property: parseReceipt never throws', () => {
  fc.assert(
    fc.property(
      fc.option(fc.string({ unit: 'binary', maxLength: 200 }), { nil: undefined }),
      fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
      fc.option(fc.integer({ min: -1, max: 300 }), { nil: undefined }),
      fc.option(fc.uint8Array({ maxLength: 5 }), { nil: undefined }),
      (body, id, state, nec) => {
        const tlvs: { receipted_message_id?: string; message_state?: number; network_error_code?: Uint8Array } = {};
        if (id !== undefined) tlvs.receipted_message_id = id;
        if (state !== undefined) tlvs.message_state = state;
        if (nec !== undefined) tlvs.network_error_code = nec;
        const r = parseReceipt(body, tlvs);
        if (r) {
          assert.ok(r.id.length > 0);
          assert.equal(r.stat, r.stat.toUpperCase());
          assert.equal(r.raw, body ?? '');
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('dlr property: a formatted receipt parses back to its fields', () => {
  const token = fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/);
  const digits = fc.stringMatching(/^[0-9]{10,12}$/);
  fc.assert(
    fc.property(
      token,
      fc.stringMatching(/^[0-9]{3}$/),
      fc.stringMatching(/^[0-9]{3}$/),
      digits,
      digits,
      fc.constantFrom('DELIVRD', 'EXPIRED', 'UNDELIV', 'REJECTD', 'ACCEPTD'),
      fc.stringMatching(/^[0-9A-Z]{1,3}$/),
      fc.string({ unit: 'binary', maxLength: 30 }),
      (id, sub, dlvrd, sd, dd, stat, err, text) => {
        const body = `id:${id} sub:${sub} dlvrd:${dlvrd} submit date:${sd} done date:${dd} stat:${stat} err:${err} text:${text}`;
        assert.deepEqual(parseReceipt(body, {}), {
          id, sub, dlvrd, submit_date: sd, done_date: dd, stat, err, text, raw: body,
        });
      },
    ),
    { numRuns: 300 },
  );
});

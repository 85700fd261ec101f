/**
 * The PDU codec (src/wire/codec.ts) and the field layers around it
 * (src/pdu/fields.ts, src/pdu/model.ts). npm `smpp` is only a codec here; its
 * lossy filters must never touch what Sluice forwards (docs/design.md, "The boundary"): unknown
 * TLVs, UDH and relative validity periods survive decode → encode byte-exact,
 * GSM text goes out as data_coding 0 (never 1), binds say interface_version 0x34.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as smpp from 'smpp';
import { toPolicyPdu } from '../../src/pdu/model';
import { commandId, commandName, encodePdu, encodeWithLibrary, type UnknownTlv } from '../../src/wire/codec';
import { ESME_RTHROTTLED } from '../../src/wire/status';
import { FUZZ_SEED, cstr, u8, u16, u32, tlv, pdu, smBody, dataCodingOffset, decoded, reencode, forwardViaPolicy } from '../helpers/pdu-bytes';

describe('codec: decodePdu / encodePdu round trips', () => {
  const allFields = {
    service_type: 'CMT',
    source_addr_ton: 5,
    source_addr_npi: 0,
    source_addr: 'Sluice',
    dest_addr_ton: 1,
    dest_addr_npi: 1,
    destination_addr: '31612345678',
    esm_class: 0x03,
    protocol_id: 0x7f,
    priority_flag: 1,
    schedule_delivery_time: '240131120000000+',
    validity_period: '240201120000004+',
    registered_delivery: 0x11,
    replace_if_present_flag: 1,
    data_coding: 0,
    sm_default_msg_id: 7,
    short_message: Buffer.from('Hello world'),
  };
  const allTlvs = {
    user_message_reference: 0x1234,
    source_port: 0x0b84,
    dest_port: 0x23f0,
    sar_msg_ref_num: 0xabcd,
    sar_total_segments: 3,
    sar_segment_seqnum: 2,
    qos_time_to_live: 0x01020304,
    privacy_indicator: 2,
    source_subaddress: Buffer.from([0xa0, 0x31, 0x32]),
    callback_num: [Buffer.from([0, 1, 1, 0x33, 0x31]), Buffer.from([1, 1, 1, 0x34, 0x34])],
  };
  const golden = pdu(
    0x00000004,
    0x01020304,
    Buffer.concat([
      smBody(allFields),
      tlv(0x0204, u16(0x1234)),
      tlv(0x020a, u16(0x0b84)),
      tlv(0x020b, u16(0x23f0)),
      tlv(0x020c, u16(0xabcd)),
      tlv(0x020e, u8(3)),
      tlv(0x020f, u8(2)),
      tlv(0x0017, u32(0x01020304)),
      tlv(0x0201, u8(2)),
      tlv(0x0202, u8(0xa0, 0x31, 0x32)),
      tlv(0x0381, u8(0, 1, 1, 0x33, 0x31)),
      tlv(0x0381, u8(1, 1, 1, 0x34, 0x34)),
    ]),
  );

  it('submit_sm with every mandatory field and known TLVs encodes to the SMPP 3.4 bytes, decodes back, and re-encodes byte-exact', () => {
    const enc = encodePdu('submit_sm', 0x01020304, 0, { ...allFields, ...allTlvs });
    assert.equal(enc.toString('hex'), golden.toString('hex'));
    const p = decoded(golden);
    assert.equal(p.command, 'submit_sm');
    assert.equal(p.command_id, 4);
    assert.equal(p.command_status, 0);
    assert.equal(p.sequence_number, 0x01020304);
    assert.deepEqual(p.fields, { ...allFields, ...allTlvs });
    assert.equal(p.unknownTlvs, undefined);
    assert.equal(reencode(golden).toString('hex'), golden.toString('hex'));
    assert.equal(forwardViaPolicy(golden).toString('hex'), golden.toString('hex'));
  });

  it('submit_sm_multi keeps its SMPP 3.4 name and its destinations both ways', () => {
    assert.equal(commandName(0x21), 'submit_sm_multi');
    assert.equal(commandId('submit_sm_multi'), 0x21);
    assert.equal(commandName(0x80000021), 'submit_sm_multi_resp');
    const dests = [{ dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '31600000001' }, { dl_name: 'friends' }];
    const buf = encodePdu('submit_sm_multi', 9, 0, { source_addr: 'S', dest_address: dests, short_message: Buffer.from('hi') });
    const p = decoded(buf);
    assert.equal(p.command, 'submit_sm_multi');
    assert.deepEqual(p.fields.dest_address, dests);
    assert.deepEqual(toPolicyPdu(p).destinations, dests);
    assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    assert.equal(forwardViaPolicy(buf).toString('hex'), buf.toString('hex'));
  });

  it('unknown TLVs are preserved byte-exact through decode → encode (and through a policy forwarding the PDU)', () => {
    const unknown: [number, Buffer][] = [
      [0x1400, Buffer.from('vendor-X')],
      [0x1401, Buffer.alloc(0)],
      [0x3000, u8(0x00, 0xff, 0x00, 0x1b, 0x80)],
      [0xfffe, Buffer.alloc(300, 0x5a)],
    ];
    const buf = pdu(
      0x00000005,
      77,
      Buffer.concat([
        smBody({ esm_class: 0x04, short_message: Buffer.from('id:abc123 stat:DELIVRD') }),
        tlv(0x001e, cstr('abc123')), // receipted_message_id
        tlv(0x0427, u8(2)), // message_state
        ...unknown.map(([t, v]) => tlv(t, v)),
      ]),
    );
    const p = decoded(buf);
    assert.equal(p.fields.receipted_message_id, 'abc123');
    assert.equal(p.fields.message_state, 2);
    assert.deepEqual(
      p.unknownTlvs?.map((t) => [t.tag, Buffer.from(t.value).toString('hex')]),
      unknown.map(([t, v]) => [t, v.toString('hex')]),
    );
    assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    assert.equal(forwardViaPolicy(buf).toString('hex'), buf.toString('hex'));
    // The decoded values are copies: reusing the read buffer cannot change them.
    const copy = Buffer.from(buf);
    const q = decoded(copy);
    copy.fill(0xee);
    assert.equal(Buffer.from(q.unknownTlvs![0]!.value).toString(), 'vendor-X');
  });

  it(
    'an unknown TLV tag that occurs twice keeps both occurrences through decode → encode',
    () => {
      const buf = pdu(
        0x00000004,
        4,
        Buffer.concat([smBody({ destination_addr: '316', short_message: Buffer.from('x') }), tlv(0x1400, Buffer.from('first')), tlv(0x1400, Buffer.from('second'))]),
      );
      const p = decoded(buf);
      assert.deepEqual(
        p.unknownTlvs?.map((t) => [t.tag, Buffer.from(t.value).toString()]),
        [
          [0x1400, 'first'],
          [0x1400, 'second'],
        ],
      );
      assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    },
  );

  it(
    'unknown TLVs keep their wire order through decode → encode',
    () => {
      const buf = pdu(
        0x00000004,
        4,
        Buffer.concat([smBody({ destination_addr: '316', short_message: Buffer.from('x') }), tlv(0x3000, Buffer.from('A')), tlv(0x1400, Buffer.from('B'))]),
      );
      assert.deepEqual(decoded(buf).unknownTlvs?.map((t) => t.tag), [0x3000, 0x1400]);
      assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    },
  );

  it('unknown TLVs interleaved with known ones are all kept (TLV order is free in SMPP 3.4)', () => {
    const buf = pdu(
      0x00000004,
      3,
      Buffer.concat([
        smBody({ destination_addr: '316', short_message: Buffer.from('x') }),
        tlv(0x1500, u8(1, 2, 3)),
        tlv(0x0204, u16(9)),
        tlv(0x1501, u8(4)),
        tlv(0x020a, u16(10)),
      ]),
    );
    const out = reencode(buf);
    assert.equal(out.length, buf.length);
    assert.equal(out.readUInt32BE(0), out.length);
    const tlvsOf = (b: Buffer): string[] => {
      const start = 16 + smBody({ destination_addr: '316', short_message: Buffer.from('x') }).length;
      const list: string[] = [];
      for (let off = start; off < b.length; ) {
        const len = b.readUInt16BE(off + 2);
        list.push(b.subarray(off, off + 4 + len).toString('hex'));
        off += 4 + len;
      }
      return list.sort();
    };
    assert.deepEqual(tlvsOf(out), tlvsOf(buf));
  });

  it('short_message with a UDH stays byte-exact (the UDH is not decoded away); policies see udh and text beside the raw bytes', () => {
    const udh = u8(0x05, 0x00, 0x03, 0xa7, 0x02, 0x01);
    const gsmBody = u8(0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x00, 0x1b, 0x65); // "Hello @€" in unpacked GSM 03.38
    const sm = Buffer.concat([udh, gsmBody]);
    const buf = pdu(0x00000004, 12, smBody({ destination_addr: '31600000000', esm_class: 0x40, data_coding: 0, short_message: sm }));
    const p = decoded(buf);
    assert.deepEqual(p.fields.short_message, sm);
    assert.equal(p.fields.esm_class, 0x40);
    assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    const pol = toPolicyPdu(p);
    assert.deepEqual(pol.udh, new Uint8Array(udh));
    assert.equal(pol.text, 'Hello @€');
    assert.deepEqual(pol.short_message, new Uint8Array(sm));
    // Forwarding `{ ...pdu }` must not prepend the UDH a second time.
    assert.equal(forwardViaPolicy(buf).toString('hex'), buf.toString('hex'));

    // 8-bit binary with a port-addressing UDH: every octet value survives.
    const bin = Buffer.concat([u8(0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0), Buffer.from(Array.from({ length: 120 }, (_, i) => (i * 37) & 0xff))]);
    const bbuf = pdu(0x00000004, 13, smBody({ destination_addr: '316', esm_class: 0x40, data_coding: 0x04, short_message: bin }));
    assert.equal(reencode(bbuf).toString('hex'), bbuf.toString('hex'));
    assert.equal(forwardViaPolicy(bbuf).toString('hex'), bbuf.toString('hex'));
    assert.equal(toPolicyPdu(decoded(bbuf)).text, undefined);
  });

  it("relative validity_period '000001000000000R' (and a relative schedule) survive decode → encode unchanged", () => {
    const buf = pdu(
      0x00000004,
      21,
      smBody({ destination_addr: '316', schedule_delivery_time: '000000001000000R', validity_period: '000001000000000R', short_message: Buffer.from('x') }),
    );
    const p = decoded(buf);
    assert.equal(p.fields.validity_period, '000001000000000R');
    assert.equal(p.fields.schedule_delivery_time, '000000001000000R');
    assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
    assert.equal(forwardViaPolicy(buf).toString('hex'), buf.toString('hex'));
    const enc = encodePdu('submit_sm', 1, 0, { validity_period: '000001000000000R', short_message: Buffer.from('x') });
    assert.ok(enc.includes(cstr('000001000000000R')));
  });

  it('data_coding 0 stays 0 on the wire (npm smpp would write 1 for GSM text)', () => {
    const buf = pdu(0x00000004, 5, smBody({ destination_addr: '316', data_coding: 0, short_message: Buffer.from('hello GSM') }));
    const p = decoded(buf);
    assert.equal(p.fields.data_coding, 0);
    const out = reencode(buf);
    assert.equal(out[dataCodingOffset(out)], 0);
    assert.equal(out.toString('hex'), buf.toString('hex'));
    // data_coding left out: the default 0, not 1.
    const dflt = encodePdu('submit_sm', 6, 0, { destination_addr: '316', short_message: Buffer.from('hello GSM') });
    assert.equal(dflt[dataCodingOffset(dflt)], 0);
    // Other codings are carried as given.
    for (const dc of [0x01, 0x03, 0x08, 0xf0]) {
      const b = encodePdu('submit_sm', 7, 0, { destination_addr: '316', data_coding: dc, short_message: Buffer.from('hi') });
      assert.equal(b[dataCodingOffset(b)], dc);
      assert.equal(decoded(b).fields.data_coding, dc);
    }
  });

  it("encodePdu('bind_transceiver', …, { interface_version: 0x34 }) puts 0x34 on the wire", () => {
    const enc = encodePdu('bind_transceiver', 1, 0, { system_id: 'acme', password: 'pw', system_type: 'SMS', interface_version: 0x34, addr_ton: 1, addr_npi: 1, address_range: '' });
    const expected = pdu(0x00000009, 1, Buffer.concat([cstr('acme'), cstr('pw'), cstr('SMS'), u8(0x34, 1, 1), cstr('')]));
    assert.equal(enc.toString('hex'), expected.toString('hex'));
    assert.equal(enc[16 + 5 + 3 + 4], 0x34);
    assert.equal(decoded(enc).fields.interface_version, 0x34);
  });

  it(
    'encodePdu of a bind without interface_version writes 0x34, not npm smpp\'s default 0x50',
    () => {
      for (const cmd of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
        const enc = encodePdu(cmd, 1, 0, { system_id: 'acme', password: 'pw' });
        assert.equal(enc[16 + 5 + 3 + 1], 0x34, cmd);
      }
    },
  );

  it('encodePdu with an error status writes the header only, without body or unknown TLVs', () => {
    const enc = encodePdu('submit_sm_resp', 8, ESME_RTHROTTLED, { message_id: 'abc' }, [{ tag: 0x1400, value: u8(1) }]);
    assert.equal(enc.toString('hex'), pdu(0x80000004, 8, Buffer.alloc(0), ESME_RTHROTTLED).toString('hex'));
  });

  it('property: any submit_sm Sluice encodes decodes to the same fields and re-encodes byte-exact', () => {
    const ascii = (max: number): fc.Arbitrary<string> =>
      fc.array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: max }).map((a) => String.fromCharCode(...a));
    const byte = fc.integer({ min: 0, max: 255 });
    const unknownTag = fc.integer({ min: 0x1400, max: 0xffff }).filter((t) => smpp.tlvsById[t] === undefined);
    const arb = fc.record({
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      fields: fc.record({
        service_type: ascii(5),
        source_addr_ton: byte,
        source_addr_npi: byte,
        source_addr: ascii(20),
        dest_addr_ton: byte,
        dest_addr_npi: byte,
        destination_addr: ascii(20),
        esm_class: byte,
        protocol_id: byte,
        priority_flag: byte,
        schedule_delivery_time: ascii(16),
        validity_period: ascii(16),
        registered_delivery: byte,
        replace_if_present_flag: byte,
        data_coding: byte,
        sm_default_msg_id: byte,
        short_message: fc.uint8Array({ maxLength: 254 }).map((a) => Buffer.from(a)),
      }),
      // Distinct tags in ascending order: repeated tags and wire order have their own tests above.
      tlvs: fc
        .uniqueArray(fc.record({ tag: unknownTag, value: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 4, selector: (t) => t.tag })
        .map((a) => [...a].sort((x, y) => x.tag - y.tag)),
    });
    fc.assert(
      fc.property(arb, ({ seq, fields, tlvs }) => {
        const buf = encodePdu('submit_sm', seq, 0, fields, tlvs);
        assert.equal(buf.readUInt32BE(0), buf.length);
        const p = decoded(buf);
        assert.equal(p.sequence_number, seq);
        assert.deepEqual(p.fields, { ...fields });
        assert.deepEqual(
          (p.unknownTlvs ?? []).map((t: UnknownTlv) => [t.tag, Buffer.from(t.value).toString('hex')]),
          tlvs.map((t) => [t.tag, Buffer.from(t.value).toString('hex')]),
        );
        assert.equal(reencode(buf).toString('hex'), buf.toString('hex'));
      }),
      { numRuns: 100, seed: FUZZ_SEED },
    );
  });
});

// ---- encodePdu against npm smpp's own encoder ------------------------------------------

describe('encodePdu writes what npm smpp writes', () => {
  const LIB_TO_SMPP: Record<string, string> = { submit_multi: 'submit_sm_multi', submit_multi_resp: 'submit_sm_multi_resp' };
  const commands = Object.values(smpp.commands).map((d) => LIB_TO_SMPP[d.command] ?? d.command);
  const paramNames = [...new Set(Object.values(smpp.commands).flatMap((d) => Object.keys(d.params ?? {})))];
  const tlvNames = Object.keys(smpp.tlvs);
  /** The same call twice: both give these bytes, or both throw. */
  const same = (command: string, seq: number, status: number, fields: Record<string, unknown> | undefined): void => {
    let want: Buffer | Error;
    try {
      want = encodeWithLibrary(command, seq, status, fields);
    } catch (err) {
      want = err as Error;
    }
    if (want instanceof Error) {
      assert.throws(() => encodePdu(command, seq, status, fields), `${command} ${JSON.stringify(fields)}: the library throws (${want.message})`);
    } else {
      assert.equal(encodePdu(command, seq, status, fields).toString('hex'), want.toString('hex'), `${command} ${JSON.stringify(fields)}`);
    }
  };

  it('for the hot path: a submit_sm, its response, a deliver_sm receipt with TLVs, a bind', () => {
    same('submit_sm', 7, 0, { source_addr: '1000', destination_addr: '31600000000', short_message: Buffer.from('hello'), registered_delivery: 1 });
    same('submit_sm_resp', 7, 0, { message_id: 'abc' });
    same('deliver_sm', 9, 0, { esm_class: 4, short_message: Buffer.from('id:1 stat:DELIVRD'), receipted_message_id: '1', message_state: 2, network_error_code: Buffer.from([3, 0, 0]) });
    same('bind_transceiver', 1, 0, { system_id: 'acme', password: 'pw', system_type: '', interface_version: undefined });
    same('submit_sm_multi', 3, 0, { dest_address: [{ dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '316' }, { dl_name: 'list' }], short_message: Buffer.from('x') });
    same('submit_sm', 7, 8, { short_message: Buffer.from('ignored with an error status') });
  });

  // Values of every kind, in range or not, of the field's own type or not.
  const wild = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -2, max: 0x1_0000_0002 }),
    fc.constantFrom(0, 1, 255, 256, 65535, 65536, 0xffffffff, 1.5, NaN),
    fc.string({ maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 4 }),
    fc.string({ minLength: 250, maxLength: 300 }),
    fc.uint8Array({ minLength: 250, maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a)),
    fc.uint8Array({ maxLength: 4 }),
    fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.string({ maxLength: 3 }), fc.uint8Array({ maxLength: 3 }).map((a) => Buffer.from(a))), { maxLength: 3 }),
    fc.record({ destination_addr: fc.string({ maxLength: 4 }), dest_addr_ton: fc.integer({ min: 0, max: 300 }) }),
    fc.constant({}),
    // Longer than a TLV's 16-bit length can say.
    fc.constant(Buffer.alloc(0x10000)),
  );

  it('property: any command, any mix of field names and values, valid or not, gives the library\'s bytes or its refusal', () => {
    const key = fc.oneof(fc.constantFrom(...paramNames), fc.constantFrom(...tlvNames), fc.constantFrom('constructor', 'toString', 'sequence_number', 'command_status', 'unknown_field'));
    const arb = fc.record({
      command: fc.constantFrom(...commands),
      seq: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(-1)),
      status: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 0x100 })),
      fields: fc.option(fc.dictionary(key, wild, { maxKeys: 8 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(arb, ({ command, seq, status, fields }) => same(command, seq, status, fields)),
      { numRuns: 2000, seed: FUZZ_SEED },
    );
  });

  it('property: each command with its own fields and TLVs, now and then one of them given a wrong value, gives the library\'s bytes or its refusal', () => {
    // Mostly values of each field's own kind, so most cases are written by encodeFields itself.
    const own = (type: smpp.FieldType): fc.Arbitrary<unknown> => {
      if (type === smpp.types.int8) return fc.integer({ min: 0, max: 0xff });
      if (type === smpp.types.int16) return fc.integer({ min: 0, max: 0xffff });
      if (type === smpp.types.int32) return fc.integer({ min: 0, max: 0xffffffff });
      if (type === smpp.types.cstring || type === smpp.types.tlv.cstring || type === smpp.types.tlv.string) return fc.string({ maxLength: 12 });
      if (type === smpp.types.buffer) return fc.uint8Array({ maxLength: 255 }).map((a) => Buffer.from(a));
      if (type === smpp.types.tlv.buffer) return fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
      return fc.constant(undefined);
    };
    const field = (type: smpp.FieldType, multiple = false): fc.Arbitrary<unknown> => {
      const good = multiple ? fc.array(own(type), { minLength: 1, maxLength: 2 }) : own(type);
      return fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: wild, weight: 1 });
    };
    const arb = fc.constantFrom(...Object.values(smpp.commands)).chain((def) => {
      const params = Object.entries(def.params ?? {}).map(([k, p]) => fc.option(field(p.type), { nil: undefined, freq: 4 }).map((v) => [k, v] as const));
      const tlvs = fc.subarray(tlvNames, { maxLength: 4 }).chain((names) => fc.tuple(...names.map((n) => field(smpp.tlvs[n]!.type, smpp.tlvs[n]!.multiple).map((v) => [n, v] as const))));
      return fc.tuple(fc.constant(LIB_TO_SMPP[def.command] ?? def.command), fc.tuple(...params), tlvs);
    });
    fc.assert(
      fc.property(arb, ([command, params, tlvs]) => {
        const fields: Record<string, unknown> = {};
        for (const [k, v] of params) if (v !== undefined) fields[k] = v;
        for (const [k, v] of tlvs) fields[k] = v;
        same(command, 42, 0, fields);
      }),
      { numRuns: 3000, seed: FUZZ_SEED },
    );
  });
});

/** Byte builders and codec helpers the codec, fields and model tests share. */
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/errors';
import { toWireFields } from '../../src/pdu/fields';
import { toPolicyPdu } from '../../src/pdu/model';
import { decodePdu, encodePdu, type WirePdu } from '../../src/wire/codec';

export const FUZZ_SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20240611);

// ---- building wire bytes by hand (independent of the codec under test) ------------

export const cstr = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]);
export const u8 = (...b: number[]): Buffer => Buffer.from(b);
export const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
export const octets = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]); // sm_length + short_message
export const tlv = (tag: number, value: Buffer): Buffer => Buffer.concat([u16(tag), u16(value.length), value]);

export function pdu(id: number, seq: number, body: Buffer, status = 0): Buffer {
  return Buffer.concat([u32(16 + body.length), u32(id), u32(status), u32(seq), body]);
}

export interface SmFields {
  service_type?: string;
  source_addr_ton?: number;
  source_addr_npi?: number;
  source_addr?: string;
  dest_addr_ton?: number;
  dest_addr_npi?: number;
  destination_addr?: string;
  esm_class?: number;
  protocol_id?: number;
  priority_flag?: number;
  schedule_delivery_time?: string;
  validity_period?: string;
  registered_delivery?: number;
  replace_if_present_flag?: number;
  data_coding?: number;
  sm_default_msg_id?: number;
  short_message?: Buffer;
}

/** The mandatory part of a submit_sm / deliver_sm body, in SMPP 3.4 order. */
export function smBody(f: SmFields): Buffer {
  return Buffer.concat([
    cstr(f.service_type ?? ''),
    u8(f.source_addr_ton ?? 0, f.source_addr_npi ?? 0),
    cstr(f.source_addr ?? ''),
    u8(f.dest_addr_ton ?? 0, f.dest_addr_npi ?? 0),
    cstr(f.destination_addr ?? ''),
    u8(f.esm_class ?? 0, f.protocol_id ?? 0, f.priority_flag ?? 0),
    cstr(f.schedule_delivery_time ?? ''),
    cstr(f.validity_period ?? ''),
    u8(f.registered_delivery ?? 0, f.replace_if_present_flag ?? 0, f.data_coding ?? 0, f.sm_default_msg_id ?? 0),
    octets(f.short_message ?? Buffer.alloc(0)),
  ]);
}

/** Offset of data_coding in a submit_sm / deliver_sm, found by walking the wire bytes. */
export function dataCodingOffset(buf: Buffer): number {
  let off = 16;
  const skipC = (): void => {
    while (buf[off] !== 0) off++;
    off++;
  };
  skipC(); // service_type
  off += 2;
  skipC(); // source_addr
  off += 2;
  skipC(); // destination_addr
  off += 3;
  skipC(); // schedule_delivery_time
  skipC(); // validity_period
  off += 2; // registered_delivery, replace_if_present_flag
  return off;
}

export function decoded(buf: Buffer): WirePdu {
  const r = decodePdu(buf);
  assert.equal(r.ok, true, r.ok ? '' : r.reason);
  return (r as { ok: true; pdu: WirePdu }).pdu;
}

/** Decode, then encode again with everything the decoder kept. */
export function reencode(buf: Buffer): Buffer {
  const p = decoded(buf);
  return encodePdu(p.command, p.sequence_number, p.command_status, p.fields, p.unknownTlvs);
}

/** The path a policy's `{ ...pdu }` takes when it forwards a PDU it received. */
export function forwardViaPolicy(buf: Buffer): Buffer {
  const p = decoded(buf);
  const w = toWireFields(p.command, toPolicyPdu(p));
  return encodePdu(p.command, p.sequence_number, 0, w.fields, w.unknownTlvs);
}

export const invalidField = (err: unknown): boolean => isSluiceError(err, 'INVALID_FIELD');

// ---- round trips --------------------------------------------------------------------

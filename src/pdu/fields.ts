import * as smpp from 'smpp';
import { SluiceError } from '../errors';
import type { UnknownTlv } from '../wire/codec';
import { chooseDataCoding, encodeText } from './text';

/**
 * Fields a policy hands to a send helper or a reply → raw wire fields,
 * validated before anything is encoded. Every problem is an INVALID_FIELD
 * error naming the field; nothing half-valid reaches the wire.
 *
 * `short_message` / `message_payload` may be bytes (sent as they are,
 * byte-exact, any UDH included) or a string (encoded per `data_coding`; when
 * `data_coding` is absent GSM 03.38 is used if it can carry the text, else
 * UCS-2). `udh` is prepended to a string message and sets UDHI in esm_class.
 * The derived keys of a received PDU (`text`, `isDlr`, `receipt`, …) are
 * ignored, so `{ ...pdu }` forwards a PDU unchanged.
 */

/** SMPP 3.4 C-Octet String maxima, NUL excluded. */
const CSTRING_MAX: Record<string, number> = {
  service_type: 5,
  source_addr: 20,
  destination_addr: 20,
  schedule_delivery_time: 16,
  validity_period: 16,
  message_id: 64,
  final_date: 16,
  system_id: 15,
  password: 8,
  system_type: 12,
  address_range: 40,
  esme_addr: 64,
  receipted_message_id: 64,
};

const IGNORED = new Set(['command', 'sequence_number', 'command_status', 'text', 'isDlr', 'receipt', 'udh']);
const SHORT_MESSAGE_MAX = 254;

export interface WireFields {
  fields: Record<string, unknown>;
  unknownTlvs?: UnknownTlv[];
}

function invalid(command: string, field: string, why: string): SluiceError {
  return new SluiceError('INVALID_FIELD', `${command}.${field}: ${why}`);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function checkInt(command: string, key: string, v: unknown, bits: number): number {
  const max = 2 ** bits - 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(command, key, `must be an integer 0..${max}`);
  }
  return v;
}

function checkCString(command: string, key: string, v: unknown, max = 254): string {
  if (typeof v !== 'string') throw invalid(command, key, 'must be a string');
  if (v.length > max) throw invalid(command, key, `at most ${max} characters`);
  // C-Octet Strings are ASCII on the wire; NUL would end the string early.
  if (!/^[\x01-\x7f]*$/.test(v)) throw invalid(command, key, 'must be printable ASCII without NUL');
  return v;
}

function intBits(type: smpp.FieldType): number | undefined {
  if (type === smpp.types.int8 || type === smpp.types.tlv.int8) return 8;
  if (type === smpp.types.int16 || type === smpp.types.tlv.int16) return 16;
  if (type === smpp.types.int32 || type === smpp.types.tlv.int32) return 32;
  return undefined;
}

function messageBytes(command: string, key: string, v: unknown, fields: Record<string, unknown>, udh: unknown): Buffer {
  if (v instanceof Uint8Array) return toBuffer(v);
  if (typeof v !== 'string') throw invalid(command, key, 'must be bytes (Uint8Array) or a string');
  if (fields.data_coding === undefined || fields.data_coding === null) fields.data_coding = chooseDataCoding(v);
  let body: Uint8Array;
  try {
    body = encodeText(v, fields.data_coding as number);
  } catch (err) {
    throw invalid(command, key, (err as Error).message);
  }
  if (udh === undefined) return toBuffer(body);
  if (!(udh instanceof Uint8Array) || udh.length < 1 || udh[0]! + 1 !== udh.length) {
    throw invalid(command, 'udh', 'must be bytes starting with its own length (UDHL)');
  }
  fields.esm_class = ((fields.esm_class as number | undefined) ?? 0) | 0x40;
  return Buffer.concat([udh, body]);
}

/** Validate and convert policy fields for `command` (a request or a response). */
export function toWireFields(command: string, input: Readonly<Record<string, unknown>>): WireFields {
  const lib = command === 'submit_sm_multi' ? 'submit_multi' : command === 'submit_sm_multi_resp' ? 'submit_multi_resp' : command;
  const def = smpp.commands[lib];
  if (!def) throw new SluiceError('INVALID_FIELD', `unknown command ${command}`);
  const params = def.params ?? {};
  const out: Record<string, unknown> = {};
  let unknownTlvs: UnknownTlv[] | undefined;
  if (input === null || typeof input !== 'object') throw new SluiceError('INVALID_FIELD', `${command}: fields must be an object`);
  // data_coding first: string messages are encoded with it.
  if (input.data_coding !== undefined) out.data_coding = checkInt(command, 'data_coding', input.data_coding, 8);
  if (input.esm_class !== undefined) out.esm_class = checkInt(command, 'esm_class', input.esm_class, 8);

  for (const key of Object.keys(input)) {
    const v = input[key];
    if (v === undefined || IGNORED.has(key) || key === 'data_coding' || key === 'esm_class') continue;
    if (key === 'short_message' || key === 'message_payload') {
      if (!(key in params) && !(key in smpp.tlvs)) throw invalid(command, key, 'not a field of this command');
      const b = messageBytes(command, key, v, out, input.udh);
      if (key === 'short_message' && b.length > SHORT_MESSAGE_MAX) {
        throw invalid(command, key, `${b.length} octets; at most ${SHORT_MESSAGE_MAX} (use message_payload for more)`);
      }
      if (key === 'message_payload' && b.length > 0xffff) throw invalid(command, key, 'at most 65535 octets');
      out[key] = b;
      continue;
    }
    if (key === 'destinations' && lib === 'submit_multi') {
      out.dest_address = checkDestinations(command, v);
      continue;
    }
    if (key === 'unknown_tlvs') {
      unknownTlvs = checkUnknownTlvs(command, v);
      continue;
    }
    const p = params[key];
    const t = p ? undefined : smpp.tlvs[key];
    const type = p?.type ?? t?.type;
    if (!type) throw invalid(command, key, 'not a field of this command');
    if (t?.multiple) {
      if (!Array.isArray(v)) throw invalid(command, key, 'must be an array');
      out[key] = v.map((x) => convertScalar(command, key, x, type));
    } else {
      out[key] = convertScalar(command, key, v, type);
    }
  }
  if (input.udh !== undefined && typeof input.short_message !== 'string' && typeof input.message_payload !== 'string') {
    // With byte messages the UDH is already inside short_message; adding it again would corrupt it.
    if (!(input.short_message instanceof Uint8Array || input.message_payload instanceof Uint8Array)) {
      throw invalid(command, 'udh', 'goes with a short_message or message_payload');
    }
  }
  const result: WireFields = { fields: out };
  if (unknownTlvs) result.unknownTlvs = unknownTlvs;
  return result;
}

function convertScalar(command: string, key: string, v: unknown, type: smpp.FieldType): unknown {
  const bits = intBits(type);
  if (bits) return checkInt(command, key, v, bits);
  if (type === smpp.types.cstring || type === smpp.types.tlv.cstring || type === smpp.types.tlv.string || type === smpp.types.string) {
    return checkCString(command, key, v, CSTRING_MAX[key]);
  }
  if (type === smpp.types.buffer || type === smpp.types.tlv.buffer) {
    if (v instanceof Uint8Array) {
      if (v.length > (type === smpp.types.buffer ? 255 : 0xffff)) throw invalid(command, key, 'too long');
      return toBuffer(v);
    }
    throw invalid(command, key, 'must be bytes (Uint8Array)');
  }
  throw invalid(command, key, 'cannot be set by a policy');
}

function checkDestinations(command: string, v: unknown): unknown[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > 254) throw invalid(command, 'destinations', 'must be an array of 1..254 entries');
  return v.map((d: unknown, i) => {
    if (d === null || typeof d !== 'object') throw invalid(command, `destinations[${i}]`, 'must be an object');
    const o = d as Record<string, unknown>;
    if (o.dl_name !== undefined) return { dl_name: checkCString(command, `destinations[${i}].dl_name`, o.dl_name, 20) };
    return {
      dest_addr_ton: checkInt(command, `destinations[${i}].dest_addr_ton`, o.dest_addr_ton ?? 0, 8),
      dest_addr_npi: checkInt(command, `destinations[${i}].dest_addr_npi`, o.dest_addr_npi ?? 0, 8),
      destination_addr: checkCString(command, `destinations[${i}].destination_addr`, o.destination_addr, 20),
    };
  });
}

function checkUnknownTlvs(command: string, v: unknown): UnknownTlv[] {
  if (!Array.isArray(v)) throw invalid(command, 'unknown_tlvs', 'must be an array of { tag, value }');
  return v.map((t: unknown, i) => {
    const o = (t ?? {}) as Record<string, unknown>;
    const tag = checkInt(command, `unknown_tlvs[${i}].tag`, o.tag, 16);
    if (smpp.tlvsById[tag]) throw invalid(command, `unknown_tlvs[${i}].tag`, `0x${tag.toString(16)} is a known TLV; set it by name`);
    if (!(o.value instanceof Uint8Array) || o.value.length > 0xffff) throw invalid(command, `unknown_tlvs[${i}].value`, 'must be bytes');
    return { tag, value: o.value };
  });
}

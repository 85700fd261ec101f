// One file on purpose: the one boundary to npm smpp: decode, encode and the tables derived from its definitions must
// agree with each other byte for byte.
import * as smpp from 'smpp';
import { checkFrame, type FieldKind, type TlvKind, type ViewTables } from './frame-walk';
import { ESME_RINVCMDID, ESME_RINVCMDLEN } from './status';

/**
 * npm `smpp` as a codec and nothing more. Its decode/encode "filters" are
 * switched off: they turn short_message into text (losing bytes and UDH),
 * rewrite data_coding, and turn relative validity periods into absolute
 * dates. Sluice keeps every field as the raw value off the wire and does its
 * own text handling (src/pdu/). Unknown TLVs, which the library drops on
 * encode, are carried beside the known fields and appended by Sluice.
 */

/** A decoded PDU: header plus raw field values (ints, ASCII strings, Buffers). */
export interface WirePdu {
  /** SMPP 3.4 command name (`submit_sm_multi`, not the library's `submit_multi`). */
  command: string;
  command_id: number;
  command_status: number;
  sequence_number: number;
  /** Mandatory parameters and known TLVs by SMPP name. */
  fields: Record<string, unknown>;
  /** TLVs the codec does not know, kept byte-exact so forwarding preserves them. */
  unknownTlvs?: UnknownTlv[];
  /** The whole frame as received (requests only): a sandbox can rebuild the PDU from it more cheaply than from a copied object. */
  raw?: Buffer;
}

/** A request the peer sent us; answered exactly once. */
export interface InboundRequest extends WirePdu {
  answered?: boolean;
  /** When it arrived (the session's clock), stamped only where a session's `answered` observer measures it. */
  receivedAt?: number;
}

export interface UnknownTlv {
  tag: number;
  value: Uint8Array;
}

export type DecodeResult =
  | { ok: true; pdu: WirePdu }
  | { ok: false; command_id: number; sequence_number: number; status: number; reason: string };

const HEADER = 16;
const LIB_TO_SMPP: Record<string, string> = { submit_multi: 'submit_sm_multi', submit_multi_resp: 'submit_sm_multi_resp' };
const SMPP_TO_LIB: Record<string, string> = { submit_sm_multi: 'submit_multi', submit_sm_multi_resp: 'submit_multi_resp' };

/** SMPP command names Sluice knows, by id. */
const COMMAND_BY_ID = new Map<number, string>();
const ID_BY_COMMAND = new Map<string, number>();
for (const def of Object.values(smpp.commands)) {
  const name = LIB_TO_SMPP[def.command] ?? def.command;
  COMMAND_BY_ID.set(def.id, name);
  ID_BY_COMMAND.set(name, def.id);
}

let tables: ViewTables | undefined;

/** npm `smpp`'s field types by the kind Sluice's field walks (view, encoder) know them as. */
const PARAM_KINDS = new Map<smpp.FieldType, FieldKind>([
  [smpp.types.cstring, 'c'],
  [smpp.types.int8, 'i1'],
  [smpp.types.int16, 'i2'],
  [smpp.types.int32, 'i4'],
  [smpp.types.buffer, 'b'],
  [smpp.types.dest_address_array, 'da'],
  [smpp.types.unsuccess_sme_array, 'us'],
]);
const TLV_KINDS = new Map<smpp.FieldType, TlvKind>([
  [smpp.types.tlv.int8, 'i1'],
  [smpp.types.tlv.int16, 'i2'],
  [smpp.types.tlv.int32, 'i4'],
  [smpp.types.tlv.cstring, 'c'],
  [smpp.types.tlv.string, 's'],
  [smpp.types.tlv.buffer, 'b'],
]);

/** npm `smpp`'s field layouts as plain data, for the field walk in src/pdu/view.ts (in the core and in every isolate). */
export function viewTables(): ViewTables {
  if (tables) return tables;
  const t: ViewTables = { commands: {}, tlvs: {} };
  for (const def of Object.values(smpp.commands)) {
    const name = LIB_TO_SMPP[def.command] ?? def.command;
    const params = Object.entries(def.params ?? {}).map(([key, p]): [string, FieldKind] => {
      const kind = PARAM_KINDS.get(p.type);
      if (!kind) throw new Error(`no view layout for ${name}.${key}`);
      return [key, kind];
    });
    t.commands[def.id] = def.tlvMap ? [name, params, { ...def.tlvMap }] : [name, params];
  }
  for (const [id, tlv] of Object.entries(smpp.tlvsById)) {
    const kind = TLV_KINDS.get(tlv.type);
    if (!kind) throw new Error(`no view layout for TLV ${tlv.tag}`);
    t.tlvs[Number(id)] = [tlv.tag, kind, tlv.multiple ? 1 : 0];
  }
  return (tables = t);
}

export function commandId(command: string): number {
  const id = ID_BY_COMMAND.get(command);
  if (id === undefined) throw new Error(`unknown SMPP command ${command}`);
  return id;
}

export function commandName(id: number): string | undefined {
  return COMMAND_BY_ID.get(id);
}

/** Requests SMPP defines no response for. */
const noFilter = (): void => {};

export const NO_RESPONSE: ReadonlySet<string> = new Set(['alert_notification', 'outbind']);

export function isResponseId(id: number): boolean {
  return (id & 0x80000000) !== 0;
}

const CSTRING = new Set([smpp.types.cstring, smpp.types.tlv.cstring]);
const FIXED: ReadonlyMap<smpp.FieldType, number> = new Map([
  [smpp.types.int8, 1],
  [smpp.types.int16, 2],
  [smpp.types.int32, 4],
  [smpp.types.tlv.int8, 1],
  [smpp.types.tlv.int16, 2],
  [smpp.types.tlv.int32, 4],
]);

function readCString(buf: Buffer, off: number, end: number): { value: string; next: number } | undefined {
  const nul = buf.indexOf(0, off);
  if (nul === -1 || nul >= end) return undefined;
  return { value: buf.toString('latin1', off, nul), next: nul + 1 };
}

function unknownCommand(command_id: number, sequence_number: number): Extract<DecodeResult, { ok: false }> {
  return { ok: false, command_id, sequence_number, status: ESME_RINVCMDID, reason: `unknown command_id 0x${command_id.toString(16)}` };
}

/**
 * Decode one whole PDU (`buf.length === command_length`, ≥ 16). Never throws:
 * an unknown command id or a body that does not parse comes back as
 * `{ ok: false }` with the status a generic_nack should carry.
 *
 * The field walk is Sluice's (the library's reader stops quietly at the end
 * of the buffer and reads C-string TLVs past their length); the field
 * definitions and value readers are npm `smpp`'s. Every mandatory field of a
 * request must be present and end inside the PDU; TLVs must fit exactly.
 */
export function decodePdu(buf: Buffer): DecodeResult {
  const command_id = buf.readUInt32BE(4);
  const command_status = buf.readUInt32BE(8);
  const sequence_number = buf.readUInt32BE(12);
  const command = COMMAND_BY_ID.get(command_id);
  if (command === undefined) return unknownCommand(command_id, sequence_number);
  const def = smpp.commands[SMPP_TO_LIB[command] ?? command]!;
  const fields: Record<string, unknown> = {};
  let unknownTlvs: UnknownTlv[] | undefined;
  const end = buf.length;
  const fail = (reason: string): DecodeResult => ({ ok: false, command_id, sequence_number, status: ESME_RINVCMDLEN, reason: `${command}: ${reason}` });
  let off = HEADER;
  const isResp = isResponseId(command_id);
  for (const [key, param] of Object.entries(def.params ?? {})) {
    // A response may stop early (an error status carries no body); a request may not.
    if (off >= end && isResp) break;
    const type = param.type;
    if (CSTRING.has(type)) {
      const r = readCString(buf, off, end);
      if (!r) return fail(`${key} is not NUL-terminated inside the PDU`);
      fields[key] = r.value;
      off = r.next;
      continue;
    }
    const fixed = FIXED.get(type);
    if (fixed !== undefined) {
      if (off + fixed > end) return fail(`${key} runs past the end of the PDU`);
      fields[key] = type.read(buf, off);
      off += fixed;
      continue;
    }
    if (type === smpp.types.buffer) {
      if (off + 1 > end || off + 1 + buf[off]! > end) return fail(`${key} length runs past the end of the PDU`);
      fields[key] = buf.subarray(off + 1, off + 1 + buf[off]!);
      off += 1 + buf[off]!;
      continue;
    }
    // dest_address / unsuccess_sme arrays: the library reads them; check where it stopped.
    let value: unknown;
    try {
      value = type.read(buf, off);
    } catch (err) {
      return fail(`${key} does not parse: ${(err as Error).message}`);
    }
    const size = type.size(value);
    if (off + size > end) return fail(`${key} runs past the end of the PDU`);
    fields[key] = value;
    off += size;
  }
  while (off < end) {
    if (off + 4 > end) return fail('trailing bytes that are not a TLV');
    const tag = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    const start = off + 4;
    off = start + len;
    if (off > end) return fail(`TLV 0x${tag.toString(16)} runs past the end of the PDU`);
    const tlv = smpp.tlvsById[tag];
    const fixed = tlv ? FIXED.get(tlv.type) : undefined;
    if (!tlv || (fixed !== undefined && fixed !== len)) {
      // Unknown, or not the size its definition says: keep the bytes, in order.
      (unknownTlvs ??= []).push({ tag, value: new Uint8Array(buf.subarray(start, off)) });
      continue;
    }
    let value: unknown;
    if (CSTRING.has(tlv.type)) {
      // Read within the TLV's own length; a missing NUL is tolerated, not read past.
      const nul = buf.indexOf(0, start);
      value = buf.toString('latin1', start, nul === -1 || nul >= off ? off : nul);
    } else {
      value = tlv.type.read(buf, start, len);
    }
    const name = def.tlvMap?.[tlv.tag] ?? tlv.tag;
    if (tlv.multiple) ((fields[name] ??= []) as unknown[]).push(value);
    else fields[name] = value;
  }
  const pdu: WirePdu = { command, command_id, command_status, sequence_number, fields };
  if (unknownTlvs) pdu.unknownTlvs = unknownTlvs;
  return { ok: true, pdu };
}

/**
 * A request whose frame was checked whole (the same rules as `decodePdu`,
 * by the walk in src/pdu/view.ts) but whose fields are decoded only when
 * read: a PDU bound for a sandboxed policy crosses as its frame and the core
 * never needs them.
 */
export class CheckedPdu implements WirePdu {
  private decoded: WirePdu | undefined;

  constructor(
    readonly raw: Buffer,
    readonly command: string,
    readonly command_id: number,
    readonly command_status: number,
    readonly sequence_number: number,
  ) {}

  private full(): WirePdu {
    if (!this.decoded) {
      const d = decodePdu(this.raw);
      // Checked by checkPdu; a frame that passed it decodes (view.test.ts holds the two to the same rules).
      this.decoded = d.ok ? d.pdu : { command: this.command, command_id: this.command_id, command_status: this.command_status, sequence_number: this.sequence_number, fields: {} };
    }
    return this.decoded;
  }

  get fields(): Record<string, unknown> {
    return this.full().fields;
  }

  get unknownTlvs(): UnknownTlv[] | undefined {
    return this.full().unknownTlvs;
  }
}

/**
 * Check one whole PDU without decoding its fields: what `decodePdu` would
 * accept comes back as a `CheckedPdu`, what it would refuse with the same
 * status. Never throws.
 */
export function checkPdu(buf: Buffer): { ok: true; pdu: CheckedPdu } | Extract<DecodeResult, { ok: false }> {
  const command_id = buf.readUInt32BE(4);
  const sequence_number = buf.readUInt32BE(12);
  const command = COMMAND_BY_ID.get(command_id);
  if (command === undefined) return unknownCommand(command_id, sequence_number);
  const reason = checkFrame(buf, viewTables());
  if (reason !== undefined) return { ok: false, command_id, sequence_number, status: ESME_RINVCMDLEN, reason };
  return { ok: true, pdu: new CheckedPdu(buf, command, command_id, buf.readUInt32BE(8), sequence_number) };
}

/**
 * Encode a PDU. Fields are raw values; `short_message` must be bytes. Throws
 * on unencodable values.
 *
 * Fields of the usual kinds (integers in range, strings, Buffers) are written
 * by `encodeFields`, one pass over npm `smpp`'s own field definitions; any
 * other value goes to the library's encoder, which decides how it is written
 * or why it cannot be. Both give the same bytes for every input (a property
 * test holds them to it): the library's encoder builds an object per PDU and
 * walks its prototype for every field, and a gateway forwarding submits
 * spent most of its encoding time there.
 */
export function encodePdu(
  command: string,
  sequence_number: number,
  command_status: number,
  fields?: Record<string, unknown>,
  unknownTlvs?: readonly UnknownTlv[],
): Buffer {
  const plan = ENCODE_PLANS.get(command);
  if (!plan) throw new Error(`unknown SMPP command ${command}`);
  const body = encodeFields(plan, sequence_number, command_status, fields) ?? encodeWithLibrary(command, sequence_number, command_status, fields);
  return appendUnknownTlvs(body, command_status, unknownTlvs);
}

/** The library's own encoder (`new smpp.PDU(…).toBuffer()`), its filters off, binds at interface_version 0x34. */
export function encodeWithLibrary(command: string, sequence_number: number, command_status: number, fields?: Record<string, unknown>): Buffer {
  const libName = SMPP_TO_LIB[command] ?? command;
  if (!smpp.commands[libName]) throw new Error(`unknown SMPP command ${command}`);
  const opts: Record<string, unknown> = { ...fields, sequence_number, command_status };
  // The library defaults binds to interface_version 0x50 (SMPP 5.0); Sluice speaks 3.4.
  if (isBindRequest(libName) && opts.interface_version === undefined) opts.interface_version = 0x34;
  const lib = new smpp.PDU(libName, opts);
  lib._filter = noFilter;
  return lib.toBuffer();
}

const isBindRequest = (libName: string): boolean => libName.startsWith('bind_') && !libName.endsWith('_resp');

/** How one mandatory parameter is written: its kind, and the value the library uses when the field is absent. */
interface ParamPlan {
  key: string;
  kind: Exclude<FieldKind, 'da' | 'us'>;
  absent: unknown;
  /** A bind's interface_version: 0x34 when absent or undefined (the library's default is 0x50). */
  bindVersion: boolean;
}

interface EncodePlan {
  command_id: number;
  params: ParamPlan[];
  paramKeys: ReadonlySet<string>;
  /** A parameter only the library writes (destination and unsuccess_sme arrays): the whole PDU goes to it. */
  libraryOnly: boolean;
}

interface TlvPlan {
  id: number;
  kind: TlvKind;
  multiple: boolean;
}

const INT_MAX = { i1: 0xff, i2: 0xffff, i4: 0xffffffff } as const;
const INT_BYTES = { i1: 1, i2: 2, i4: 4 } as const;

const ENCODE_PLANS = new Map<string, EncodePlan>();
const TLV_PLANS = new Map<string, TlvPlan>();
for (const def of Object.values(smpp.commands)) {
  const params: ParamPlan[] = [];
  let libraryOnly = false;
  for (const [key, p] of Object.entries(def.params ?? {})) {
    const kind = PARAM_KINDS.get(p.type);
    if (kind === undefined || kind === 'da' || kind === 'us') libraryOnly = true;
    else {
      const bindVersion = key === 'interface_version' && isBindRequest(def.command);
      params.push({ key, kind, absent: bindVersion ? 0x34 : 'default' in p ? p.default : p.type.default, bindVersion });
    }
  }
  ENCODE_PLANS.set(LIB_TO_SMPP[def.command] ?? def.command, { command_id: def.id, params, paramKeys: new Set(params.map((p) => p.key)), libraryOnly });
}
for (const [name, tlv] of Object.entries(smpp.tlvs)) {
  const kind = TLV_KINDS.get(tlv.type);
  if (kind) TLV_PLANS.set(name, { id: tlv.id, kind, multiple: !!tlv.multiple });
}

const isUint32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
const isEnumerableOwn = (o: object, key: string): boolean => Object.prototype.propertyIsEnumerable.call(o, key);

/**
 * Bytes a value of `kind` takes (a TLV's value without its 4-byte head), or
 * -1 if it is not of a usual kind (the library then decides). Absent
 * integers are 0, as the library writes them.
 */
function sizeOf(kind: ParamPlan['kind'] | TlvKind, v: unknown, tlv: boolean): number {
  switch (kind) {
    case 'i1':
    case 'i2':
    case 'i4':
      if (v === undefined || v === null) return INT_BYTES[kind];
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= INT_MAX[kind] ? INT_BYTES[kind] : -1;
    case 'c':
      return typeof v === 'string' || Buffer.isBuffer(v) ? v.length + 1 : -1;
    case 's':
      return typeof v === 'string' || Buffer.isBuffer(v) ? v.length : -1;
    case 'b':
      if (typeof v !== 'string' && !Buffer.isBuffer(v)) return -1;
      // A mandatory octet string has a one-byte length in front; a TLV's length is its head's.
      return tlv ? v.length : v.length > 0xff ? -1 : v.length + 1;
  }
}

function writeValue(kind: ParamPlan['kind'] | TlvKind, v: unknown, buf: Buffer, off: number, tlv: boolean): number {
  switch (kind) {
    case 'i1':
      buf[off] = (v as number | undefined) ?? 0;
      return off + 1;
    case 'i2':
      buf.writeUInt16BE((v as number | undefined) ?? 0, off);
      return off + 2;
    case 'i4':
      buf.writeUInt32BE((v as number | undefined) ?? 0, off);
      return off + 4;
    default: {
      const s = v as string | Buffer;
      if (kind === 'b' && !tlv) buf[off++] = s.length;
      // The library writes strings as 'ascii', which Node encodes as Latin-1: one byte per UTF-16 unit.
      if (typeof s === 'string') buf.write(s, off, s.length, 'latin1');
      else s.copy(buf, off);
      off += s.length;
      if (kind === 'c') buf[off++] = 0;
      return off;
    }
  }
}

/** The PDU of `plan` with these fields, or undefined where a value is not of a usual kind. */
function encodeFields(plan: EncodePlan, sequence_number: number, command_status: number, fields: Record<string, unknown> | undefined): Buffer | undefined {
  if (!isUint32(sequence_number) || !isUint32(command_status) || (plan.libraryOnly && command_status === 0)) return undefined;
  let len = HEADER;
  const values: unknown[] = [];
  let tlvs: [TlvPlan, unknown[]][] | undefined;
  // An error status has no body: the library writes the header alone.
  if (command_status === 0) {
    for (const p of plan.params) {
      let v = fields && isEnumerableOwn(fields, p.key) ? fields[p.key] : p.absent;
      if (v === undefined && p.bindVersion) v = 0x34;
      const n = sizeOf(p.kind, v, false);
      if (n < 0) return undefined;
      values.push(v);
      len += n;
    }
    if (fields) {
      for (const key of Object.keys(fields)) {
        if (plan.paramKeys.has(key)) continue;
        const t = TLV_PLANS.get(key);
        // Neither a parameter nor a TLV: ignored, as the library ignores it.
        if (!t) continue;
        const v = fields[key];
        const list = t.multiple ? v : [v];
        if (!Array.isArray(list)) return undefined;
        for (const x of list) {
          const n = sizeOf(t.kind, x, true);
          if (n < 0 || n > 0xffff) return undefined;
          len += 4 + n;
        }
        (tlvs ??= []).push([t, list]);
      }
    }
  }
  const buf = Buffer.allocUnsafe(len);
  buf.writeUInt32BE(len, 0);
  buf.writeUInt32BE(plan.command_id, 4);
  buf.writeUInt32BE(command_status, 8);
  buf.writeUInt32BE(sequence_number, 12);
  let off = HEADER;
  for (let i = 0; i < values.length; i++) off = writeValue(plan.params[i]!.kind, values[i], buf, off, false);
  if (tlvs) {
    for (const [t, list] of tlvs) {
      for (const x of list) {
        const value = off + 4;
        buf.writeUInt16BE(t.id, off);
        off = writeValue(t.kind, x, buf, value, true);
        buf.writeUInt16BE(off - value, value - 2);
      }
    }
  }
  return buf;
}

function appendUnknownTlvs(body: Buffer, command_status: number, unknownTlvs?: readonly UnknownTlv[]): Buffer {
  if (!unknownTlvs || unknownTlvs.length === 0 || command_status !== 0) return body;
  let extra = 0;
  for (const t of unknownTlvs) extra += 4 + t.value.length;
  const out = Buffer.allocUnsafe(body.length + extra);
  body.copy(out, 0);
  let off = body.length;
  for (const t of unknownTlvs) {
    out.writeUInt16BE(t.tag, off);
    out.writeUInt16BE(t.value.length, off + 2);
    out.set(t.value, off + 4);
    off += 4 + t.value.length;
  }
  out.writeUInt32BE(out.length, 0);
  return out;
}

/**
 * Hot path: a response whose body is at most a message_id C-string
 * (submit_sm_resp, data_sm_resp, deliver_sm_resp, …) or empty. An error
 * status carries no body, per SMPP 3.4 §3.3.
 */
export function encodeSimpleResponse(command_id: number, sequence_number: number, command_status: number, message_id?: string): Buffer {
  const idLen = command_status === 0 && message_id !== undefined ? Buffer.byteLength(message_id, 'latin1') + 1 : 0;
  const buf = Buffer.allocUnsafe(HEADER + idLen);
  buf.writeUInt32BE(HEADER + idLen, 0);
  buf.writeUInt32BE(command_id >>> 0, 4);
  buf.writeUInt32BE(command_status, 8);
  buf.writeUInt32BE(sequence_number, 12);
  if (idLen > 0) {
    buf.write(message_id!, HEADER, 'latin1');
    buf[HEADER + idLen - 1] = 0;
  }
  return buf;
}

/** Responses whose body is nothing or a single message_id. */
export const SIMPLE_RESPONSE_IDS: ReadonlySet<number> = new Set(
  ['generic_nack', 'submit_sm_resp', 'data_sm_resp', 'deliver_sm_resp', 'cancel_sm_resp', 'replace_sm_resp', 'enquire_link_resp', 'unbind_resp', 'bind_transceiver_resp', 'bind_transmitter_resp', 'bind_receiver_resp'].map(commandId),
);

export function genericNack(sequence_number: number, status: number): Buffer {
  return encodeSimpleResponse(0x80000000, sequence_number, status);
}

export const PDU_HEADER_BYTES = HEADER;

import * as smpp from 'smpp';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import type { Receipt } from './dlr';
import { derive, type FieldKind, type TlvKind, type ViewTables } from './view';

/**
 * The PDU a policy sees: SMPP 3.4 field names with raw values, byte fields as
 * Uint8Array (so forwarding is byte-exact), plus what Sluice derives from
 * them: `text`, `udh`, `destinations`, `isDlr`, `receipt`. A plain copyable
 * object: it crosses process and isolate boundaries as a structured clone.
 */
export interface PolicyPdu {
  command: string;
  sequence_number: number;
  short_message?: Uint8Array;
  message_payload?: Uint8Array;
  /** Text decoded per data_coding (GSM 03.38, IA5, Latin-1, UCS-2); absent for binary codings. */
  text?: string;
  /** The user data header (UDHL byte included) when esm_class has UDHI set. */
  udh?: Uint8Array;
  /** submit_sm_multi: the destination addresses and distribution lists. */
  destinations?: Destination[];
  isDlr?: boolean;
  receipt?: Receipt;
  /** TLVs Sluice has no name for, byte-exact; pass them back in a send to forward them. */
  unknown_tlvs?: UnknownTlv[];
  [field: string]: unknown;
}

export type Destination =
  | { dest_addr_ton: number; dest_addr_npi: number; destination_addr: string }
  | { dl_name: string };

function bytes(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) {
    // A plain Uint8Array copy: never a Buffer view into the socket's read buffer.
    const out = new Uint8Array(v.length);
    out.set(v);
    return out;
  }
  return undefined;
}

/** Build the policy's view of a decoded PDU. */
export function toPolicyPdu(wire: WirePdu): PolicyPdu {
  const pdu: PolicyPdu = { command: wire.command, sequence_number: wire.sequence_number };
  for (const [key, value] of Object.entries(wire.fields)) {
    if (key === 'dest_address') pdu.destinations = value as Destination[];
    else if (value instanceof Uint8Array) pdu[key] = bytes(value);
    else if (Array.isArray(value)) pdu[key] = value.map((v) => (v instanceof Uint8Array ? bytes(v) : v));
    else pdu[key] = value;
  }
  if (wire.unknownTlvs) pdu.unknown_tlvs = wire.unknownTlvs.map((t) => ({ tag: t.tag, value: bytes(t.value)! }));

  return derive(pdu);
}

/** Names of the mandatory parameters of a command, in wire order. */
export function mandatoryFields(command: string): string[] {
  const lib = command === 'submit_sm_multi' ? 'submit_multi' : command;
  return Object.keys(smpp.commands[lib]?.params ?? {});
}

let tables: ViewTables | undefined;

/** npm `smpp`'s field layouts as plain data, for building views from raw frames (src/pdu/view.ts). */
export function viewTables(): ViewTables {
  if (tables) return tables;
  const kindOf = new Map<smpp.FieldType, FieldKind>([
    [smpp.types.cstring, 'c'],
    [smpp.types.int8, 'i1'],
    [smpp.types.int16, 'i2'],
    [smpp.types.int32, 'i4'],
    [smpp.types.buffer, 'b'],
    [smpp.types.dest_address_array, 'da'],
    [smpp.types.unsuccess_sme_array, 'us'],
  ]);
  const tlvKind = new Map<smpp.FieldType, TlvKind>([
    [smpp.types.tlv.int8, 'i1'],
    [smpp.types.tlv.int16, 'i2'],
    [smpp.types.tlv.int32, 'i4'],
    [smpp.types.tlv.cstring, 'c'],
    [smpp.types.tlv.string, 's'],
    [smpp.types.tlv.buffer, 'b'],
  ]);
  const t: ViewTables = { commands: {}, tlvs: {} };
  for (const def of Object.values(smpp.commands)) {
    const name = def.command === 'submit_multi' ? 'submit_sm_multi' : def.command === 'submit_multi_resp' ? 'submit_sm_multi_resp' : def.command;
    const params = Object.entries(def.params ?? {}).map(([key, p]): [string, FieldKind] => {
      const kind = kindOf.get(p.type);
      if (!kind) throw new Error(`no view layout for ${name}.${key}`);
      return [key, kind];
    });
    t.commands[def.id] = def.tlvMap ? [name, params, { ...def.tlvMap }] : [name, params];
  }
  for (const [id, tlv] of Object.entries(smpp.tlvsById)) {
    const kind = tlvKind.get(tlv.type);
    if (!kind) throw new Error(`no view layout for TLV ${tlv.tag}`);
    t.tlvs[Number(id)] = [tlv.tag, kind, tlv.multiple ? 1 : 0];
  }
  return (tables = t);
}

import * as smpp from 'smpp';
import type { UnknownTlv, WirePdu } from '../wire/codec';
import { isDlrEsmClass, parseReceipt, type Receipt } from './dlr';
import { decodeText } from './text';
import { splitUdh } from './udh';

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

const UDHI = 0x40;

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

  const dataCoding = typeof pdu.data_coding === 'number' ? pdu.data_coding : 0;
  const esmClass = typeof pdu.esm_class === 'number' ? pdu.esm_class : 0;
  // The payload TLV replaces short_message when present (SMPP 3.4 §5.3.2.32).
  const user = pdu.message_payload && pdu.message_payload.length > 0 ? pdu.message_payload : pdu.short_message;
  if (user) {
    let body = user;
    if (esmClass & UDHI) {
      const split = splitUdh(user);
      if (split) {
        pdu.udh = split.udh;
        body = split.body;
      }
    }
    const text = decodeText(body, dataCoding);
    if (text !== undefined) pdu.text = text;
  }

  if (wire.command === 'deliver_sm' || wire.command === 'data_sm') {
    const isDlr = isDlrEsmClass(esmClass);
    pdu.isDlr = isDlr;
    if (isDlr) {
      const body = pdu.text ?? (user ? Buffer.from(user).toString('latin1') : undefined);
      const receipt = parseReceipt(body, {
        receipted_message_id: typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : undefined,
        message_state: typeof pdu.message_state === 'number' ? pdu.message_state : undefined,
        network_error_code: pdu.network_error_code instanceof Uint8Array ? pdu.network_error_code : undefined,
      });
      if (receipt) pdu.receipt = receipt;
    }
  }
  return pdu;
}

/** Names of the mandatory parameters of a command, in wire order. */
export function mandatoryFields(command: string): string[] {
  const lib = command === 'submit_sm_multi' ? 'submit_multi' : command;
  return Object.keys(smpp.commands[lib]?.params ?? {});
}

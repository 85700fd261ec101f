import type { UnknownTlv, WirePdu } from '../wire/codec';
import type { Receipt } from './dlr';
import { derive } from './view';

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

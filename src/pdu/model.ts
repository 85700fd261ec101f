import type { WirePdu } from '../wire/codec';
import type { Destination, PolicyPdu } from './policy-pdu';
import { derive } from './view';

export type { Destination, PolicyPdu } from './policy-pdu';

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

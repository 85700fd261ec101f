import type { UnknownTlv } from '../wire/codec';
import type { Receipt } from './dlr';

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

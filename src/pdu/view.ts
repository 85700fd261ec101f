import { HEADER, latin1, u32, walkFrame, type ViewTables } from '../wire/frame-walk';
import { isDlrEsmClass, parseReceipt } from './dlr';
import type { PolicyPdu } from './policy-pdu';
import { decodeText } from './text';
import { splitUdh } from './udh';

/**
 * The policy's view of a PDU, built from its raw frame. This module runs in
 * two places: in the core (through `toPolicyPdu`) and inside every tenant's
 * isolate, where the sandbox hands a policy its PDUs as raw frames and the
 * prelude builds the views itself — one copy of bytes into the isolate
 * instead of a structured clone of an object per PDU, and the work charged
 * to the tenant whose view it is. So it must stay free of Node: no Buffer,
 * no `require` beyond its sibling pure modules (the isolate loader provides
 * `./dlr`, `./text`, `./udh`, `./gsm7`, `../errors` and `../wire/frame-walk`, nothing else).
 *
 * The field layouts come from npm `smpp`'s definitions (`viewTables()` in
 * src/wire/codec.ts), as plain data. Frames reaching a policy were checked by the
 * core's codec (src/wire/codec.ts) already; this walk still never reads past
 * the frame and answers undefined for what does not parse.
 */

const UDHI = 0x40;

/**
 * The policy's view of one whole PDU frame (command_length bytes); undefined
 * when it does not parse. `View` makes the empty object the fields go on (the
 * prelude's class, which carries `reply` and `replyQuery`); a plain object by
 * default.
 */
export function decodeView(b: Uint8Array, tables: ViewTables, View?: new () => object): PolicyPdu | undefined {
  if (b.length < HEADER) return undefined;
  const def = tables.commands[u32(b, 4)];
  if (!def) return undefined;
  const pdu: PolicyPdu = View ? (new View() as PolicyPdu) : ({} as PolicyPdu);
  pdu.command = def[0];
  pdu.sequence_number = u32(b, 12);
  return walkFrame(b, tables, pdu) === undefined ? derive(pdu) : undefined;
}

/** What Sluice derives from the fields: `text`, `udh`, and for deliver_sm / data_sm `isDlr` and `receipt`. */
export function derive(pdu: PolicyPdu): PolicyPdu {
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
  if (pdu.command === 'deliver_sm' || pdu.command === 'data_sm') {
    const isDlr = isDlrEsmClass(esmClass);
    pdu.isDlr = isDlr;
    if (isDlr) {
      const body = pdu.text ?? (user ? latin1(user, 0, user.length) : undefined);
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

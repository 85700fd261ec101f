import { STATUS } from '../wire/status';

/**
 * What the core refuses in a message PDU from an ESME before any policy sees
 * it, with the SMPP 3.4 status that says why (npm `smpp` decodes these
 * without complaint): addresses longer than their field allows, times that
 * are not SMPP times, a short_message longer than 254 octets, a UDH that
 * runs past the message.
 */

/** SMPP 3.4 §7.1.1: YYMMDDhhmmsstnnp, p one of + - R. */
const SMPP_TIME = /^\d{12}[0-9]\d{2}[+\-R]$/;
/** Longest address, in characters (21 octets with the NUL; §5.2.8). */
const MAX_ADDR = 20;

const s = (name: string): number => STATUS[name]!;

/** The status to refuse `fields` of `command` with, or undefined when they are sound. */
export function refusal(command: string, fields: Readonly<Record<string, unknown>>): number | undefined {
  if (command !== 'submit_sm' && command !== 'submit_sm_multi' && command !== 'data_sm' && command !== 'replace_sm') return undefined;
  const src = fields.source_addr;
  if (typeof src === 'string' && src.length > MAX_ADDR) return s('ESME_RINVSRCADR');
  const dst = fields.destination_addr;
  if (typeof dst === 'string' && dst.length > MAX_ADDR) return s('ESME_RINVDSTADR');
  const sched = fields.schedule_delivery_time;
  if (typeof sched === 'string' && sched !== '' && !SMPP_TIME.test(sched)) return s('ESME_RINVSCHED');
  const vp = fields.validity_period;
  if (typeof vp === 'string' && vp !== '' && !SMPP_TIME.test(vp)) return s('ESME_RINVEXPIRY');
  const sm = fields.short_message;
  if (sm instanceof Uint8Array) {
    if (sm.length > 254) return s('ESME_RINVMSGLEN');
    // UDHI set: the first octet is the header's length, and the header must fit in the message.
    const esm = typeof fields.esm_class === 'number' ? fields.esm_class : 0;
    if ((esm & 0x40) !== 0 && sm.length > 0 && sm[0]! + 1 > sm.length) return s('ESME_RINVMSGLEN');
  }
  return undefined;
}

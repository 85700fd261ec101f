import { STATUS } from '../wire/status';

/**
 * What happens to a PDU when no policy handler answers it (docs/design.md, "Operations and their defaults").
 * `ack` answers ESME_ROK (with a generated message_id where the response has
 * one); `none` means the PDU has no response at all.
 */
export type DefaultAction = { kind: 'ack' } | { kind: 'status'; status: number } | { kind: 'none' };

/** Message PDUs an ESME may send us, and their defaults. */
export const INBOUND_DEFAULTS: Readonly<Record<string, DefaultAction>> = Object.freeze({
  submit_sm: { kind: 'ack' },
  submit_sm_multi: { kind: 'status', status: STATUS.ESME_RSYSERR! },
  data_sm: { kind: 'status', status: STATUS.ESME_RSYSERR! },
  cancel_sm: { kind: 'status', status: STATUS.ESME_RCANCELFAIL! },
  query_sm: { kind: 'status', status: STATUS.ESME_RQUERYFAIL! },
  replace_sm: { kind: 'status', status: STATUS.ESME_RREPLACEFAIL! },
});

/** PDUs an upstream SMSC may send on our binds, and their defaults. */
export const OUTBOUND_DEFAULTS: Readonly<Record<string, DefaultAction>> = Object.freeze({
  deliver_sm: { kind: 'ack' },
  data_sm: { kind: 'status', status: STATUS.ESME_RSYSERR! },
  alert_notification: { kind: 'none' },
});

/** Commands a policy may send on its outbound binds (`submitVia`, …). */
export const VIA_COMMANDS: ReadonlySet<string> = new Set(['submit_sm', 'submit_sm_multi', 'data_sm', 'cancel_sm', 'query_sm', 'replace_sm']);

/** Commands a policy may send to its bound ESMEs (`deliverTo`, `dataTo`, `alertTo`). */
export const TO_COMMANDS: ReadonlySet<string> = new Set(['deliver_sm', 'data_sm', 'alert_notification']);

/** Responses that carry a message_id. */
export const RESPONSES_WITH_ID: ReadonlySet<string> = new Set(['submit_sm', 'submit_sm_multi', 'data_sm']);

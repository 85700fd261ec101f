import { statusName } from '../wire/status';
import type { WirePdu } from '../wire/codec';

/** What a send helper resolves to (sandbox/sluice.d.ts). */
export interface SendResult {
  ok: boolean;
  /** Not sent yet: held in the store for the next session of its system_id (docs/design.md, "Replicas"). */
  held?: true;
  /** Status name (`ESME_ROK`, `ESME_RSUBMITFAIL`, …). */
  command_status: string;
  message_id?: string;
  message_state?: number;
  final_date?: string;
  error_code?: number;
}

/** A peer's response as a send helper resolves it. */
export function toResult(resp: WirePdu): SendResult {
  const r: SendResult = { ok: resp.command_status === 0, command_status: statusName(resp.command_status) };
  const f = resp.fields;
  if (typeof f.message_id === 'string') r.message_id = f.message_id;
  if (typeof f.message_state === 'number') r.message_state = f.message_state;
  if (typeof f.final_date === 'string') r.final_date = f.final_date;
  if (typeof f.error_code === 'number') r.error_code = f.error_code;
  return r;
}

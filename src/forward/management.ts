import { MSG_FINAL, MSG_QUEUED } from '../cache/forward-store';
import { toWireFields } from '../pdu/fields';
import type { Clock } from '../util/clock';
import { bytesToJson, jsonToBytes } from '../util/json-bytes';
import type { WirePdu } from '../wire/codec';
import { statusName } from '../wire/status';
import type { ForwardTenant } from './host';
import type { Journal } from './journal';
import { MESSAGE_STATE_OF, msgKey, type ForwardRequest, type ForwardResult, type MsgData } from './messages';
import { receiptDate, smppTimeToMs } from './smpp-time';

/**
 * Message management: query_sm, cancel_sm and replace_sm of an ESME for a
 * message the core has, under the message's lock (journal.ts), so none
 * runs beside a receipt of the same message. A queued or final message is
 * answered from the journal; a sent one is passed to the upstream that
 * took it, under the upstream's id.
 */

/** What message management needs of the other parts of store and forward. */
export interface ManageDeps {
  readonly clock: Clock;
  readonly journal: Pick<Journal, 'store' | 'write' | 'serialised' | 'finalRow'>;
}

export class Management {
  constructor(private readonly deps: ManageDeps) {}

  /** query_sm, cancel_sm and replace_sm for a message the core has: answered from the journal, or passed upstream for a sent one. */
  async manage(tenant: string, rt: ForwardTenant, req: ForwardRequest): Promise<ForwardResult> {
    const { clock, journal } = this.deps;
    const cmd = req.command;
    const fail = cmd === 'query_sm' ? 'ESME_RQUERYFAIL' : cmd === 'cancel_sm' ? 'ESME_RCANCELFAIL' : 'ESME_RREPLACEFAIL';
    const id = String(req.fields.message_id ?? '');
    const key = msgKey(tenant, id);
    return journal.serialised(key, async () => {
      const [row] = id === '' ? [undefined] : await journal.store.get([key]);
      if (!row) return { ok: false, command_status: fail };
      const data = JSON.parse(row.data) as MsgData;
      if (data.sys !== req.session.systemId) return { ok: false, command_status: fail };
      if (cmd === 'query_sm') {
        const state = row.state === MSG_FINAL ? (MESSAGE_STATE_OF[data.stat ?? 'UNKNOWN'] ?? 7) : data.stat === 'ACCEPTD' ? 6 : 1;
        const out: ForwardResult = { ok: true, command_status: 'ESME_ROK', message_id: id, message_state: state, final_date: row.state === MSG_FINAL && data.done ? `${receiptDate(data.done)}00000+` : '', error_code: 0 };
        return out;
      }
      if (row.state === MSG_FINAL) return { ok: false, command_status: fail };
      if (row.state === MSG_QUEUED) {
        if (cmd === 'cancel_sm') {
          data.stat = 'DELETED';
          data.done = clock.wall();
          await journal.write([{ t: 'put', row: journal.finalRow(tenant, data) }]);
          return { ok: true, command_status: 'ESME_ROK' };
        }
        const f = jsonToBytes(data.f) as Record<string, unknown>;
        for (const k of ['short_message', 'registered_delivery', 'validity_period', 'schedule_delivery_time', 'sm_default_msg_id'] as const) {
          if (req.fields[k] !== undefined && req.fields[k] !== '') f[k] = req.fields[k];
        }
        if (typeof req.fields.validity_period === 'string' && req.fields.validity_period !== '') {
          try {
            data.exp = smppTimeToMs(req.fields.validity_period, clock.wall()) ?? data.exp;
          } catch {
            return { ok: false, command_status: 'ESME_RINVEXPIRY' };
          }
        }
        data.rd = Number(f.registered_delivery ?? data.rd);
        data.f = bytesToJson(f);
        await journal.write([{ t: 'put', row: { ...row, expires: data.exp, data: JSON.stringify(data) } }]);
        return { ok: true, command_status: 'ESME_ROK' };
      }
      // Sent: the upstream has it under its own id, on the bind that took it.
      const bind = data.bind === undefined ? undefined : rt.binds.get(data.bind);
      if (!bind || bind.state !== 'bound') return { ok: false, command_status: fail };
      const up: Record<string, unknown> = { ...req.fields, message_id: data.uid ?? '' };
      let resp: WirePdu;
      try {
        const wire = toWireFields(cmd, up);
        resp = await bind.request(cmd, wire.fields);
      } catch {
        return { ok: false, command_status: fail };
      }
      if (resp.command_status !== 0) return { ok: false, command_status: statusName(resp.command_status) };
      if (cmd === 'cancel_sm') {
        data.stat = 'DELETED';
        data.done = clock.wall();
        await journal.write([{ t: 'put', row: journal.finalRow(tenant, data) }]);
      }
      return { ok: true, command_status: 'ESME_ROK' };
    });
  }
}

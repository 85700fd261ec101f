/**
 * The baseline of the bench's gateway case: a bare relay on npm `smpp`
 * alone. It accepts ESME binds, sends each submit_sm on through ONE client
 * session bound to an upstream SMSC, answers the ESME with the upstream's
 * message_id when the upstream answers, and passes each delivery receipt
 * back to the ESME session that sent the message (upstream id → session,
 * in memory: no durability, no routing, no policy).
 */
import * as smpp from 'smpp';
import { statusLabel } from '../wire/status';

export type Pdu = smpp.PDU & { response(o?: object): smpp.PDU };

export interface Relay {
  port: number;
  stats: { submits: number; receipts: number; unmatched: number };
  close(): void;
}

/** One transceiver session to the upstream at `port`, bound, answering its enquire_links. */
export async function bindUpstream(port: number, host = '127.0.0.1'): Promise<smpp.Session> {
  const up = smpp.connect({ host, port });
  up.on('error', () => {});
  // As any relay that answers in its own time must: without it Nagle holds small PDUs ~40 ms behind a delayed ACK.
  up.socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    up.on('connect', () =>
      up.bind_transceiver({ system_id: 'relay', password: 'x' }, (r: Pdu) => (r.command_status === 0 ? resolve() : reject(new Error(`relay: upstream bind refused: ${statusLabel(r.command_status)}`)))),
    );
    up.on('close', () => reject(new Error('relay: upstream connection closed')));
  });
  up.on('enquire_link', (pdu: Pdu) => up.send(pdu.response()));
  return up;
}

/** Accept any ESME's bind on 127.0.0.1:0; each submit_sm goes to `onSubmit`. */
export async function listenEsmes(onSubmit: (session: smpp.Session, pdu: Pdu) => void): Promise<{ server: import('node:net').Server; port: number }> {
  const server = smpp.createServer({}, (session: smpp.Session) => {
    session.on('error', () => {});
    session.socket.setNoDelay(true);
    session.on('bind_transceiver', (pdu: Pdu) => session.send(pdu.response()));
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()));
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: Pdu) => onSubmit(session, pdu));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return { server, port };
}

/** The submit_sm a relay sends upstream for an ESME's. */
export function upstreamSubmit(pdu: Pdu): smpp.PDU {
  return new smpp.PDU('submit_sm', {
    source_addr: pdu.source_addr,
    destination_addr: pdu.destination_addr,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    registered_delivery: pdu.registered_delivery,
    short_message: pdu.short_message,
  });
}

/** The upstream's message id a receipt names: its receipted_message_id, or the `id:` of its text. */
export function receiptIdOf(pdu: Pdu): string {
  return String(pdu.receipted_message_id ?? '') || /id:(\S+)/.exec(receiptText(pdu.short_message))?.[1] || '';
}

/** Bind to the upstream at `upstreamPort`, then listen on 127.0.0.1:0. */
export async function startRelay(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<Relay> {
  const stats = { submits: 0, receipts: 0, unmatched: 0 };
  const owner = new Map<string, smpp.Session>();
  const up = await bindUpstream(upstreamPort, upstreamHost);
  up.on('deliver_sm', (pdu: Pdu) => {
    up.send(pdu.response());
    const id = receiptIdOf(pdu);
    const esme = owner.get(id);
    if (!esme) {
      stats.unmatched++;
      return;
    }
    owner.delete(id);
    stats.receipts++;
    esme.send(
      new smpp.PDU('deliver_sm', {
        source_addr: pdu.source_addr,
        destination_addr: pdu.destination_addr,
        esm_class: pdu.esm_class,
        data_coding: pdu.data_coding,
        short_message: pdu.short_message,
        receipted_message_id: pdu.receipted_message_id,
        message_state: pdu.message_state,
      }),
    );
  });
  const { server, port } = await listenEsmes((session, pdu) => {
    stats.submits++;
    const sent = up.send(upstreamSubmit(pdu), (r: smpp.PDU) => {
      if (r.command_status === 0) {
        const id = String(r.message_id ?? '');
        if (Number(pdu.registered_delivery) & 0x03) owner.set(id, session);
        session.send(pdu.response({ message_id: id }));
      } else session.send(pdu.response({ command_status: r.command_status }));
    });
    if (!sent) session.send(pdu.response({ command_status: smpp.errors.ESME_RSYSERR ?? 8 }));
  });
  return {
    port,
    stats,
    close: () => {
      server.close();
      up.close();
    },
  };
}

function receiptText(m: unknown): string {
  if (Buffer.isBuffer(m)) return m.toString('latin1');
  if (typeof m === 'string') return m;
  const msg = (m as { message?: unknown } | undefined)?.message;
  return Buffer.isBuffer(msg) ? msg.toString('latin1') : String(msg ?? '');
}

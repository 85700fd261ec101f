import * as net from 'node:net';
import * as tls from 'node:tls';
import { silentLogger, type Logger } from '../log/logger';
import { SmppSession, type InboundRequest } from '../sessions/smpp-session';
import { realClock, type Clock } from '../util/clock';
import type { WirePdu } from '../wire/codec';
import { ESME_ROK } from '../wire/status';

export interface EsmeClientOptions {
  host?: string;
  port: number;
  tls?: tls.ConnectionOptions;
  window?: number;
  responseTimeoutMs?: number;
  enquireLinkMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** How to answer deliver_sm / data_sm from the SMSC; default ESME_ROK. */
  onRequest?: (pdu: InboundRequest, session: SmppSession) => void;
}

/**
 * A small ESME built on Sluice's own session: used by `sluice bench`, the
 * simulator's tests and the test suite to talk to a listener over real TCP.
 */
export class EsmeClient {
  private constructor(readonly session: SmppSession) {}

  static connect(opts: EsmeClientOptions): Promise<EsmeClient> {
    const host = opts.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = opts.tls ? tls.connect({ host, port: opts.port, ...opts.tls }) : net.connect({ host, port: opts.port });
      socket.once('error', reject);
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', reject);
        const session = new SmppSession(socket, {
          role: 'client',
          clock: opts.clock ?? realClock,
          logger: opts.logger ?? silentLogger,
          window: opts.window ?? 64,
          peerWindow: 10_000,
          responseTimeoutMs: opts.responseTimeoutMs ?? 30_000,
          enquireLinkMs: opts.enquireLinkMs ?? 0x7fffffff,
          inactivityMs: 0x7fffffff,
          maxPduBytes: 65_536,
        });
        const onRequest =
          opts.onRequest ??
          ((pdu: InboundRequest, s: SmppSession) => s.respond(pdu, ESME_ROK, { message_id: '' }));
        session.on('request', (pdu) => onRequest(pdu, session));
        resolve(new EsmeClient(session));
      });
    });
  }

  /** bind_transceiver; resolves with the response (check `command_status`). */
  async bind(system_id: string, password: string, command = 'bind_transceiver'): Promise<WirePdu> {
    const resp = await this.session.request(command, { system_id, password, system_type: '', interface_version: 0x34 });
    if (resp.command_status === 0) this.session.markBound();
    return resp;
  }

  submit(fields: Record<string, unknown>): Promise<WirePdu> {
    return this.session.request('submit_sm', fields);
  }

  request(command: string, fields?: Record<string, unknown>): Promise<WirePdu> {
    return this.session.request(command, fields);
  }

  async unbind(): Promise<void> {
    await this.session.unbindAndClose('client unbind');
  }

  close(): void {
    this.session.close('client close');
  }
}

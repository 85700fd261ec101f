import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema';
import type { Admission } from '../sessions/admission';
import { EsmeConnection, type EsmeHost } from '../sessions/esme-connection';
import type { Clock } from '../util/clock';

/**
 * The ESME side's front door: the TCP listener and the TLS one, each
 * connection admitted (or closed over a connection cap) and made an
 * EsmeConnection of the gateway, and the set of connections open now.
 */

/** What the listeners need of the rest of the gateway. */
export interface ListenerDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly server: ServerConfig;
  readonly admission: Admission;
  /** What each connection asks of the gateway. */
  readonly host: EsmeHost;
}

export class Listeners {
  /** Every ESME connection open now, bound or not. */
  readonly connections = new Set<EsmeConnection>();
  private readonly servers: net.Server[] = [];
  private lastRefusalLog = 0;

  constructor(private readonly deps: ListenerDeps) {}

  /** Every listener opened is listening (none opened yet: false). */
  get listening(): boolean {
    return this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  /** Open the listener (and the TLS one, if configured). Resolves with the bound ports. */
  async open(): Promise<{ port: number; tlsPort?: number }> {
    const server = this.deps.server;
    const port = await this.listen(net.createServer(), server.bind_address, server.port);
    const result: { port: number; tlsPort?: number } = { port };
    const t = server.tls;
    if (t) {
      const secure = tls.createServer({
        cert: readFileSync(t.cert_path),
        key: readFileSync(t.key_path),
        ca: t.ca_path ? readFileSync(t.ca_path) : undefined,
        requestCert: t.request_cert,
        rejectUnauthorized: t.request_cert,
      });
      result.tlsPort = await this.listen(secure, t.bind_address ?? server.bind_address, t.port, 'secureConnection');
    }
    return result;
  }

  /** Stop listening: resolves, per listener, once its connections have ended too. */
  close(): Promise<void>[] {
    const closed = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.servers.length = 0;
    return closed;
  }

  private listen(srv: net.Server, host: string, port: number, event: 'connection' | 'secureConnection' = 'connection'): Promise<number> {
    const log = this.deps.log;
    srv.on(event, (socket: net.Socket) => this.accept(socket));
    srv.on('error', (err) => log.error({ err: err.message }, 'listener error'));
    if (srv instanceof tls.Server) {
      srv.on('tlsClientError', (err, socket) => {
        const ip = socket.remoteAddress ?? '?';
        this.deps.admission.logs.for(log, ip).info({ err: err.message, client: ip }, 'TLS handshake failed');
      });
    }
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        const addr = srv.address() as net.AddressInfo;
        log.info({ address: addr.address, port: addr.port, tls: srv instanceof tls.Server }, 'listening');
        resolve(addr.port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const { admission, log } = this.deps;
    const ip = socket.remoteAddress ?? '?';
    if (!admission.connect(ip)) {
      // Over a cap: closed before a session exists; counted, logged at most once a minute.
      const now = this.deps.clock.now();
      if (now - this.lastRefusalLog >= 60_000) {
        this.lastRefusalLog = now;
        log.warn({ client: ip, connections: admission.connections, ...this.deps.server.admission }, 'connection refused: over a connection cap');
      }
      socket.destroy();
      return;
    }
    const conn = new EsmeConnection(socket, this.deps.host, log);
    this.connections.add(conn);
    conn.session.once('close', () => {
      this.connections.delete(conn);
      admission.closed(ip);
    });
  }
}

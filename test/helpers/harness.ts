import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { CacheStore, type HoldStore, type LeaseStore } from '../../src/cache';
import type { ForwardStore } from '../../src/cache/forward-store';
import { parseConfig } from '../../src/config/load';
import type { SluiceConfig } from '../../src/config/schema';
import { accept, InProcessPolicyHost, type InProcessHandlers } from '../../src/dispatch/in-process';
import type { PolicyHost } from '../../src/dispatch/policy-host';
import { Gateway } from '../../src/gateway';
import { recordingLogger, silentLogger, type Logger } from '../../src/log/logger';
import { EsmeClient } from '../../src/tools/esme-client';
import type { Clock } from '../../src/util/clock';

/** A config for tests: port 0 on loopback, the given overrides merged in, validated like a real file. */
export function testConfig(overrides: { server?: Record<string, unknown>; tenants?: unknown[]; [k: string]: unknown } = {}): SluiceConfig {
  const { server, tenants, ...rest } = overrides;
  const doc = {
    server: { bind_address: '127.0.0.1', port: 0, ...server },
    cache: { url: 'memory://' },
    log: { level: 'silent' },
    tenants: tenants ?? [{ id: 'acme', system_ids: ['acme-app', 'acme-2'] }, { id: 'globex', system_ids: ['globex-app'] }],
    ...rest,
  };
  return parseConfig(stringify(doc), { file: 'test.yaml', env: {} });
}

/** Handlers that accept every bind; extend per test. */
export function acceptAll(extra: InProcessHandlers = {}): InProcessHandlers {
  return { bind: () => accept(), ...extra };
}

export interface Harness {
  gateway: Gateway;
  port: number;
  tlsPort?: number;
  logger: Logger;
  logs: () => Record<string, unknown>[];
  /** Connect and bind_transceiver as `systemId`. */
  esme(systemId?: string, opts?: { window?: number; responseTimeoutMs?: number }): Promise<EsmeClient>;
  close(): Promise<void>;
}

export async function startGateway(opts: {
  config?: SluiceConfig;
  handlers?: Record<string, InProcessHandlers>;
  policy?: PolicyHost;
  clock?: Clock;
  record?: boolean;
  reconnectBaseMs?: number;
  leases?: LeaseStore;
  replica?: string;
  holds?: HoldStore;
  holdPollMs?: number;
  forward?: ForwardStore;
} = {}): Promise<Harness> {
  const config = opts.config ?? testConfig();
  const rec = opts.record ? recordingLogger() : undefined;
  const logger = rec?.logger ?? silentLogger;
  const policy = opts.policy ?? new InProcessPolicyHost(opts.handlers ?? { acme: acceptAll(), globex: acceptAll() });
  const gateway = new Gateway({ config, logger, policy, clock: opts.clock, reconnectBaseMs: opts.reconnectBaseMs, leases: opts.leases, replica: opts.replica, holds: opts.holds, holdPollMs: opts.holdPollMs, forward: opts.forward });
  const { port, tlsPort } = await gateway.start();
  const clients: EsmeClient[] = [];
  const h: Harness = {
    gateway,
    port,
    logger,
    logs: () => rec?.lines() ?? [],
    async esme(systemId = 'acme-app', o = {}) {
      const c = await EsmeClient.connect({ port, window: o.window, responseTimeoutMs: o.responseTimeoutMs });
      clients.push(c);
      const r = await c.bind(systemId, 'pw');
      if (r.command_status !== 0) throw new Error(`bind as ${systemId} failed: ${r.command_status}`);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await gateway.stop();
    },
  };
  if (tlsPort !== undefined) h.tlsPort = tlsPort;
  return h;
}

/**
 * A raw TCP peer for sending exact bytes and reading back whole PDUs, for
 * the malformed-input regression tests.
 */
export class RawPeer {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Connect to 127.0.0.1:`port`, from `localAddress` (another loopback address: another source) if given. */
  static connect(port: number, localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next whole PDU as { id, status, seq, body }, or undefined if the connection closed first. */
  async read(timeoutMs = 2000): Promise<{ id: number; status: number; seq: number; body: Buffer } | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 16) {
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length >= len) {
          const pdu = this.buf.subarray(0, len);
          this.buf = this.buf.subarray(len);
          return { id: pdu.readUInt32BE(4), status: pdu.readUInt32BE(8), seq: pdu.readUInt32BE(12), body: Buffer.from(pdu.subarray(16)) };
        }
      }
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a PDU');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Resolves when the peer has closed the connection. */
  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Build raw PDU bytes: a header with the given fields and an optional body. */
export function rawPdu(commandId: number, seq: number, body: Buffer = Buffer.alloc(0), opts: { length?: number; status?: number } = {}): Buffer {
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt32BE(opts.length ?? 16 + body.length, 0);
  b.writeUInt32BE(commandId >>> 0, 4);
  b.writeUInt32BE(opts.status ?? 0, 8);
  b.writeUInt32BE(seq, 12);
  body.copy(b, 16);
  return b;
}

/** C-string bytes. */
export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]);
}

/** The body of a bind_transceiver. */
export function bindBody(systemId: string, password = 'pw'): Buffer {
  return Buffer.concat([cstr(systemId), cstr(password), cstr(''), Buffer.from([0x34, 0, 0]), cstr('')]);
}

/** An ESME connected to a running gateway and bound as `systemId` (password 'pw'); the bind must succeed. */
export async function boundEsme(s: { port: number }, systemId: string): Promise<EsmeClient> {
  const c = await EsmeClient.connect({ port: s.port });
  const r = await c.bind(systemId, 'pw');
  assert.equal(r.command_status, 0, `bind ${systemId}`);
  return c;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every `pollMs` until it holds; throws after `ms`, saying `what` if given. */
export async function until(cond: () => boolean, ms = 5000, what?: string, pollMs = 5): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(what === undefined ? 'condition not met in time' : `${what} (after ${ms} ms)`);
    await sleep(pollMs);
  }
}

/**
 * Call `fn` with each whole SMPP frame arriving on `socket` (its command_id,
 * sequence number and bytes), as a hand-written peer reads them; a
 * command_length under 16 destroys the socket.
 */
export function onFrames(socket: net.Socket, fn: (id: number, seq: number, frame: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 16) {
      const len = buf.readUInt32BE(0);
      if (len < 16) return void socket.destroy();
      if (buf.length < len) break;
      const frame = buf.subarray(0, len);
      buf = buf.subarray(len);
      fn(frame.readUInt32BE(4), frame.readUInt32BE(12), frame);
    }
  });
}

/** A TCP port nothing listens on right now (listen on 0, note it, close). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A temp directory holding `policies` (name → source, written as name.ts) and
 * a config over it for sandboxed runs: loopback port 0, memory cache, one
 * sandbox process; `doc` adds or overrides top-level sections.
 */
export function sandboxedSetup(policies: Record<string, string>, doc: { tenants: unknown[]; [section: string]: unknown }): { dir: string; config: SluiceConfig } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-sbx-'));
  for (const [name, src] of Object.entries(policies)) writeFileSync(path.join(dir, `${name}.ts`), src);
  const config = parseConfig(
    stringify({ server: { bind_address: '127.0.0.1', port: 0 }, cache: { url: 'memory://' }, sandbox: { processes: 1 }, ...doc }),
    { file: 't.yaml', env: {}, cwd: dir },
  );
  return { dir, config };
}

/** Two views of one store, as two replicas sharing it see it, and how to close both. */
export interface ReplicaPair<T> {
  a: T;
  b: T;
  close(): Promise<void>;
}

/** Two CacheStores on one URL (two replicas sharing the store), seen through `view` (`(s) => s.leases`, …). */
export async function twoReplicas<T>(url: string, view: (s: CacheStore) => T): Promise<ReplicaPair<T>> {
  const [a, b] = await Promise.all([CacheStore.open(url), CacheStore.open(url)]);
  return { a: view(a), b: view(b), close: async () => void (await Promise.all([a.close(), b.close()])) };
}

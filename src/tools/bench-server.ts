/**
 * Child-process entry for `sluice bench --compare`: runs one server under
 * test on 127.0.0.1:0 so the load generator and the server each get a core.
 *   raw       — a bare npm `smpp` echo server (the baseline)
 *   raw-hop   — the same echo in a child process, behind a pass-through relay in this one
 *   inproc    — the Sluice gateway with a plain in-process echo handler
 *   sandbox   — the Sluice gateway with the same echo logic as a tenant policy in the sandbox
 *   sandbox-await — the same, awaiting one cache read (a host call) per submit_sm
 *   noisy     — two sandboxed tenants: `quiet` (echo) and `noisy` (spins on every submit)
 *   sim       — `sluice sim`'s upstream SMSC, acking every submit_sm
 *   forward:P — the Sluice gateway with a sandboxed policy forwarding every submit_sm through an outbound bind to the sim at port P
 *   tenants:N — N configured tenants, each with its own policy file, no traffic
 *   sim:D     — `sluice sim` as its CLI runs it (window 64), each receipt D ms after its submit_sm_resp
 *   relay:P   — a bare npm `smpp` relay (./relay.ts) forwarding through one session to the sim at port P
 *   floor:{json} — that relay plus one process hop per submit and each state of a message committed
 *               (./floor-relay.ts), to the sim at json.port, its journal in json.dir
 *   gateway:{json} — the shipped store-and-forward gateway (policies/gateway.ts, config as
 *               config/example-gateway.yaml) with its two binds to the sims at json.ports, its
 *               journal at sqlite://json.dir/gw.sqlite, json.processes sandbox processes
 * Reports { port, startMs } over IPC and answers { cmd: 'rss' | 'stats' | 'journal' | 'reload' | 'exit' }
 * ('journal': the gateway's journal commits and ops, the relay's or sim's counters).
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import * as smpp from 'smpp';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load';
import { accept, InProcessPolicyHost, reply } from '../dispatch/in-process';
import type { PolicyHost } from '../dispatch/policy-host';
import { Gateway } from '../gateway';
import { createLogger, silentLogger } from '../log/logger';
import { startSluice, type Sluice } from '../runtime';
import { startFloorRelay, type FloorRelay } from './floor-relay';
import { startRelay, type Relay } from './relay';
import { SmscSimulator } from './sim';

let counter = 0;

type Pdu = smpp.PDU & { response(o?: object): smpp.PDU };

/** The bare echo on 127.0.0.1:0, or on a Unix socket at `socketPath`. */
function rawEcho(socketPath?: string): Promise<number> {
  const server = smpp.createServer({}, (session: smpp.Session) => {
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: Pdu) => session.send(pdu.response()));
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()));
    session.on('submit_sm', (pdu: Pdu) => session.send(pdu.response({ message_id: String(++counter) })));
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
  });
  if (socketPath) return new Promise((resolve) => server.listen(socketPath, () => resolve(0)));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

/**
 * The bare echo behind one process hop: this process takes the TCP
 * connection and passes its bytes, unread, over a Unix socket to a child
 * process running the echo, and the answers back. What any design that
 * keeps policy code out of the process holding the sockets pays before it
 * does any work of its own: two more wake-ups per round trip.
 */
async function rawBehindHop(): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-hop-'));
  const socketPath = path.join(dir, 'echo.sock');
  const child = fork(__filename, ['raw-unix', socketPath], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  process.on('exit', () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  // The bench stops its servers with SIGTERM: exit through the handler above.
  process.once('SIGTERM', () => process.exit(0));
  await once(child, 'message');
  const server = net.createServer((c) => {
    c.setNoDelay(true);
    const u = net.connect(socketPath);
    c.on('data', (d) => u.write(d));
    u.on('data', (d) => c.write(d));
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
    c.on('error', () => {});
    u.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

/** The echo logic as trusted in-process handlers. */
export function echoPolicy(gateway: () => Gateway): PolicyHost {
  return new InProcessPolicyHost({
    bench: {
      bind: () => accept(),
      pdu: {
        submit_sm: (pdu, session) => {
          const id = `m${++counter}`;
          if ((Number(pdu.registered_delivery) & 1) === 1) {
            setImmediate(() => {
              gateway()
                .sendTo('bench', session.sessionId, 'deliver_sm', {
                  source_addr: String(pdu.destination_addr ?? ''),
                  destination_addr: String(pdu.source_addr ?? ''),
                  esm_class: 0x04,
                  short_message: `id:${id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:`,
                })
                .catch(() => {});
            });
          }
          return reply({ message_id: id });
        },
      },
    },
  });
}

/** The same echo logic as a tenant policy. */
export const ECHO_POLICY = `
let n = 0;
smpp.onBind((bind) => bind.accept());
smpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'm' + (++n) }));
`;

/** The echo, awaiting one cache read per submit_sm first: a host call's round trip per message, as real policies make. */
export const AWAIT_POLICY = `
let n = 0;
smpp.onBind((bind) => bind.accept());
smpp.onPdu('submit_sm', async (pdu) => {
  const seen = await cache.get('route:' + pdu.destination_addr);
  return pdu.reply({ message_id: (seen === undefined ? 'm' : 'r') + (++n) });
});
`;

/** What a gateway is for: each submit_sm forwarded through the tenant's outbound bind, answered with the upstream's message_id. */
export const FORWARD_POLICY = `
smpp.onBind((bind) => bind.accept());
smpp.onPdu('submit_sm', async (pdu) => {
  const r = await smpp.submitVia('upstream', {
    source_addr: pdu.source_addr, destination_addr: pdu.destination_addr, short_message: pdu.short_message,
    data_coding: pdu.data_coding, esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery,
  });
  return r.ok ? pdu.reply({ message_id: r.message_id }) : pdu.reply({ command_status: r.command_status });
});
`;

/** Spins for as long as its per-call limit allows on every submit: a tenant at its CPU limits. */
export const NOISY_POLICY = `
smpp.onBind((bind) => bind.accept());
smpp.onPdu('submit_sm', (pdu) => { const t = Date.now(); while (Date.now() - t < 45) {} return pdu.reply({ message_id: 'x' }); });
`;

async function inproc(): Promise<number> {
  const config = parseConfig(
    stringify({ server: { bind_address: '127.0.0.1', port: 0, window: 1024 }, log: { level: 'silent' }, tenants: [{ id: 'bench', system_ids: ['bench'] }] }),
    { file: 'bench', env: {} },
  );
  let g: Gateway | undefined;
  g = new Gateway({ config, logger: silentLogger, policy: echoPolicy(() => g!) });
  return (await g.start()).port;
}

interface BenchTenant {
  id: string;
  source: string;
  limits?: Record<string, unknown>;
  binds?: Record<string, unknown>[];
}

async function sandboxed(tenants: BenchTenant[], processes = 1, inlineEntryMs?: number): Promise<Sluice> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  // The bench stops its servers with SIGTERM: exit through 'exit', which removes the policy files.
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  if (process.listenerCount('SIGTERM') === 0) process.once('SIGTERM', () => process.exit(0));
  for (const t of tenants) writeFileSync(path.join(dir, `${t.id}.ts`), t.source);
  const config = parseConfig(
    stringify({
      server: { bind_address: '127.0.0.1', port: 0, window: 1024 },
      cache: { url: 'memory://' },
      sandbox: inlineEntryMs === undefined ? { processes } : { processes, inline_entry_ms: inlineEntryMs },
      log: { level: 'silent' },
      tenants: tenants.map((t) => ({ id: t.id, policy: `${t.id}.ts`, system_ids: [t.id], limits: t.limits ?? {}, binds: t.binds ?? [] })),
    }),
    { file: 'bench', env: {}, cwd: dir },
  );
  return startSluice({ config, logger: silentLogger, cwd: dir, watch: false });
}

/** The shipped gateway: config/example-gateway.yaml's settings, its two binds to the sims at `ports`, the durable SQLite journal in `dir`. */
async function shippedGateway(o: { ports: [number, number]; dir: string; processes: number }): Promise<Sluice> {
  const root = path.join(__dirname, '..', '..', '..');
  const bind = (name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    host: '127.0.0.1',
    port,
    system_id: 'acme',
    password: 'secret',
    window: 64,
    response_timer_ms: 4000,
    receipt_id: 'auto',
    ...extra,
  });
  const config = parseConfig(
    stringify({
      server: {
        bind_address: '127.0.0.1',
        port: 0,
        session_init_timer_ms: 5000,
        enquire_link_timer_ms: 30000,
        inactivity_timer_ms: 300000,
        response_timer_ms: 30000,
        hold_ttl_ms: 86400000,
        max_msg_per_sec: 0,
        throttle_action: 'pace',
        window: 64,
      },
      cache: { url: `sqlite://${path.join(o.dir, 'gw.sqlite')}`, lease_ttl_ms: 15000 },
      sandbox: { processes: o.processes },
      log: { level: 'warn' },
      tenants: [
        {
          id: 'acme',
          policy: path.join(root, 'policies', 'gateway.ts'),
          system_ids: ['acme-app', 'acme-batch'],
          limits: { memory_mb: 64, cpu_ms_per_s: 250, handler_timeout_ms: 50, handler_deadline_ms: 5000 },
          settings: { esmes: { 'acme-app': 'acme-pw', 'acme-batch': 'batch-pw' }, mo_routes: { '4470': 'acme-batch' }, mo_default: 'acme-app', blocked_senders: [] },
          binds: [bind('aggregator-eu', o.ports[0], { bind_type: 'transceiver', max_msg_per_sec: 0, single: false }), bind('aggregator-eu-2', o.ports[1])],
          routing: {
            default_chain: ['bind:aggregator-eu', 'bind:aggregator-eu-2', 'queue'],
            rules: [
              { prefix: '31', name: 'nl', chain: ['bind:aggregator-eu', 'bind:aggregator-eu-2', 'queue'] },
              { prefix: '0031', name: 'nl-national', chain: ['reject:ESME_RINVDSTADR'] },
            ],
          },
          queue: { retry_ms: 1000, retry_max_ms: 60000, expiry_ms: 86400000 },
          receipts: { ttl_ms: 259200000, early_ttl_ms: 600000, dedupe_ms: 600000, by: 'core' },
        },
      ],
    }),
    { file: 'bench-gateway', env: {}, cwd: o.dir },
  );
  // Warnings and errors to stderr, so the bench's own lines on stdout stay readable.
  const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: false }) });
  const sluice = await startSluice({ config, logger, cwd: o.dir, watch: false });
  for (const name of ['aggregator-eu', 'aggregator-eu-2']) {
    const b = sluice.gateway.bind('acme', name)!;
    for (let i = 0; b.state !== 'bound'; i++) {
      if (i > 500) throw new Error(`the gateway's bind ${name} did not bind (${b.state})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return sluice;
}

async function main(): Promise<void> {
  const kind = process.argv[2] ?? 'raw';
  const t0 = performance.now();
  let port: number;
  let sluice: Sluice | undefined;
  let relay: Relay | FloorRelay | undefined;
  let sim: SmscSimulator | undefined;
  if (kind === 'raw') port = await rawEcho();
  else if (kind === 'raw-hop') port = await rawBehindHop();
  else if (kind === 'raw-unix') port = await rawEcho(process.argv[3]);
  else if (kind === 'inproc') port = await inproc();
  // The echo tenant may use a whole core: this measures the sandbox's overhead, not the default CPU budget.
  else if (kind === 'sandbox') sluice = await sandboxed([{ id: 'bench', source: ECHO_POLICY, limits: { cpu_ms_per_s: 1000 } }]);
  // Every entry on the isolate's own thread (sandbox.inline_entry_ms: 0).
  else if (kind === 'sandbox-queued') sluice = await sandboxed([{ id: 'bench', source: ECHO_POLICY, limits: { cpu_ms_per_s: 1000 } }], 1, 0);
  else if (kind === 'sandbox-await') sluice = await sandboxed([{ id: 'bench', source: AWAIT_POLICY, limits: { cpu_ms_per_s: 1000 } }]);
  else if (kind === 'noisy') {
    sluice = await sandboxed(
      [
        { id: 'quiet', source: ECHO_POLICY },
        { id: 'noisy', source: NOISY_POLICY, limits: { handler_timeout_ms: 50, cpu_ms_per_s: 250 } },
      ],
      2,
    );
  } else if (kind === 'sim') {
    port = await new SmscSimulator({ window: 1024 }).listen();
  } else if (kind.startsWith('sim:')) {
    // `sluice sim`'s own window (64): it keeps to the window a gateway's bind offers, as an SMSC does, where 1024 would have receipts refused ESME_RTHROTTLED and lost.
    sim = new SmscSimulator({ dlrDelayMs: Number(kind.slice(4)) });
    port = await sim.listen();
  } else if (kind.startsWith('relay:')) {
    relay = await startRelay(Number(kind.slice(6)));
    port = relay.port;
  } else if (kind.startsWith('floor:')) {
    const o = JSON.parse(kind.slice(6)) as { port: number; dir: string };
    const floor = await startFloorRelay(o.port, path.join(o.dir, 'floor.sqlite'));
    relay = floor;
    port = floor.port;
    // Stopped by the bench with SIGTERM: the journal and the hop's child go first.
    process.once('SIGTERM', () => {
      setTimeout(() => process.exit(0), 3000).unref();
      void floor.close().finally(() => process.exit(0));
    });
  } else if (kind.startsWith('gateway:')) {
    sluice = await shippedGateway(JSON.parse(kind.slice(8)) as { ports: [number, number]; dir: string; processes: number });
    // Stopped by the bench with SIGTERM: close the journal and the sandbox processes first.
    const s = sluice;
    process.once('SIGTERM', () => {
      setTimeout(() => process.exit(0), 3000).unref();
      void s.stop().finally(() => process.exit(0));
    });
  } else if (kind.startsWith('forward:')) {
    // The sandboxed tenant forwards to a simulated upstream SMSC (the 'sim' server, in a process of its own) at this port.
    const upstream = { name: 'upstream', host: '127.0.0.1', port: Number(kind.slice(8)), system_id: 'sluice', password: 'x', bind_type: 'transceiver', window: 1024 };
    sluice = await sandboxed([{ id: 'bench', source: FORWARD_POLICY, limits: { cpu_ms_per_s: 1000 }, binds: [upstream] }]);
    const bind = sluice.gateway.bind('bench', 'upstream')!;
    for (let i = 0; bind.state !== 'bound'; i++) {
      if (i > 500) throw new Error(`the bench's outbound bind did not bind (${bind.state})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } else if (kind.startsWith('tenants:')) {
    const n = Number(kind.slice(8));
    sluice = await sandboxed(Array.from({ length: n }, (_, i) => ({ id: `t${i}`, source: `${ECHO_POLICY}\n// tenant ${i}\n` })), 2);
  } else throw new Error(`unknown bench server ${kind}`);
  if (sluice) port = sluice.port;
  const startMs = performance.now() - t0;
  process.send!({ port: port!, startMs });
  process.on('message', (m: { cmd: string; tenant?: string; source?: string }) => {
    void (async () => {
      if (m.cmd === 'rss') {
        global.gc?.();
        const sandboxRss = sluice ? (await sluice.sandbox.stats()).rss.reduce((a, b) => a + b, 0) : 0;
        process.send!({ rss: process.memoryUsage().rss, sandboxRss });
      } else if (m.cmd === 'stats') {
        process.send!({ stats: sluice ? await sluice.sandbox.stats() : undefined });
      } else if (m.cmd === 'journal') {
        // held: messages for ESMEs put in the store instead of sent (a receipt there waits for a poll).
        const held = sluice ? [...sluice.gateway.heldCounts().tenants.values()].reduce((a, c) => a + c.held, 0) : 0;
        process.send!({ journal: sluice ? { ...sluice.cache.forward.stats, held } : undefined, relay: relay ? { ...relay.stats } : undefined, sim: sim ? { ...sim.stats } : undefined });
      } else if (m.cmd === 'reload' && sluice) {
        const r0 = performance.now();
        const r = await sluice.sandbox.reload(m.tenant!, m.source);
        process.send!({ reloadMs: performance.now() - r0, ok: r.ok });
      } else if (m.cmd === 'exit') {
        await sluice?.stop();
        process.exit(0);
      }
    })();
  });
  process.on('disconnect', () => {
    void (sluice?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
  });
}

if (require.main === module) void main();

/**
 * The bench's floor at window 1 (docs/design.md, "Window 1 and its
 * floor"): the bare relay of ./relay.ts plus only what Sluice's design
 * cannot do without, and nothing of Sluice itself. Each submit_sm makes one
 * round trip through a child process that echoes it (where the policy runs:
 * never in the process that holds the sockets), and each state of a message
 * is durable in the journal's own SQLite backend, through the journal's
 * own group commit (ForwardStore: one commit per turn of the event loop),
 * before what depends on it goes out:
 *   - the upstream's submit_sm_resp: the message and its correlation key,
 *     then ESME_ROK to the ESME;
 *   - a receipt: the message final and the ESME's receipt in the outbox,
 *     then the upstream's deliver_sm answered and the receipt sent on;
 *   - the ESME's deliver_sm_resp: the outbox row deleted, lazily, as the
 *     gateway deletes it (it rides with the next commit).
 * No policy, routing, tenants, windows or retries. The gateway cannot be
 * faster than this at window 1, where nothing can be batched; at window 64
 * it batches commits, and this is no floor there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import * as smpp from 'smpp';
import { ForwardStore, MSG_FINAL, MSG_OUT, MSG_SENT, type MsgRow } from '../cache/forward-store';
import { sqliteForward } from '../cache/forward-sqlite';
import { bindUpstream, listenEsmes, receiptIdOf, upstreamSubmit, type Pdu } from './relay';

export interface FloorRelay {
  port: number;
  stats: { submits: number; receipts: number; unmatched: number };
  /** The journal's: rows written (4 a message) and the commits that wrote them. */
  journal: ForwardStore['stats'];
  close(): Promise<void>;
}

/** The echo on the far side of the hop: every byte back as it came. */
const ECHO = "const s = new (require('node:net').Socket)({ fd: 3 }); s.on('data', (d) => s.write(d)); s.on('end', () => process.exit(0));";
/** What crosses the hop per submit: about a forward's host call (a frame and its session). */
const HOP_BYTES = 256;
const DAY_MS = 86_400_000;

/** The hop: a child process that echoes, over a socket pair as the sandbox channel is. */
function startHop(): { child: ChildProcess; through(): Promise<void> } {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const sock = child.stdio[3] as Socket;
  const waiting = new Map<number, () => void>();
  let next = 0;
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= HOP_BYTES) {
      const id = buf.readUInt32LE(0);
      buf = buf.subarray(HOP_BYTES);
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    }
  });
  return {
    child,
    through: () =>
      new Promise<void>((resolve) => {
        const id = ++next >>> 0;
        waiting.set(id, resolve);
        const b = Buffer.alloc(HOP_BYTES);
        b.writeUInt32LE(id, 0);
        sock.write(b);
      }),
  };
}

/** Bind to the upstream at `upstreamPort`, keep the journal in `journalFile`, then listen on 127.0.0.1:0. */
export async function startFloorRelay(upstreamPort: number, journalFile: string): Promise<FloorRelay> {
  const stats = { submits: 0, receipts: 0, unmatched: 0 };
  const journal = new ForwardStore(await sqliteForward(journalFile));
  const hop = startHop();
  const owner = new Map<string, { session: smpp.Session; row: MsgRow }>();
  let seq = 0;
  const up = await bindUpstream(upstreamPort);
  up.on('deliver_sm', (pdu: Pdu) => {
    const id = receiptIdOf(pdu);
    const o = owner.get(id);
    if (!o) {
      stats.unmatched++;
      up.send(pdu.response());
      return;
    }
    owner.delete(id);
    const now = Date.now();
    const out: MsgRow = { ...o.row, key: `${o.row.key}/r`, up: null, state: MSG_OUT };
    void journal
      .write([
        { t: 'put', row: { ...o.row, state: MSG_FINAL, expires: now + DAY_MS } },
        { t: 'put', row: out },
      ])
      .then(() => {
        up.send(pdu.response());
        stats.receipts++;
        const receipt = new smpp.PDU('deliver_sm', { source_addr: pdu.source_addr, destination_addr: pdu.destination_addr, esm_class: pdu.esm_class, short_message: pdu.short_message });
        o.session.send(receipt, () => journal.writeLazily([{ t: 'del', key: out.key }]));
      });
  });
  const { server, port } = await listenEsmes((session, pdu) => {
    stats.submits++;
    void hop.through().then(() => {
      const sent = up.send(upstreamSubmit(pdu), (r: smpp.PDU) => {
        if (r.command_status !== 0) {
          session.send(pdu.response({ command_status: r.command_status }));
          return;
        }
        const upId = String(r.message_id ?? '');
        const now = Date.now();
        const ourId = `f${++seq}`;
        const row: MsgRow = {
          key: `floor/${ourId}`,
          tenant: 'floor',
          up: `floor\u0000${upId}`,
          state: MSG_SENT,
          due: now,
          expires: now + 3 * DAY_MS,
          created: now,
          route: 'upstream',
          data: JSON.stringify({ sys: 'acme-app', id: ourId, cmd: 'submit_sm', src: String(pdu.source_addr ?? ''), dst: String(pdu.destination_addr ?? ''), rd: Number(pdu.registered_delivery ?? 0), at: now, n: 1, uid: upId }),
        };
        void journal.write([{ t: 'put', correlates: true, row }]).then(() => {
          if (Number(pdu.registered_delivery) & 0x03) owner.set(upId, { session, row });
          // The upstream's id, as the relay answers: the load generator matches receipts by it.
          session.send(pdu.response({ message_id: upId }));
        });
      });
      if (!sent) session.send(pdu.response({ command_status: smpp.errors.ESME_RSYSERR ?? 8 }));
    });
  });
  return {
    port,
    stats,
    journal: journal.stats,
    close: async () => {
      server.close();
      up.close();
      hop.child.kill();
      await journal.close();
    },
  };
}

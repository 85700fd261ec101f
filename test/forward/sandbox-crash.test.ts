/**
 * A sandbox process killed -9 while its policy's `smpp.forward` calls are
 * under way: a submit the core's forwarder took (sent upstream, answered
 * ESME_ROK there, or refused there) is answered to the ESME with what that
 * forward came to — our message_id, then its receipt — never ESME_RSYSERR
 * for a message that is on its way (an ESME that retries sends it twice).
 * A submit the policy had not forwarded when the process died still gets
 * ESME_RSYSERR. Real sandbox processes, a real gateway, an upstream on
 * loopback that holds its submit_sm_resp until the test lets it go.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { SmppSession, type InboundRequest } from '../../src/sessions/smpp-session';
import { realClock } from '../../src/util/clock';
import { decodePdu, type WirePdu } from '../../src/wire/codec';
import { freePort, sandboxedSetup, sleep, until } from '../helpers/harness';

const GATEWAY = readFileSync(path.resolve(__dirname, '../../../policies/gateway.ts'), 'utf8');
const ESME_RSYSERR = 0x08;
const ESME_RSUBMITFAIL = 0x45;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sessionOpts = { clock: realClock, logger: silentLogger, window: 64, peerWindow: 1000, responseTimeoutMs: 5000, enquireLinkMs: 0x7fffffff, inactivityMs: 0x7fffffff, maxPduBytes: 65536 };
const textOf = (fields: Record<string, unknown>): string => Buffer.from((fields.short_message as Uint8Array | undefined) ?? new Uint8Array()).toString('latin1');

/**
 * An upstream SMSC driven by the test: submits whose text `hold` picks wait
 * for `release()` (a text starting 'refuse' is then answered
 * ESME_RSUBMITFAIL); the rest are answered at once. Receipts for what it
 * accepted go out on `sendReceipts()`, re-sent until answered ESME_ROK.
 */
class HeldSmsc {
  /** Every submit_sm that reached it, by text, in order. */
  readonly submits: string[] = [];
  /** Upstream id by text, for what it answered ESME_ROK. */
  readonly accepted = new Map<string, string>();
  readonly held: { pdu: InboundRequest; text: string }[] = [];
  session: SmppSession | undefined;
  holding = true;
  private n = 0x3c4d00;
  private readonly server = net.createServer((socket) => {
    const s = new SmppSession(socket, { role: 'server', ...sessionOpts });
    s.on('request', (pdu) => {
      if (pdu.command.startsWith('bind_')) {
        s.respond(pdu, 0, { system_id: 'held' });
        s.markBound();
        this.session = s;
      } else if (pdu.command === 'submit_sm') {
        const text = textOf(pdu.fields);
        this.submits.push(text);
        if (this.holding && this.hold(text)) this.held.push({ pdu, text });
        else this.answer(s, pdu, text);
      } else s.respond(pdu, 0);
    });
  });

  constructor(private readonly hold: (text: string) => boolean) {}

  private answer(s: SmppSession, pdu: InboundRequest, text: string): void {
    if (text.startsWith('refuse')) {
      s.respond(pdu, ESME_RSUBMITFAIL);
      return;
    }
    const id = (this.n++).toString(16).toUpperCase();
    this.accepted.set(text, id);
    s.respond(pdu, 0, { message_id: id });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
  }

  /** Answer what is held, and answer from now on at once. */
  release(): void {
    this.holding = false;
    for (const h of this.held.splice(0)) this.answer(this.session!, h.pdu, h.text);
  }

  /** A receipt for every message accepted, each re-sent (200 ms apart) until the gateway answers it ESME_ROK. */
  async sendReceipts(): Promise<void> {
    await Promise.all(
      [...this.accepted.values()].map(async (id) => {
        for (let i = 0; i < 50; i++) {
          const r = await this.session!
            .request('deliver_sm', { source_addr: '31612345678', destination_addr: '4412345', esm_class: 0x04, short_message: Buffer.from(`id:${id} sub:001 dlvrd:001 submit date:2612031200 done date:2612031201 stat:DELIVRD err:000 text:`) })
            .catch(() => undefined);
          if (r?.command_status === 0) return;
          await sleep(200);
        }
        throw new Error(`receipt for ${id} never taken`);
      }),
    );
  }

  async close(): Promise<void> {
    this.session?.close('test over', false);
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * An ESME that records, in wire order, every submit_sm_resp and receipt it
 * reads (before its session handles them), answers receipts ESME_ROK and
 * keeps any other deliver_sm unanswered until `answerHeld()`.
 */
class WireEsme {
  /** What came in, in the order the bytes came. */
  readonly wire: ({ kind: 'resp'; seq: number; status: number; id: string } | { kind: 'receipt'; id: string })[] = [];
  readonly held: InboundRequest[] = [];
  private rx = Buffer.alloc(0);

  private constructor(readonly session: SmppSession) {}

  static async bind(port: number, systemId: string, password: string): Promise<WireEsme> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    const session = new SmppSession(socket, { role: 'client', ...sessionOpts, responseTimeoutMs: 30_000 });
    const esme = new WireEsme(session);
    // Ahead of the session's own listener: the order on the wire, not the order promises settle in.
    socket.prependListener('data', (chunk: Buffer) => esme.onBytes(chunk));
    session.on('request', (pdu) => {
      if (((pdu.fields.esm_class as number) & 0x3c) === 0x04) session.respond(pdu, 0, { message_id: '' });
      else esme.held.push(pdu);
    });
    const r = await session.request('bind_transceiver', { system_id: systemId, password, system_type: '', interface_version: 0x34 });
    assert.equal(r.command_status, 0, `bind ${systemId}`);
    session.markBound();
    return esme;
  }

  private onBytes(chunk: Buffer): void {
    this.rx = Buffer.concat([this.rx, chunk]);
    while (this.rx.length >= 16 && this.rx.length >= this.rx.readUInt32BE(0)) {
      const frame = this.rx.subarray(0, this.rx.readUInt32BE(0));
      this.rx = this.rx.subarray(frame.length);
      const id = frame.readUInt32BE(4);
      if (id === 0x80000004) {
        const body = frame.subarray(16);
        const end = body.indexOf(0);
        this.wire.push({ kind: 'resp', seq: frame.readUInt32BE(12), status: frame.readUInt32BE(8), id: body.subarray(0, end < 0 ? body.length : end).toString('latin1') });
      } else if (id === 0x00000005) {
        const d = decodePdu(Buffer.from(frame));
        if (d.ok && ((d.pdu.fields.esm_class as number) & 0x3c) === 0x04) this.wire.push({ kind: 'receipt', id: /id:(\S+)/.exec(textOf(d.pdu.fields))?.[1] ?? '' });
      }
    }
  }

  submit(text: string): Promise<WirePdu> {
    return this.session.request('submit_sm', { source_addr: '4412345', destination_addr: '31612345678', registered_delivery: 1, short_message: Buffer.from(text) });
  }

  answerHeld(): void {
    for (const pdu of this.held.splice(0)) this.session.respond(pdu, 0, { message_id: '' });
  }

  /** Every receipt came after the submit_sm_resp that gave its id, and each id answered ESME_ROK got exactly one. */
  checkReceipts(okIds: readonly string[]): void {
    const ok = new Set(okIds);
    const answeredAt = new Map<string, number>();
    const got = new Map<string, number>();
    this.wire.forEach((w, i) => {
      if (w.kind === 'resp') {
        if (w.status === 0) answeredAt.set(w.id, i);
        return;
      }
      assert.ok(ok.has(w.id), `a receipt for ${w.id}, an id the ESME was never given (given: ${okIds.join(', ')})`);
      assert.ok((answeredAt.get(w.id) ?? Infinity) < i, `the receipt for ${w.id} came after its submit_sm_resp`);
      got.set(w.id, (got.get(w.id) ?? 0) + 1);
    });
    for (const id of okIds) assert.equal(got.get(id), 1, `one receipt for ${id}`);
  }

  close(): void {
    this.session.close('test over', false);
  }
}

interface Rig {
  sluice: Sluice;
  smsc: HeldSmsc;
  close(): Promise<void>;
}

async function rig(policy: string, hold: (text: string) => boolean, settings: Record<string, unknown> = {}): Promise<Rig> {
  const port = await freePort();
  const smsc = new HeldSmsc(hold);
  await smsc.listen(port);
  const { dir, config } = sandboxedSetup(
    { acme: policy },
    {
      server: { bind_address: '127.0.0.1', port: 0, response_timer_ms: 5000 },
      tenants: [
        {
          id: 'acme',
          policy: 'acme.ts',
          system_ids: ['acme-app'],
          settings: { esmes: { 'acme-app': 'acme-pw' }, mo_default: 'acme-app', ...settings },
          limits: { handler_deadline_ms: 10_000 },
          binds: [{ name: 'up0', host: '127.0.0.1', port, system_id: 'acme', window: 64, response_timer_ms: 5000 }],
          // No queue step: what the upstream refuses is answered with its status.
          routing: { default_chain: ['bind:up0'], rules: [] },
        },
      ],
    },
  );
  dirs.push(dir);
  const sluice = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, reconnectBaseMs: 50 });
  await until(() => sluice.gateway.binds('acme').some((b) => b.state === 'bound') && smsc.session !== undefined, 8000);
  return {
    sluice,
    smsc,
    async close() {
      await sluice.stop();
      await smsc.close();
    },
  };
}

/** kill -9 the sandbox process hosting acme; resolves once the core has seen it die (its own 'close' handler runs first). */
async function killSandbox(sluice: Sluice): Promise<number> {
  const child = sluice.sandbox.processOf('acme');
  assert.ok(child?.pid, 'acme has a sandbox process');
  const closed = once(child, 'close');
  process.kill(child.pid, 'SIGKILL');
  await closed;
  return child.pid;
}

describe('a sandbox process killed while its policy forwards', () => {
  it('policies/gateway.ts: submits forwarded and in flight upstream when the sandbox dies are answered ESME_ROK with our ids once the upstream answers; each receipt follows its submit_sm_resp; nothing is sent twice', { timeout: 30_000 }, async () => {
    const r = await rig(GATEWAY, () => true);
    try {
      const esme = await WireEsme.bind(r.sluice.port, 'acme-app', 'acme-pw');
      const texts = Array.from({ length: 8 }, (_, i) => `m${i}`);
      const answers = Promise.all(texts.map((t) => esme.submit(t)));
      // Every one forwarded: the forwarder is waiting on the upstream for each.
      await until(() => r.smsc.held.length === texts.length, 5000);
      const pid = await killSandbox(r.sluice);
      await sleep(50);
      r.smsc.release();
      const resps = await answers;
      const statuses = resps.map((x) => x.command_status);
      assert.deepEqual(statuses, texts.map(() => 0), `every forwarded submit answered ESME_ROK, not ESME_RSYSERR (got ${JSON.stringify(statuses)})`);
      const ids = resps.map((x) => String(x.fields.message_id));
      assert.equal(new Set(ids).size, texts.length, 'each with its own message_id');
      assert.ok(ids.every((id) => id.length > 0));

      // The receipts come back (through the restarted sandbox) with those ids, after their submit_sm_resp.
      await until(() => r.sluice.sandbox.processOf('acme')?.pid !== undefined && r.sluice.sandbox.processOf('acme')!.pid !== pid, 5000);
      await r.smsc.sendReceipts();
      await until(() => esme.wire.filter((w) => w.kind === 'receipt').length >= texts.length, 8000);
      await sleep(200);
      esme.checkReceipts(ids);
      assert.deepEqual([...r.smsc.submits].sort(), [...texts].sort(), 'each submit reached the upstream exactly once');

      // And the tenant carries on.
      const later = await esme.submit('later');
      assert.equal(later.command_status, 0);
      assert.deepEqual(r.smsc.submits.filter((t) => t === 'later'), ['later']);
      esme.close();
    } finally {
      await r.close();
    }
  });

  it('a forward that finished, one still in flight and one the upstream refuses are answered with their results; a submit not yet forwarded when the sandbox died gets ESME_RSYSERR and is never sent', { timeout: 30_000 }, async () => {
    // 'wait…' waits on the ESME (a deliver_sm it holds) before it forwards; 'after…' forwards, then waits on the ESME.
    const policy = `
      smpp.onBind((b) => b.accept());
      const hold = (session: Sluice.Session) => smpp.deliverTo(session.sessionId, { source_addr: '1', destination_addr: '2', short_message: 'hold' });
      smpp.onPdu('submit_sm', async (pdu, session) => {
        const text = pdu.text ?? '';
        if (text.startsWith('wait')) {
          await hold(session);
          return smpp.forward(pdu);
        }
        if (text.startsWith('after')) {
          const r = await smpp.forward(pdu);
          await hold(session);
          return r;
        }
        return smpp.forward(pdu);
      });
      smpp.onPdu('deliver_sm', (pdu) => smpp.forward(pdu));`;
    const r = await rig(policy, (t) => t.startsWith('fwd') || t.startsWith('refuse'));
    try {
      const esme = await WireEsme.bind(r.sluice.port, 'acme-app', 'pw');
      const after1 = esme.submit('after-1');
      // Forwarded and answered upstream; the policy now waits on the ESME.
      await until(() => esme.held.length === 1 && r.smsc.accepted.has('after-1'), 5000);
      const fwd = [esme.submit('fwd-1'), esme.submit('fwd-2'), esme.submit('refuse-1')];
      const wait1 = esme.submit('wait-1');
      await until(() => r.smsc.held.length === 3 && esme.held.length === 2, 5000);
      await killSandbox(r.sluice);
      await sleep(50);
      r.smsc.release();
      esme.answerHeld();

      const [a, f1, f2, refused, w] = await Promise.all([after1, ...fwd, wait1]);
      const got = { 'after-1': a!.command_status, 'fwd-1': f1!.command_status, 'fwd-2': f2!.command_status, 'refuse-1': refused!.command_status, 'wait-1': w!.command_status };
      assert.deepEqual(got, { 'after-1': 0, 'fwd-1': 0, 'fwd-2': 0, 'refuse-1': ESME_RSUBMITFAIL, 'wait-1': ESME_RSYSERR }, `statuses: ${JSON.stringify(got)}`);
      const ids = [a!, f1!, f2!].map((x) => String(x.fields.message_id));
      assert.equal(new Set(ids).size, 3);
      assert.ok(ids.every((id) => id.length > 0));

      await r.smsc.sendReceipts();
      await until(() => esme.wire.filter((x) => x.kind === 'receipt').length >= 3, 8000);
      await sleep(200);
      esme.checkReceipts(ids);
      assert.deepEqual([...r.smsc.submits].sort(), ['after-1', 'fwd-1', 'fwd-2', 'refuse-1'], 'each forwarded submit reached the upstream once; the one never forwarded did not');
      esme.close();
    } finally {
      await r.close();
    }
  });
});

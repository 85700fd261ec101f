import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { InboundRequest } from '../../src/sessions/smpp-session';
import { EsmeClient } from '../../src/tools/esme-client';
import { SmscSimulator, type ReceiptIdForm, type SimOptions } from '../../src/tools/sim';
import { STATUS } from '../../src/wire/status';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/sluice.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Got {
  pdu: InboundRequest;
  text: string;
  tlvId: string | undefined;
  bodyId: string | undefined;
}

/** An ESME bound to the sim that records every deliver_sm and answers it with `answer(n)` (n = how many it had before). */
async function esme(port: number, sys = 'acme', answer: (n: number) => number = () => 0, log?: string[]) {
  const got: Got[] = [];
  const client = await EsmeClient.connect({
    port,
    onRequest: (pdu, s) => {
      const text = Buffer.from((pdu.fields.short_message as Buffer | undefined) ?? Buffer.alloc(0)).toString('latin1');
      got.push({ pdu, text, tlvId: pdu.fields.receipted_message_id as string | undefined, bodyId: /^id:(\S+)/.exec(text)?.[1] });
      log?.push('deliver_sm');
      s.respond(pdu, answer(got.length - 1), { message_id: '' });
    },
  });
  assert.equal((await client.bind(sys, 'pw')).command_status, 0);
  const submit = async (text = 'hi', rd = 1): Promise<string> => {
    const r = await client.submit({ source_addr: '4412345', destination_addr: '31612345678', registered_delivery: rd, short_message: Buffer.from(text) });
    log?.push('submit_sm_resp');
    assert.equal(r.command_status, 0);
    return String(r.fields.message_id);
  };
  return { client, got, submit };
}

const sims: SmscSimulator[] = [];
async function startSim(o: SimOptions): Promise<SmscSimulator> {
  const s = new SmscSimulator({ dlrDelayMs: 0, ...o });
  sims.push(s);
  await s.listen();
  return s;
}
after(async () => {
  for (const s of sims) await s.close();
});

function expected(rid: string, form: Exclude<ReceiptIdForm, 'mixed'>, respHex = true): string {
  const n = respHex ? parseInt(rid, 16) : Number(rid);
  const hex = n.toString(16);
  return { same: rid, 'upper-hex': hex.toUpperCase(), 'lower-hex': hex, decimal: String(n), padded: hex.toUpperCase().padStart(20, '0'), 'padded-decimal': String(n).padStart(20, '0') }[form];
}

describe('sluice sim', () => {
  const forms = ['same', 'upper-hex', 'lower-hex', 'decimal', 'padded', 'padded-decimal'] as const;

  it('writes the resp id as uppercase hex (or decimal) and the receipt id in each --receipt-id form', async () => {
    for (const respIdForm of ['hex', 'decimal'] as const) {
      for (const form of forms) {
        const sim = await startSim({ receiptIdForm: form, respIdForm });
        const e = await esme(sim.port);
        const rid = await e.submit();
        assert.match(rid, respIdForm === 'hex' ? /^[0-9A-F]{8,12}$/ : /^\d+$/);
        await until(() => e.got.length === 1, `receipt (${form})`);
        assert.equal(e.got[0]!.bodyId, expected(rid, form, respIdForm === 'hex'), `${respIdForm}/${form} body id`);
        assert.equal(e.got[0]!.tlvId, e.got[0]!.bodyId, 'receipted_message_id carries the same id');
        e.client.close();
      }
    }
    const sim = await startSim({ receiptIdForm: 'mixed' });
    const e = await esme(sim.port);
    const rids: string[] = [];
    for (let i = 0; i < forms.length; i++) rids.push(await e.submit(`m${i}`));
    await until(() => e.got.length === forms.length, 'mixed receipts');
    const byRid = new Map(e.got.map((g) => [g.text, g.bodyId]));
    assert.equal(byRid.size, forms.length);
    const bodies = e.got.map((g) => g.bodyId!);
    rids.forEach((rid, i) => assert.ok(bodies.includes(expected(rid, forms[i]!)), `mixed: message ${i} in form ${forms[i]}`));
    e.client.close();
  });

  it('reports a submit (onEvent, what --log-events prints) before its submit_sm_resp is written, also an answer that fills a batch and goes out at once', async () => {
    // What tests read from the events is what the sim answered: a sim killed after an
    // answer left must have reported it, and an answer must not reach anyone before its event.
    const order: string[] = [];
    const sim = await startSim({ dlrDelayMs: -1, onEvent: (ev) => void (ev.ev === 'submit' && order.push(`event ${ev.id}`)) });
    const e = await esme(sim.port);
    const proto = net.Socket.prototype as unknown as { write: (...args: unknown[]) => boolean };
    const own = Object.getOwnPropertyDescriptor(proto, 'write');
    const write = proto.write;
    proto.write = function (this: net.Socket, ...args: unknown[]): boolean {
      const data = args[0];
      if (Buffer.isBuffer(data)) {
        for (let off = 0; off + 16 <= data.length; ) {
          const len = data.readUInt32BE(off);
          if (len < 16) break;
          if (data.readUInt32BE(off + 4) === 0x80000004) order.push(`resp ${data.toString('latin1', off + 16, data.indexOf(0, off + 16))}`);
          off += len;
        }
      }
      return write.apply(this, args);
    };
    try {
      // 48 at once: the client writes them 16 to a frame, so the sim answers 16 in one turn and the 16th fills its batch.
      const ids = await Promise.all(Array.from({ length: 48 }, (_, i) => e.submit(`b${i}`)));
      assert.equal(order.filter((x) => x.startsWith('resp ')).length, 48, 'every submit_sm_resp seen written');
      for (const id of ids) {
        const ev = order.indexOf(`event ${id}`);
        assert.ok(ev !== -1 && ev < order.indexOf(`resp ${id}`), `the submit event of ${id} comes before its submit_sm_resp is written`);
      }
    } finally {
      if (own) Object.defineProperty(proto, 'write', own);
      else delete (proto as { write?: unknown }).write;
      e.client.close();
    }
  });

  it('--early-receipts sends the receipt before the submit_sm_resp', async () => {
    const sim = await startSim({ earlyReceiptRate: 1, earlyRespDelayMs: 50, dlrDelayMs: 1000 });
    const log: string[] = [];
    const e = await esme(sim.port, 'acme', () => 0, log);
    const rid = await e.submit();
    assert.deepEqual(log, ['deliver_sm', 'submit_sm_resp']);
    assert.equal(e.got[0]!.bodyId, rid);
    assert.equal(sim.stats.early, 1);
    e.client.close();
  });

  it('re-sends a receipt answered non-zero, and duplicates receipts answered ESME_ROK', async () => {
    const sim = await startSim({ resendUnansweredMs: 50, resendMax: 3 });
    const e = await esme(sim.port, 'acme', (n) => (n === 0 ? STATUS.ESME_RSYSERR! : 0));
    const rid = await e.submit();
    await until(() => e.got.length === 2 && sim.stats.dlrsAcked === 1, 're-sent receipt');
    assert.deepEqual(e.got.map((g) => g.bodyId), [rid, rid]);
    assert.equal(sim.stats.resent, 1);
    await sleep(120);
    assert.equal(e.got.length, 2, 'nothing after the ESME_ROK');
    e.client.close();

    const dup = await startSim({ duplicateReceiptRate: 1 });
    const d = await esme(dup.port);
    const id = await d.submit();
    await until(() => d.got.length === 2, 'duplicate receipt');
    assert.deepEqual(d.got.map((g) => g.bodyId), [id, id]);
    assert.equal(dup.stats.duplicates, 1);
    await sleep(50);
    assert.equal(d.got.length, 2, 'a duplicate is not duplicated again');
    d.client.close();
  });

  it('--drop-every closes the connection; its receipts wait for the account to bind again, in order', async () => {
    const sim = await startSim({ dropEvery: 2, dlrDelayMs: 100 });
    const first = await esme(sim.port);
    const a = await first.submit('a');
    const b = await first.submit('b');
    await until(() => first.client.session.closed && sim.boundSessions === 0, 'the drop');
    assert.equal(sim.stats.drops, 1);
    await until(() => sim.stats.pendingReceipts === 2, 'receipts waiting');
    const other = await esme(sim.port, 'globex');
    await sleep(30);
    assert.equal(other.got.length, 0, 'another account does not get them');
    const again = await esme(sim.port);
    await until(() => again.got.length === 2, 'receipts after the rebind');
    assert.deepEqual(again.got.map((g) => g.bodyId), [a, b]);
    assert.equal(sim.stats.pendingReceipts, 0);
    other.client.close();
    again.client.close();
  });

  it('answers query_sm, cancel_sm and replace_sm', async () => {
    const sim = await startSim({ dlrDelayMs: 150 });
    const e = await esme(sim.port);
    const a = await e.submit('a');
    const b = await e.submit('b');
    const q = await e.client.request('query_sm', { message_id: a, source_addr: '4412345' });
    assert.equal(q.command_status, 0);
    assert.equal(q.fields.message_state, 1, 'ENROUTE');
    assert.equal((await e.client.request('replace_sm', { message_id: a, source_addr: '4412345', short_message: Buffer.from('a2') })).command_status, 0);
    assert.equal((await e.client.request('cancel_sm', { message_id: b, source_addr: '4412345', destination_addr: '31612345678' })).command_status, 0);
    await until(() => e.got.length === 1, 'the receipt of a');
    const q2 = await e.client.request('query_sm', { message_id: a, source_addr: '4412345' });
    assert.equal(q2.fields.message_state, 2, 'DELIVRD');
    assert.ok(q2.fields.final_date, 'final_date once final');
    for (const form of ['lower-hex', 'decimal', 'padded', 'padded-decimal'] as const) {
      const qf = await e.client.request('query_sm', { message_id: expected(a, form), source_addr: '4412345' });
      assert.deepEqual([qf.command_status, qf.fields.message_id], [0, a], `query_sm by the ${form} id`);
    }
    assert.equal((await e.client.request('cancel_sm', { message_id: a, source_addr: '4412345', destination_addr: '31612345678' })).command_status, STATUS.ESME_RCANCELFAIL);
    assert.equal((await e.client.request('replace_sm', { message_id: a, source_addr: '4412345', short_message: Buffer.from('a3') })).command_status, STATUS.ESME_RREPLACEFAIL);
    assert.equal((await e.client.request('query_sm', { message_id: 'NOPE', source_addr: '4412345' })).command_status, STATUS.ESME_RQUERYFAIL);
    await sleep(200);
    assert.deepEqual(e.got.map((g) => g.bodyId), [a], 'the cancelled message got no receipt');
    assert.deepEqual([sim.stats.queries, sim.stats.cancels, sim.stats.replaces], [7, 2, 2]);
    e.client.close();
  });

  it('--mo-every-ms sends MO deliver_sm on a bound session', async () => {
    const sim = await startSim({ moEveryMs: 30, moTo: '4470999' });
    const e = await esme(sim.port);
    await until(() => e.got.length >= 2, 'MO messages');
    assert.equal(e.got[0]!.text, 'mo 1');
    assert.equal(e.got[0]!.pdu.fields.esm_class, 0);
    assert.equal(e.got[0]!.pdu.fields.source_addr, '447700900123');
    assert.equal(e.got[0]!.pdu.fields.destination_addr, '4470999');
    e.client.close();
  });

  it('sluice sim --help lists every flag and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [BIN, 'sim', flag], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 0, r.stderr);
      for (const f of ['--receipt-id same', '--resp-id hex', '--early-receipts 0', '--resend-ms 0', '--resend-max 5', '--duplicate-receipts 0', '--deliver-timeout-ms 10000', '--drop-every 0', '--mo-every-ms 0', '--mo-to 4470123', '--log-events']) {
        assert.ok(r.stdout.includes(f), `usage lists ${f}`);
      }
    }
  });

  it('--log-events prints the listening line, then one JSON event a line', { timeout: 15_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'sim', '--port', '0', '--log-events', '--dlr-delay-ms', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on [\d.]+:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`sim exited with ${code}: ${out}`)));
      });
      const e = await esme(port);
      const rid = await e.submit('hello');
      await until(() => out.includes('"ev":"receipt"'), 'the receipt event', 5000);
      const lines = out.trimEnd().split('\n');
      assert.match(lines[0]!, /^sluice sim: SMSC simulator listening on 127\.0\.0\.1:\d+$/);
      const events = lines.slice(1).filter((l) => !l.startsWith('sim {')).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(events[0], { ev: 'bind', sys: 'acme' });
      assert.deepEqual(events.find((x) => x.ev === 'submit'), { ev: 'submit', id: rid, src: '4412345', dst: '31612345678', text: 'hello', rd: 1, sys: 'acme' });
      assert.deepEqual(events.find((x) => x.ev === 'receipt'), { ev: 'receipt', id: rid, rid, acked: true, n: 1 });
      e.client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

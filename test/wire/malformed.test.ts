/**
 * Malformed and hostile input over real TCP (docs/design.md, "The boundary" and "Operations and their defaults"): each of npm
 * `smpp`'s session-layer failure modes — a bad command_length wedging or
 * crashing a session, no generic_nack for unknown commands, unbounded
 * buffering past the window or under write backpressure — must be impossible
 * in Sluice. Every test also checks that a second, normally bound ESME keeps
 * getting its submit_sm answered.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { EsmeClient } from '../../src/tools/esme-client';
import { commandName, decodePdu, isResponseId } from '../../src/wire/codec';
import { ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_ROK, ESME_RTHROTTLED } from '../../src/wire/status';
import { acceptAll, bindBody, cstr, RawPeer, rawPdu, sleep, startGateway, testConfig, type Harness } from '../helpers/harness';

const GENERIC_NACK = 0x80000000;
const BIND_TRX = 0x00000009;
const BIND_TRX_RESP = 0x80000009;
const SUBMIT_SM = 0x00000004;
const SUBMIT_SM_RESP = 0x80000004;
const ENQUIRE_LINK = 0x00000015;
const ENQUIRE_LINK_RESP = 0x80000015;
const MAX_PDU = 16384; // server.max_pdu_bytes default
/** Fixed so a failure reproduces; set SLUICE_FUZZ_SEED to explore other inputs. */
const FUZZ_SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20240611);

// ---- PDU building ---------------------------------------------------------------

function tlv(tag: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + value.length);
  b.writeUInt16BE(tag, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/** A complete submit_sm body: every mandatory field, then optional TLV bytes. */
function submitBody(dest: string, msg: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([
    cstr(''), // service_type
    Buffer.from([1, 1]), // source_addr_ton, source_addr_npi
    cstr('sluice'),
    Buffer.from([1, 1]), // dest_addr_ton, dest_addr_npi
    cstr(dest),
    Buffer.from([0, 0, 0]), // esm_class, protocol_id, priority_flag
    cstr(''), // schedule_delivery_time
    cstr(''), // validity_period
    Buffer.from([0, 0, 0, 0, msg.length]), // registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    msg,
    tlvs,
  ]);
}

const submitPdu = (seq: number, text = 'hi'): Buffer => rawPdu(SUBMIT_SM, seq, submitBody('31600000000', Buffer.from(text)));

// ---- reading ------------------------------------------------------------------

interface Frame {
  id: number;
  status: number;
  seq: number;
  body: Buffer;
}

/**
 * Splits what the gateway sent into PDUs, asserting the framing is sound: every
 * command_length is 16..max_pdu_bytes and nothing is left over.
 */
function frames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let off = 0;
  while (off < buf.length) {
    assert.ok(buf.length - off >= 16, `partial PDU header from the gateway: ${buf.subarray(off).toString('hex')}`);
    const len = buf.readUInt32BE(off);
    assert.ok(len >= 16 && len <= MAX_PDU, `gateway wrote command_length ${len}`);
    assert.ok(off + len <= buf.length, `gateway wrote a truncated PDU (command_length ${len}, ${buf.length - off} bytes)`);
    const pdu = buf.subarray(off, off + len);
    out.push({ id: pdu.readUInt32BE(4), status: pdu.readUInt32BE(8), seq: pdu.readUInt32BE(12), body: Buffer.from(pdu.subarray(16)) });
    off += len;
  }
  return out;
}

/** A PDU the gateway may send a peer in answer to anything: a generic_nack or a known *_resp that decodes. */
function assertWellFormedAnswer(f: Frame): void {
  const hex = `0x${f.id.toString(16).padStart(8, '0')}`;
  assert.ok(isResponseId(f.id), `gateway sent request ${hex} to a peer sending garbage`);
  assert.ok(commandName(f.id) !== undefined, `gateway sent unknown command_id ${hex}`);
  if (f.id === GENERIC_NACK) {
    assert.ok(f.status === ESME_RINVCMDLEN || f.status === ESME_RINVCMDID, `generic_nack with status ${f.status}`);
  }
  if (f.status !== ESME_ROK) assert.equal(f.body.length, 0, `${hex} with error status ${f.status} carries a body`);
  const whole = Buffer.concat([Buffer.alloc(16), f.body]);
  whole.writeUInt32BE(whole.length, 0);
  whole.writeUInt32BE(f.id, 4);
  whole.writeUInt32BE(f.status, 8);
  whole.writeUInt32BE(f.seq, 12);
  assert.equal(decodePdu(whole).ok, true, `${hex} from the gateway does not decode`);
}

/** Every byte a socket receives from now on (independent of RawPeer's own reader). */
function collect(socket: net.Socket): { bytes: () => Buffer; quietMs: () => number } {
  const chunks: Buffer[] = [];
  let last = Date.now();
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    last = Date.now();
  });
  return { bytes: () => Buffer.concat(chunks), quietMs: () => Date.now() - last };
}

/** Wait until the peer is closed or nothing has arrived for `quietMs` (bounded by `maxMs`). */
async function settle(p: RawPeer, c: { quietMs: () => number }, quietMs = 25, maxMs = 1500): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!p.closed && c.quietMs() < quietMs && Date.now() < deadline) await sleep(5);
}

/** Nothing more arrives within `ms` (the connection may be open or closed). */
async function assertNothingMore(p: RawPeer, ms = 60): Promise<void> {
  try {
    const extra = await p.read(ms);
    assert.equal(extra, undefined, `unexpected PDU 0x${extra?.id.toString(16)} seq ${extra?.seq}`);
  } catch (err) {
    if (!/timed out/.test((err as Error).message)) throw err;
  }
}

// ---- sessions -----------------------------------------------------------------

const peers = new Set<RawPeer | net.Socket>();

async function rawPeer(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  peers.add(p);
  return p;
}

/** A raw TCP peer bound as `systemId` with sequence number 1. */
async function boundPeer(port: number, systemId = 'acme-app'): Promise<RawPeer> {
  const p = await rawPeer(port);
  p.write(rawPdu(BIND_TRX, 1, bindBody(systemId)));
  const r = await p.read();
  assert.deepEqual([r?.id, r?.status, r?.seq], [BIND_TRX_RESP, ESME_ROK, 1], 'bind of the raw peer');
  return p;
}

function destroyPeers(): void {
  for (const p of peers) p.destroy();
  peers.clear();
}

/** The well-behaved second session still gets submit_sm answered. */
async function assertWitness(c: EsmeClient, n = 1): Promise<void> {
  const rs = await Promise.all(
    Array.from({ length: n }, (_, i) => c.submit({ destination_addr: '31600000001', short_message: Buffer.from(`still here ${i}`) })),
  );
  for (const r of rs) {
    assert.equal(r.command, 'submit_sm_resp');
    assert.equal(r.command_status, ESME_ROK);
    assert.equal(typeof r.fields.message_id, 'string');
    assert.ok((r.fields.message_id as string).length > 0);
  }
}

// ---- the regression tests ---------------------------------------------------------

describe('malformed input: framing and commands', () => {
  let h: Harness;
  let witness: EsmeClient;
  before(async () => {
    // A short response timer so stop() does not wait 30 s for raw peers that never answer unbind.
    h = await startGateway({ config: testConfig({ server: { response_timer_ms: 1000 } }) });
    witness = await h.esme('acme-2', { responseTimeoutMs: 2000 });
  });
  afterEach(destroyPeers);
  after(async () => {
    destroyPeers();
    await h.close();
  });

  it('command_length below 16: generic_nack ESME_RINVCMDLEN with the sequence number, then a clean close; nothing after it is read', async () => {
    for (const len of [0, 1, 4, 15]) {
      const p = await boundPeer(h.port);
      // A bad length followed by a perfectly good enquire_link: framing is lost, so it must not be answered.
      p.write(Buffer.concat([rawPdu(ENQUIRE_LINK, 42, Buffer.alloc(0), { length: len }), rawPdu(ENQUIRE_LINK, 43)]));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 42], `command_length ${len}`);
      assert.equal(r?.body.length, 0);
      assert.equal(await p.read(), undefined, `nothing after the bad command_length ${len} is answered`);
      assert.equal(await p.waitClosed(), true);
    }
    await assertWitness(witness);
  });

  it('command_length below 16 with fewer than 16 header bytes: generic_nack ESME_RINVCMDLEN with sequence 0, then a clean close', async () => {
    const p = await boundPeer(h.port);
    p.write(Buffer.from([0, 0, 0, 5]));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 0]);
    assert.equal(await p.waitClosed(), true);
    await assertWitness(witness);
  });

  it('command_length above max_pdu_bytes: generic_nack ESME_RINVCMDLEN at once (no waiting for the body), then a clean close', async () => {
    for (const len of [MAX_PDU + 1, 0x7fffffff, 0xffffffff]) {
      const p = await boundPeer(h.port);
      const started = Date.now();
      p.write(Buffer.concat([rawPdu(SUBMIT_SM, 77, Buffer.from('partial body'), { length: len }), rawPdu(ENQUIRE_LINK, 78)]));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 77], `command_length ${len}`);
      assert.equal(await p.read(), undefined, `nothing after command_length ${len} is answered`);
      assert.equal(await p.waitClosed(), true);
      assert.ok(Date.now() - started < 1500, 'the session is not wedged waiting for the announced body');
    }
    await assertWitness(witness);
  });

  it('command_length exactly max_pdu_bytes is accepted; one more is refused', async () => {
    const payloadFor = (total: number): Buffer => {
      const fixed = 16 + submitBody('31600000000', Buffer.alloc(0)).length + 4;
      return tlv(0x0424, Buffer.alloc(total - fixed, 0x41)); // message_payload
    };
    const ok = await boundPeer(h.port);
    const atMax = rawPdu(SUBMIT_SM, 5, submitBody('31600000000', Buffer.alloc(0), payloadFor(MAX_PDU)));
    assert.equal(atMax.length, MAX_PDU);
    ok.write(atMax);
    const r1 = await ok.read();
    assert.deepEqual([r1?.id, r1?.status, r1?.seq], [SUBMIT_SM_RESP, ESME_ROK, 5]);

    const bad = await boundPeer(h.port);
    const overMax = rawPdu(SUBMIT_SM, 6, submitBody('31600000000', Buffer.alloc(0), payloadFor(MAX_PDU + 1)));
    assert.equal(overMax.length, MAX_PDU + 1);
    bad.write(overMax);
    const r2 = await bad.read();
    assert.deepEqual([r2?.id, r2?.status, r2?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 6]);
    assert.equal(await bad.waitClosed(), true);
    await assertWitness(witness);
  });

  it('unknown command_id: generic_nack ESME_RINVCMDID with the PDU sequence number; the session lives on', async () => {
    const p = await boundPeer(h.port);
    for (const [id, seq, body] of [
      [0x00000099, 11, Buffer.alloc(0)],
      [0x12345678, 12, Buffer.from('some body bytes\0')],
      [0x7fffffff, 13, Buffer.alloc(40, 0xff)],
    ] as const) {
      p.write(rawPdu(id, seq, body));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDID, seq], `command_id 0x${id.toString(16)}`);
      assert.equal(r?.body.length, 0);
    }
    p.write(rawPdu(ENQUIRE_LINK, 14));
    const e = await p.read();
    assert.deepEqual([e?.id, e?.status, e?.seq], [ENQUIRE_LINK_RESP, ESME_ROK, 14]);
    p.write(submitPdu(15));
    const s = await p.read();
    assert.deepEqual([s?.id, s?.status, s?.seq], [SUBMIT_SM_RESP, ESME_ROK, 15], 'still bound after the nacks');
    assert.equal(p.closed, false);
    await assertWitness(witness);
  });

  it('unknown command_id before bind: generic_nack ESME_RINVCMDID; the connection can still bind', async () => {
    const p = await rawPeer(h.port);
    p.write(rawPdu(0x00000099, 3));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDID, 3]);
    p.write(rawPdu(BIND_TRX, 4, bindBody('acme-app')));
    const b = await p.read();
    assert.deepEqual([b?.id, b?.status, b?.seq], [BIND_TRX_RESP, ESME_ROK, 4]);
    await assertWitness(witness);
  });

  it('known command whose body does not parse (a TLV value running past the PDU): generic_nack ESME_RINVCMDLEN; the session lives on', async () => {
    const p = await boundPeer(h.port);
    // user_message_reference (0x0204, int16) announcing 2 octets with only 1 left in the PDU.
    const truncatedTlv = Buffer.concat([submitBody('31600000000', Buffer.from('hi')), Buffer.from([0x02, 0x04, 0x00, 0x02, 0x01])]);
    p.write(rawPdu(SUBMIT_SM, 21, truncatedTlv));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 21]);
    p.write(rawPdu(ENQUIRE_LINK, 22));
    const e = await p.read();
    assert.deepEqual([e?.id, e?.status, e?.seq], [ENQUIRE_LINK_RESP, ESME_ROK, 22]);
    await assertWitness(witness);
  });

  it(
    'submit_sm with command_length 17 and 1 body byte: generic_nack ESME_RINVCMDLEN; the session lives on',
    async () => {
      const p = await boundPeer(h.port);
      for (const [seq, byte] of [
        [31, 0x00],
        [32, 0x41],
      ] as const) {
        p.write(rawPdu(SUBMIT_SM, seq, Buffer.from([byte])));
        const r = await p.read();
        assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, seq], `submit_sm body 0x${byte.toString(16)}`);
      }
      p.write(rawPdu(ENQUIRE_LINK, 33));
      const e = await p.read();
      assert.deepEqual([e?.id, e?.status, e?.seq], [ENQUIRE_LINK_RESP, ESME_ROK, 33]);
      await assertWitness(witness);
    },
  );

  it(
    'bind_transceiver truncated mid-field: generic_nack ESME_RINVCMDLEN, not a bind; the session lives on',
    async () => {
      const p = await rawPeer(h.port);
      // system_id "acme-app" complete, password cut after one octet (no NUL), the rest missing.
      p.write(rawPdu(BIND_TRX, 41, Buffer.from('acme-app\0p', 'latin1')));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 41]);
      p.write(rawPdu(BIND_TRX, 42, bindBody('acme-app')));
      const b = await p.read();
      assert.deepEqual([b?.id, b?.status, b?.seq], [BIND_TRX_RESP, ESME_ROK, 42]);
      await assertWitness(witness);
    },
  );

  it(
    'submit_sm whose sm_length runs past the PDU: generic_nack ESME_RINVCMDLEN, not a silently truncated message',
    async () => {
      const p = await boundPeer(h.port);
      const body = submitBody('31600000000', Buffer.from('abc'));
      body[body.length - 4] = 200; // sm_length
      p.write(rawPdu(SUBMIT_SM, 51, body));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 51]);
      await assertWitness(witness);
    },
  );

  it('a PDU split into single-byte TCP writes is reassembled and answered only when complete', async () => {
    const p = await rawPeer(h.port);
    p.socket.setNoDelay(true);
    const got = collect(p.socket);
    const trickle = async (buf: Buffer): Promise<void> => {
      for (let i = 0; i < buf.length - 1; i++) {
        p.write(buf.subarray(i, i + 1));
        await sleep(1);
      }
      await sleep(20);
      assert.equal(got.bytes().length, 0, 'nothing is answered before the last byte arrives');
      p.write(buf.subarray(buf.length - 1));
    };
    await trickle(rawPdu(BIND_TRX, 61, bindBody('acme-app')));
    const b = await p.read();
    assert.deepEqual([b?.id, b?.status, b?.seq], [BIND_TRX_RESP, ESME_ROK, 61]);
    const before = got.bytes().length;
    // Then a submit_sm cut at arbitrary (but fixed) points: inside the length, the header, a C-string, the message.
    const pdu = submitPdu(62, 'split across writes');
    for (const [a, z] of [
      [0, 2],
      [2, 7],
      [7, 17],
      [17, 30],
      [30, pdu.length],
    ] as const) {
      p.write(pdu.subarray(a, z));
      await sleep(3);
      if (z < pdu.length) assert.equal(got.bytes().length, before, `answered after only ${z} of ${pdu.length} bytes`);
    }
    const s = await p.read();
    assert.deepEqual([s?.id, s?.status, s?.seq], [SUBMIT_SM_RESP, ESME_ROK, 62]);
    await assertWitness(witness);
  });

  it('many PDUs in one TCP write are each answered once, with their own sequence numbers', async () => {
    const p = await boundPeer(h.port);
    const parts: Buffer[] = [];
    const expected = new Map<number, number>();
    for (let i = 0; i < 40; i++) {
      parts.push(rawPdu(ENQUIRE_LINK, 100 + 2 * i));
      expected.set(100 + 2 * i, ENQUIRE_LINK_RESP);
      parts.push(submitPdu(101 + 2 * i, `bulk ${i}`));
      expected.set(101 + 2 * i, SUBMIT_SM_RESP);
    }
    parts.push(rawPdu(0x00000099, 500));
    expected.set(500, GENERIC_NACK);
    p.write(Buffer.concat(parts));
    const seen = new Map<number, number>();
    for (let i = 0; i < expected.size; i++) {
      const r = await p.read();
      assert.ok(r, 'connection closed early');
      assert.equal(seen.has(r.seq), false, `seq ${r.seq} answered twice`);
      seen.set(r.seq, r.id);
      assert.equal(r.status, r.id === GENERIC_NACK ? ESME_RINVCMDID : ESME_ROK);
    }
    assert.deepEqual([...seen.entries()].sort((a, b) => a[0] - b[0]), [...expected.entries()].sort((a, b) => a[0] - b[0]));
    await assertNothingMore(p);
    await assertWitness(witness);
  });

  it('a response for a sequence number we never used is ignored; the session lives on', async () => {
    const p = await boundPeer(h.port);
    p.write(
      Buffer.concat([
        rawPdu(SUBMIT_SM_RESP, 999, cstr('not-ours')),
        rawPdu(0x80000005, 1000), // deliver_sm_resp
        rawPdu(GENERIC_NACK, 1001, Buffer.alloc(0), { status: ESME_RINVCMDID }),
        rawPdu(BIND_TRX_RESP, 1002, cstr('x')),
        rawPdu(ENQUIRE_LINK_RESP, 1003),
        rawPdu(0x80000099, 1004, Buffer.from([1, 2, 3])), // unknown response id
        rawPdu(SUBMIT_SM_RESP, 1005, Buffer.from('no terminating NUL')),
        rawPdu(ENQUIRE_LINK, 1006),
      ]),
    );
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [ENQUIRE_LINK_RESP, ESME_ROK, 1006], 'the stray responses get no answer of their own');
    p.write(submitPdu(1007));
    const s = await p.read();
    assert.deepEqual([s?.id, s?.status, s?.seq], [SUBMIT_SM_RESP, ESME_ROK, 1007]);
    await assertNothingMore(p);
    assert.equal(p.closed, false);
    await assertWitness(witness);
  });

  it('other sessions are unaffected while peers send garbage', async () => {
    const unknownFlood = await boundPeer(h.port);
    const badLength = await boundPeer(h.port);
    const noise = await rawPeer(h.port);
    const nacks = collect(unknownFlood.socket);
    const batch = Buffer.concat(Array.from({ length: 100 }, (_, i) => rawPdu(0x0000abcd, 10_000 + i, Buffer.alloc(i % 7, 0xee))));
    const flood = (async () => {
      for (let i = 0; i < 20; i++) {
        unknownFlood.write(batch);
        if (i === 5) badLength.write(rawPdu(SUBMIT_SM, 1, Buffer.alloc(0), { length: 3 }));
        if (i % 4 === 0) noise.write(Buffer.from('GET / HTTP/1.1\r\nHost: sluice\r\n\r\n'));
        await sleep(2);
      }
    })();
    const started = Date.now();
    await assertWitness(witness, 50);
    await flood;
    await assertWitness(witness, 10);
    assert.ok(Date.now() - started < 5000);
    // The flooding peer gets one generic_nack ESME_RINVCMDID per PDU, and nothing else.
    const deadline = Date.now() + 3000;
    while (nacks.bytes().length < 2000 * 16 && Date.now() < deadline) await sleep(10);
    const fs = frames(nacks.bytes());
    assert.equal(fs.length, 2000);
    for (const f of fs) assert.deepEqual([f.id, f.status], [GENERIC_NACK, ESME_RINVCMDID]);
    assert.equal(await badLength.waitClosed(), true);
    // "GET / HTTP/1.1" announces command_length 0x47455420 (> max): refused and closed.
    const n = await noise.read();
    assert.deepEqual([n?.id, n?.status], [GENERIC_NACK, ESME_RINVCMDLEN]);
    assert.equal(await noise.waitClosed(), true);
    assert.equal(unknownFlood.closed, false);
  });
});

describe('malformed input: window and backpressure', () => {
  it('a peer exceeding server.window gets ESME_RTHROTTLED for the excess, not unbounded buffering', async () => {
    let inHandler = 0;
    let maxInHandler = 0;
    const slow = async (): Promise<undefined> => {
      inHandler++;
      maxInHandler = Math.max(maxInHandler, inHandler);
      await sleep(300);
      inHandler--;
      return undefined; // the default: ESME_ROK with a generated message_id
    };
    const handlers = { acme: acceptAll({ pdu: { submit_sm: slow } }), globex: acceptAll() };
    const h = await startGateway({ config: testConfig({ server: { window: 2, response_timer_ms: 1000 } }), handlers });
    try {
      const witness = await h.esme('acme-2', { responseTimeoutMs: 3000 });
      const p = await boundPeer(h.port);
      const started = Date.now();
      p.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => submitPdu(10 + i))));
      // enquire_link is not a window slot: it is answered at once even with the window full.
      await sleep(20);
      p.write(rawPdu(ENQUIRE_LINK, 9));
      const throttled: number[] = [];
      const accepted: number[] = [];
      let sawEnquire = false;
      for (let i = 0; i < 51; i++) {
        const r = await p.read(3000);
        assert.ok(r, 'connection closed');
        if (r.id === ENQUIRE_LINK_RESP) {
          sawEnquire = true;
          assert.equal(accepted.length, 0, 'enquire_link answered while the window was still full');
          continue;
        }
        assert.equal(r.id, SUBMIT_SM_RESP);
        if (r.status === ESME_RTHROTTLED) {
          assert.equal(accepted.length, 0, 'the excess is refused at once, not after the slow ones finish');
          throttled.push(r.seq);
        } else {
          assert.equal(r.status, ESME_ROK);
          accepted.push(r.seq);
        }
      }
      assert.equal(sawEnquire, true);
      assert.deepEqual(accepted.sort((a, b) => a - b), [10, 11]);
      assert.deepEqual(throttled, Array.from({ length: 48 }, (_, i) => 12 + i));
      assert.ok(Date.now() - started >= 250, 'the two admitted submits waited for the handler');
      assert.equal(maxInHandler <= 3, true, `handler ran ${maxInHandler} at once`); // 2 from the peer, 1 from the witness at most
      // The window frees as answers go out: the next submit is admitted.
      p.write(submitPdu(70));
      const again = await p.read(3000);
      assert.deepEqual([again?.id, again?.status, again?.seq], [SUBMIT_SM_RESP, ESME_ROK, 70]);
      await assertWitness(witness);
    } finally {
      destroyPeers();
      await h.close();
    }
  });

  it('write backpressure: a peer that never reads is paused, gateway memory stays bounded, others still answered', { timeout: 20_000 }, async () => {
    const h = await startGateway({ config: testConfig({ server: { response_timer_ms: 1000 } }) });
    const sock = net.connect({ host: '127.0.0.1', port: h.port });
    peers.add(sock);
    sock.on('error', () => {});
    const connected = new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    try {
      await connected;
      const witness = await h.esme('acme-2', { responseTimeoutMs: 3000 });
      sock.write(rawPdu(BIND_TRX, 1, bindBody('acme-app')));
      const bindResp = await new Promise<Buffer>((resolve) => sock.once('data', resolve));
      assert.deepEqual([bindResp.readUInt32BE(4), bindResp.readUInt32BE(8)], [BIND_TRX_RESP, ESME_ROK]);
      sock.pause(); // from now on the peer never reads its socket

      const chunk = Buffer.concat(Array.from({ length: 4096 }, (_, i) => rawPdu(ENQUIRE_LINK, 2 + i))); // 64 KiB
      const limit = 32 * 1024 * 1024;
      const m0 = process.memoryUsage();
      const t0 = Date.now();
      let written = 0;
      let stalled = false;
      while (written < limit && Date.now() - t0 < 8000) {
        const more = sock.write(chunk);
        written += chunk.length;
        if (!more) {
          // Our own side never buffers more than one chunk: wait for room, or conclude the gateway stopped reading.
          const drained = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => {
              sock.off('drain', onDrain);
              resolve(false);
            }, 750);
            const onDrain = (): void => {
              clearTimeout(t);
              resolve(true);
            };
            sock.once('drain', onDrain);
          });
          if (!drained) {
            stalled = true;
            break;
          }
        }
      }
      await sleep(100);
      const m1 = process.memoryUsage();
      const rssGrowth = (m1.rss - m0.rss) / 2 ** 20;
      const externalGrowth = (m1.external - m0.external) / 2 ** 20;
      assert.ok(stalled, `the gateway kept reading ${written} bytes of enquire_link from a peer that reads nothing`);
      assert.ok(written < limit);
      assert.ok(rssGrowth < 100, `rss grew ${rssGrowth.toFixed(1)} MiB`);
      assert.ok(externalGrowth < 100, `external memory grew ${externalGrowth.toFixed(1)} MiB`);

      // Another session is answered promptly while this one is blocked.
      const t1 = Date.now();
      await assertWitness(witness, 5);
      assert.ok(Date.now() - t1 < 1000, 'the witness waited behind the blocked peer');

      // Once the peer reads again the gateway resumes it: every enquire_link gets its answer.
      let received = 0;
      sock.removeAllListeners('data');
      sock.on('data', (d: Buffer) => {
        received += d.length;
      });
      sock.resume();
      const t2 = Date.now();
      while (received < written && Date.now() - t2 < 8000) await sleep(20);
      assert.equal(received, written, 'one 16-byte enquire_link_resp per enquire_link after the peer resumed reading');
      await assertWitness(witness);
    } finally {
      destroyPeers();
      await h.close();
    }
  });
});

// ---- property-based fuzzing ------------------------------------------------------

/** Request command ids a peer might send, known and not. */
const KNOWN_REQUEST_IDS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0b, 0x15, 0x21, 0x102, 0x103];
const KNOWN_RESPONSE_IDS = [0x80000000, 0x80000001, 0x80000004, 0x80000005, 0x80000006, 0x80000009, 0x80000015, 0x80000103];

const commandIdArb = fc.oneof(
  fc.constantFrom(...KNOWN_REQUEST_IDS),
  fc.constantFrom(...KNOWN_RESPONSE_IDS),
  fc.integer({ min: 0, max: 0xffffffff }).filter((id) => id !== 0x06), // unbind would end the session on purpose
);

describe('malformed input: fuzz', () => {
  let h: Harness;
  let witness: EsmeClient;
  before(async () => {
    h = await startGateway({ config: testConfig({ server: { response_timer_ms: 1000 } }) });
    witness = await h.esme('acme-2', { responseTimeoutMs: 2000 });
  });
  afterEach(destroyPeers);
  after(async () => {
    destroyPeers();
    await h.close();
  });

  const fcOpts = (numRuns: number, salt: number): fc.Parameters<unknown> => ({
    numRuns,
    seed: FUZZ_SEED + salt,
    interruptAfterTimeLimit: 12_000,
  });

  it('random bytes after a valid bind: only well-formed answers, no crash, other sessions keep working', { timeout: 20_000 }, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (bytes) => {
        const p = await boundPeer(h.port);
        try {
          const got = collect(p.socket);
          p.write(Buffer.from(bytes));
          await settle(p, got);
          for (const f of frames(got.bytes())) assertWellFormedAnswer(f);
          await assertWitness(witness);
        } finally {
          peers.delete(p);
          p.destroy();
        }
      }),
      fcOpts(80, 1),
    );
    assert.ok(Date.now() - started < 15_000);
  });

  it('valid framing, random command ids, statuses and bodies: each request answered exactly once, responses ignored', { timeout: 20_000 }, async () => {
    const pduArb = fc.record({
      id: commandIdArb,
      status: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
      body: fc.uint8Array({ maxLength: 496 }), // command_length 16..512
    });
    await fc.assert(
      fc.asyncProperty(fc.array(pduArb, { minLength: 1, maxLength: 6 }), async (pdus) => {
        const p = await boundPeer(h.port);
        try {
          const got = collect(p.socket);
          const MARK = 0x7ffffff0;
          p.write(Buffer.concat([...pdus.map((x, i) => rawPdu(x.id, 1000 + i, Buffer.from(x.body), { status: x.status })), rawPdu(ENQUIRE_LINK, MARK)]));
          const requests = pdus.map((x, i) => ({ ...x, seq: 1000 + i })).filter((x) => !isResponseId(x.id));
          const deadline = Date.now() + 2000;
          let fs: Frame[] = [];
          for (;;) {
            fs = completeFrames(got.bytes());
            const seqs = new Set(fs.map((f) => f.seq));
            if ((seqs.has(MARK) && requests.every((r) => seqs.has(r.seq))) || p.closed || Date.now() > deadline) break;
            await sleep(2);
          }
          await sleep(5);
          fs = frames(got.bytes());
          for (const f of fs) assertWellFormedAnswer(f);
          const marker = fs.filter((f) => f.seq === MARK);
          assert.deepEqual(
            marker.map((f) => [f.id, f.status]),
            [[ENQUIRE_LINK_RESP, ESME_ROK]],
            'the session outlives the PDUs and answers enquire_link',
          );
          for (const r of requests) {
            const answers = fs.filter((f) => f.seq === r.seq);
            const hex = `0x${r.id.toString(16)}`;
            assert.equal(answers.length, 1, `request ${hex} seq ${r.seq} answered ${answers.length} times`);
            const a = answers[0]!;
            if (commandName(r.id) === undefined) {
              assert.deepEqual([a.id, a.status], [GENERIC_NACK, ESME_RINVCMDID], `unknown ${hex}`);
            } else {
              assert.ok(a.id === GENERIC_NACK || a.id === (r.id | 0x80000000) >>> 0, `${hex} answered with 0x${a.id.toString(16)}`);
            }
          }
          const requestSeqs = new Set(requests.map((r) => r.seq));
          for (const f of fs) {
            assert.ok(f.seq === MARK || requestSeqs.has(f.seq), `answer to seq ${f.seq}, which was a response PDU`);
          }
          assert.equal(p.closed, false);
          await assertWitness(witness);
        } finally {
          peers.delete(p);
          p.destroy();
        }
      }),
      fcOpts(100, 2),
    );
  });

  it('headers with random command_length 16..512 that disagree with the bytes sent: no crash, only well-formed answers', { timeout: 20_000 }, async () => {
    const pduArb = fc.record({
      length: fc.integer({ min: 16, max: 512 }),
      id: commandIdArb,
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      body: fc.uint8Array({ maxLength: 520 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(pduArb, { minLength: 1, maxLength: 4 }), async (pdus) => {
        const p = await boundPeer(h.port);
        try {
          const got = collect(p.socket);
          p.write(Buffer.concat(pdus.map((x) => rawPdu(x.id, x.seq, Buffer.from(x.body), { length: x.length }))));
          await settle(p, got);
          for (const f of frames(got.bytes())) assertWellFormedAnswer(f);
          await assertWitness(witness);
        } finally {
          peers.delete(p);
          p.destroy();
        }
      }),
      fcOpts(80, 3),
    );
  });
});

/** The whole PDUs at the front of `buf` (a read may stop mid-PDU). */
function completeFrames(buf: Buffer): Frame[] {
  let off = 0;
  while (buf.length - off >= 16) {
    const len = buf.readUInt32BE(off);
    if (len < 16 || buf.length - off < len) break;
    off += len;
  }
  return frames(buf.subarray(0, off));
}

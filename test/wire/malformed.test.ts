/**
 * Malformed and hostile input over real TCP (docs/design.md, "The boundary" and "Operations and their defaults"): each of npm
 * `smpp`'s session-layer failure modes — a bad command_length wedging or
 * crashing a session, no generic_nack for unknown commands, unbounded
 * buffering past the window or under write backpressure — must be impossible
 * in Sluice. Every test also checks that a second, normally bound ESME keeps
 * getting its submit_sm answered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_ROK } from '../../src/wire/status';
import { bindBody, cstr, rawPdu, sleep } from '../helpers/harness';
import { GENERIC_NACK, BIND_TRX, BIND_TRX_RESP, SUBMIT_SM, SUBMIT_SM_RESP, ENQUIRE_LINK, ENQUIRE_LINK_RESP, MAX_PDU, tlv, submitBody, submitPdu, frames, collect, assertNothingMore, rawPeer, boundPeer, assertWitness, useGatewayWithWitness } from '../helpers/raw-session';

// ---- the regression tests ---------------------------------------------------------

describe('malformed input: framing and commands', () => {
  const g = useGatewayWithWitness();

  it('command_length below 16: generic_nack ESME_RINVCMDLEN with the sequence number, then a clean close; nothing after it is read', async () => {
    for (const len of [0, 1, 4, 15]) {
      const p = await boundPeer(g.h.port);
      // A bad length followed by a perfectly good enquire_link: framing is lost, so it must not be answered.
      p.write(Buffer.concat([rawPdu(ENQUIRE_LINK, 42, Buffer.alloc(0), { length: len }), rawPdu(ENQUIRE_LINK, 43)]));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 42], `command_length ${len}`);
      assert.equal(r?.body.length, 0);
      assert.equal(await p.read(), undefined, `nothing after the bad command_length ${len} is answered`);
      assert.equal(await p.waitClosed(), true);
    }
    await assertWitness(g.witness);
  });

  it('command_length below 16 with fewer than 16 header bytes: generic_nack ESME_RINVCMDLEN with sequence 0, then a clean close', async () => {
    const p = await boundPeer(g.h.port);
    p.write(Buffer.from([0, 0, 0, 5]));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 0]);
    assert.equal(await p.waitClosed(), true);
    await assertWitness(g.witness);
  });

  it('command_length above max_pdu_bytes: generic_nack ESME_RINVCMDLEN at once (no waiting for the body), then a clean close', async () => {
    for (const len of [MAX_PDU + 1, 0x7fffffff, 0xffffffff]) {
      const p = await boundPeer(g.h.port);
      const started = Date.now();
      p.write(Buffer.concat([rawPdu(SUBMIT_SM, 77, Buffer.from('partial body'), { length: len }), rawPdu(ENQUIRE_LINK, 78)]));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 77], `command_length ${len}`);
      assert.equal(await p.read(), undefined, `nothing after command_length ${len} is answered`);
      assert.equal(await p.waitClosed(), true);
      assert.ok(Date.now() - started < 1500, 'the session is not wedged waiting for the announced body');
    }
    await assertWitness(g.witness);
  });

  it('command_length exactly max_pdu_bytes is accepted; one more is refused', async () => {
    const payloadFor = (total: number): Buffer => {
      const fixed = 16 + submitBody('31600000000', Buffer.alloc(0)).length + 4;
      return tlv(0x0424, Buffer.alloc(total - fixed, 0x41)); // message_payload
    };
    const ok = await boundPeer(g.h.port);
    const atMax = rawPdu(SUBMIT_SM, 5, submitBody('31600000000', Buffer.alloc(0), payloadFor(MAX_PDU)));
    assert.equal(atMax.length, MAX_PDU);
    ok.write(atMax);
    const r1 = await ok.read();
    assert.deepEqual([r1?.id, r1?.status, r1?.seq], [SUBMIT_SM_RESP, ESME_ROK, 5]);

    const bad = await boundPeer(g.h.port);
    const overMax = rawPdu(SUBMIT_SM, 6, submitBody('31600000000', Buffer.alloc(0), payloadFor(MAX_PDU + 1)));
    assert.equal(overMax.length, MAX_PDU + 1);
    bad.write(overMax);
    const r2 = await bad.read();
    assert.deepEqual([r2?.id, r2?.status, r2?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 6]);
    assert.equal(await bad.waitClosed(), true);
    await assertWitness(g.witness);
  });

  it('unknown command_id: generic_nack ESME_RINVCMDID with the PDU sequence number; the session lives on', async () => {
    const p = await boundPeer(g.h.port);
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
    await assertWitness(g.witness);
  });

  it('unknown command_id before bind: generic_nack ESME_RINVCMDID; the connection can still bind', async () => {
    const p = await rawPeer(g.h.port);
    p.write(rawPdu(0x00000099, 3));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDID, 3]);
    p.write(rawPdu(BIND_TRX, 4, bindBody('acme-app')));
    const b = await p.read();
    assert.deepEqual([b?.id, b?.status, b?.seq], [BIND_TRX_RESP, ESME_ROK, 4]);
    await assertWitness(g.witness);
  });

  it('known command whose body does not parse (a TLV value running past the PDU): generic_nack ESME_RINVCMDLEN; the session lives on', async () => {
    const p = await boundPeer(g.h.port);
    // user_message_reference (0x0204, int16) announcing 2 octets with only 1 left in the PDU.
    const truncatedTlv = Buffer.concat([submitBody('31600000000', Buffer.from('hi')), Buffer.from([0x02, 0x04, 0x00, 0x02, 0x01])]);
    p.write(rawPdu(SUBMIT_SM, 21, truncatedTlv));
    const r = await p.read();
    assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 21]);
    p.write(rawPdu(ENQUIRE_LINK, 22));
    const e = await p.read();
    assert.deepEqual([e?.id, e?.status, e?.seq], [ENQUIRE_LINK_RESP, ESME_ROK, 22]);
    await assertWitness(g.witness);
  });

  it(
    'submit_sm with command_length 17 and 1 body byte: generic_nack ESME_RINVCMDLEN; the session lives on',
    async () => {
      const p = await boundPeer(g.h.port);
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
      await assertWitness(g.witness);
    },
  );

  it(
    'bind_transceiver truncated mid-field: generic_nack ESME_RINVCMDLEN, not a bind; the session lives on',
    async () => {
      const p = await rawPeer(g.h.port);
      // system_id "acme-app" complete, password cut after one octet (no NUL), the rest missing.
      p.write(rawPdu(BIND_TRX, 41, Buffer.from('acme-app\0p', 'latin1')));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 41]);
      p.write(rawPdu(BIND_TRX, 42, bindBody('acme-app')));
      const b = await p.read();
      assert.deepEqual([b?.id, b?.status, b?.seq], [BIND_TRX_RESP, ESME_ROK, 42]);
      await assertWitness(g.witness);
    },
  );

  it(
    'submit_sm whose sm_length runs past the PDU: generic_nack ESME_RINVCMDLEN, not a silently truncated message',
    async () => {
      const p = await boundPeer(g.h.port);
      const body = submitBody('31600000000', Buffer.from('abc'));
      body[body.length - 4] = 200; // sm_length
      p.write(rawPdu(SUBMIT_SM, 51, body));
      const r = await p.read();
      assert.deepEqual([r?.id, r?.status, r?.seq], [GENERIC_NACK, ESME_RINVCMDLEN, 51]);
      await assertWitness(g.witness);
    },
  );

  it('a PDU split into single-byte TCP writes is reassembled and answered only when complete', async () => {
    const p = await rawPeer(g.h.port);
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
    await assertWitness(g.witness);
  });

  it('many PDUs in one TCP write are each answered once, with their own sequence numbers', async () => {
    const p = await boundPeer(g.h.port);
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
    await assertWitness(g.witness);
  });

  it('a response for a sequence number we never used is ignored; the session lives on', async () => {
    const p = await boundPeer(g.h.port);
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
    await assertWitness(g.witness);
  });

  it('other sessions are unaffected while peers send garbage', async () => {
    const unknownFlood = await boundPeer(g.h.port);
    const badLength = await boundPeer(g.h.port);
    const noise = await rawPeer(g.h.port);
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
    await assertWitness(g.witness, 50);
    await flood;
    await assertWitness(g.witness, 10);
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

import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { serialize } from 'node:v8';
import { after, before, describe, it } from 'node:test';
import { Channel, genericFrame } from '../../src/sandbox-protocol/channel';
import { encodePdu } from '../../src/wire/codec';

type Msg = { t: string; [k: string]: unknown };

/** Two ends of a real loopback connection. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect((server.address() as { port: number }).port, '127.0.0.1');
  const b = await accepted;
  await new Promise<void>((r) => (a.readyState === 'open' ? r() : a.once('connect', () => r())));
  server.close();
  // When one end is destroyed the other may see ECONNRESET: expected here, not a test failure.
  for (const s of [a, b]) s.on('error', () => undefined);
  return [a, b];
}

describe('sandbox channel', () => {
  let a: Socket;
  let b: Socket;
  const got: Msg[] = [];
  let tx: Channel<Msg, Msg>;
  before(async () => {
    [a, b] = await socketPair();
    tx = new Channel<Msg, Msg>(a, () => {});
    new Channel<Msg, Msg>(b, (m) => got.push(m));
  });
  after(() => {
    a.destroy();
    b.destroy();
  });
  const receive = async (n: number): Promise<Msg[]> => {
    for (let i = 0; i < 200 && got.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    return got.splice(0, got.length);
  };

  it('a frame written by genericFrame outside any Channel (the sentry) is read like one a Channel sent, between its frames', async () => {
    tx.send({ t: 'before' });
    await receive(1);
    a.write(genericFrame({ t: 'fatal', tenant: 'x', message: 'inline entry' }));
    tx.send({ t: 'after' });
    assert.deepEqual(await receive(2), [{ t: 'fatal', tenant: 'x', message: 'inline entry' }, { t: 'after' }]);
  });

  it('carries a PDU for a policy as its raw frame, with tenant and session, byte-exact', async () => {
    const frame = encodePdu('submit_sm', 7, 0, { destination_addr: '316', short_message: Buffer.from([0, 1, 0xff]) });
    const session = { kind: 'esme', sessionId: 's1', systemId: 'ünï', clientAddr: '127.0.0.1:1' };
    tx.send({ t: 'dispatch', id: 2 ** 40 + 3, tenant: 'acmé', kind: 'pdu', payload: { frame, session } });
    tx.send({ t: 'dispatch', id: 5, tenant: 'acmé', kind: 'pdu', payload: { frame, session } });
    const [m1, m2] = await receive(2);
    assert.equal(m1!.id, 2 ** 40 + 3, 'ids past 2^32 survive');
    assert.equal(m1!.tenant, 'acmé');
    const p = m1!.payload as { frame: Uint8Array; session: unknown };
    assert.deepEqual(Buffer.from(p.frame), frame);
    assert.deepEqual(p.session, session);
    assert.equal((m2!.payload as { session: unknown }).session, p.session, 'a session view is parsed once');
  });

  it('names sessions by number: each view crosses once, and after 4096 of them both sides start over', async () => {
    const frame = encodePdu('enquire_link', 1, 0);
    const views = Array.from({ length: 5000 }, (_, i) => ({ kind: 'esme', sessionId: `s${i}`, systemId: 'x', clientAddr: '' }));
    for (let round = 0; round < 2; round++) for (let i = 0; i < views.length; i++) tx.send({ t: 'dispatch', id: i, tenant: 't', kind: 'pdu', payload: { frame, session: views[i]! } });
    const ms = await receive(10_000);
    assert.equal(ms.length, 10_000);
    ms.forEach((m, i) => assert.deepEqual((m.payload as { session: unknown }).session, views[i % 5000]));
  });

  it('carries the common answers in binary and everything else as a structured clone', async () => {
    const outcomes = [
      { kind: 'default' },
      { kind: 'reply', status: 0 },
      { kind: 'reply', status: 0x58, fields: {} },
      { kind: 'reply', status: 0, fields: { message_id: 'm-ü-1' } },
      { kind: 'reply', status: 0, fields: { message_id: 'x', message_state: 2 } },
      { kind: 'error', reason: 'throw', message: 'boom' },
    ];
    outcomes.forEach((outcome, i) => tx.send({ t: 'outcome', id: i, outcome }));
    tx.send({ t: 'hostCall', id: 9, tenant: 'x', op: 'sendTo', args: { fields: { short_message: new Uint8Array([1, 2]) } } });
    const ms = await receive(outcomes.length + 1);
    assert.deepEqual(
      ms.slice(0, outcomes.length).map((m) => m.outcome),
      outcomes,
    );
    assert.deepEqual(ms.at(-1), { t: 'hostCall', id: 9, tenant: 'x', op: 'sendTo', args: { fields: { short_message: new Uint8Array([1, 2]) } } });
  });

  it('structured clones sent back to back go as one batch, and keep their order among binary frames', async () => {
    // What the sender writes, frame by frame.
    const frames: number[] = [];
    const capture = new Channel<Msg, Msg>(
      {
        on: () => undefined,
        write: (x: Buffer) => {
          for (let off = 0; off < x.length; off += 4 + x.readUInt32LE(off)) frames.push(x[off + 4]!);
        },
        writable: true,
      } as never,
      () => {},
    );
    const session = { kind: 'esme', sessionId: 's1', systemId: 'x', clientAddr: '' };
    const frame = encodePdu('enquire_link', 1, 0);
    const sent: Msg[] = [
      { t: 'hostResult', id: 1, ok: true, value: { a: [1, 2] } },
      { t: 'hostResult', id: 2, ok: true, value: null },
      { t: 'dispatch', id: 3, tenant: 't', kind: 'pdu', payload: { frame, session } },
      { t: 'hostResult', id: 4, ok: false, value: { code: 'X', message: 'y' } },
      { t: 'outcome', id: 5, outcome: { kind: 'default' } },
      ...Array.from({ length: 70 }, (_, i) => ({ t: 'log', n: i })),
    ];
    for (const m of sent) {
      capture.send(m);
      tx.send(m);
    }
    capture.flush();
    // batch(2), session view, PDU, single clone, outcome, batch(64), batch(6)
    assert.deepEqual(frames, [6, 4, 1, 0, 2, 6, 6]);
    const ms = await receive(sent.length);
    assert.equal(ms.length, sent.length);
    ms.forEach((m, i) => {
      const want = sent[i]!;
      if (want.t === 'dispatch') assert.equal(m.id, 3);
      else assert.deepEqual(m, want);
    });
  });

  it('a message that cannot be cloned is dropped and reported; the rest of its batch still arrives', async () => {
    const [c, d] = await socketPair();
    const seen: Msg[] = [];
    new Channel<Msg, Msg>(d, (m) => seen.push(m));
    const unsendable: string[] = [];
    const out = new Channel<Msg, Msg>(c, () => {}, (m, err) => unsendable.push(`${m.t}: ${err.message}`));
    try {
      out.send({ t: 'log', n: 1 });
      out.send({ t: 'hostResult', id: 2, ok: true, value: () => 'a function' });
      out.send({ t: 'log', n: 3 });
      for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(seen, [
        { t: 'log', n: 1 },
        { t: 'log', n: 3 },
      ]);
      assert.equal(unsendable.length, 1);
      assert.match(unsendable[0]!, /^hostResult: .*could not be cloned/);
    } finally {
      c.destroy();
      d.destroy();
    }
  });

  it('reassembles frames split anywhere, and a large one', async () => {
    const big = 'x'.repeat(300_000);
    const [c, d] = await socketPair();
    const sink = new Channel<Msg, Msg>(d, (m) => got.push(m));
    // Frames as a sender would write them, delivered a few bytes at a time.
    const bytes: Buffer[] = [];
    const capture = new Channel<Msg, Msg>({ on: () => undefined, write: (x: Buffer) => bytes.push(Buffer.from(x)), writable: true } as never, () => {});
    capture.send({ t: 'log', msg: big });
    capture.send({ t: 'outcome', id: 1, outcome: { kind: 'default' } });
    capture.flush();
    const all = Buffer.concat(bytes);
    for (let i = 0; i < all.length; i += 7) c.write(all.subarray(i, i + 7));
    const ms = await receive(2);
    assert.equal(ms[0]!.msg, big);
    assert.deepEqual(ms[1], { t: 'outcome', id: 1, outcome: { kind: 'default' } });
    void sink;
    c.destroy();
    d.destroy();
  });

  it('a frame with an impossible length closes the channel instead of reading garbage', async () => {
    const [c, d] = await socketPair();
    const sink = new Channel<Msg, Msg>(d, (m) => got.push(m));
    const closed = new Promise((r) => d.once('close', r));
    c.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0]));
    await closed;
    assert.equal(sink.open, false);
    assert.equal(got.length, 0);
    c.destroy();
  });
});

describe('sandbox channel: frames that do not decode', () => {
  it('a garbled structured clone or a short binary frame closes the channel and never throws into the reader', async () => {
    for (const bad of [
      Buffer.from([3, 0, 0, 0, 0, 0xff, 0x0d]), // GENERIC: not a V8 serialisation
      Buffer.from([3, 0, 0, 0, 3, 1, 2]), // OUTCOME_REPLY shorter than its id and status
      Buffer.from([2, 0, 0, 0, 1, 9]), // PDU with no room for its id
      Buffer.from([15, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x74, 7, 0, 0, 0]), // PDU naming a session view never sent
      (() => {
        const body = serialize({ t: 'not a list' });
        return Buffer.concat([Buffer.from([body.length + 1, 0, 0, 0, 6]), body]);
      })(), // GENERIC_BATCH that is not a list of messages
      (() => {
        const body = serialize([{ t: 'log' }, 42]);
        return Buffer.concat([Buffer.from([body.length + 1, 0, 0, 0, 6]), body]);
      })(), // GENERIC_BATCH with something that is not a message
    ]) {
      const [c, d] = await socketPair();
      const got: Msg[] = [];
      const sink = new Channel<Msg, Msg>(d, (m) => got.push(m));
      const closed = new Promise((r) => d.once('close', r));
      c.write(bad);
      await closed;
      assert.equal(sink.open, false);
      assert.equal(got.length, 0);
      c.destroy();
    }
  });
});

/**
 * Malformed input over real TCP, property-based: arbitrary frames and
 * commands get a well-formed answer or a clean close, never a crash, and the
 * second ESME keeps getting answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { commandName, isResponseId } from '../../src/wire/codec';
import { ESME_RINVCMDID, ESME_ROK } from '../../src/wire/status';
import { rawPdu, sleep } from '../helpers/harness';
import { GENERIC_NACK, ENQUIRE_LINK, ENQUIRE_LINK_RESP, FUZZ_SEED, type Frame, frames, assertWellFormedAnswer, collect, settle, peers, boundPeer, assertWitness, useGatewayWithWitness } from '../helpers/raw-session';

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
  const g = useGatewayWithWitness();

  /** `bytes` from a freshly bound raw peer: every answer well formed, and the witness still answered. */
  async function sendToBoundPeer(bytes: Buffer): Promise<void> {
    const p = await boundPeer(g.h.port);
    try {
      const got = collect(p.socket);
      p.write(bytes);
      await settle(p, got);
      for (const f of frames(got.bytes())) assertWellFormedAnswer(f);
      await assertWitness(g.witness);
    } finally {
      peers.delete(p);
      p.destroy();
    }
  }

  const fcOpts = (numRuns: number, salt: number): fc.Parameters<unknown> => ({
    numRuns,
    seed: FUZZ_SEED + salt,
    interruptAfterTimeLimit: 12_000,
  });

  it('random bytes after a valid bind: only well-formed answers, no crash, other sessions keep working', { timeout: 20_000 }, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (bytes) => {
        await sendToBoundPeer(Buffer.from(bytes));
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
        const p = await boundPeer(g.h.port);
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
          await assertWitness(g.witness);
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
        await sendToBoundPeer(Buffer.concat(pdus.map((x) => rawPdu(x.id, x.seq, Buffer.from(x.body), { length: x.length }))));
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

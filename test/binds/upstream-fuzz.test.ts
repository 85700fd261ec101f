/**
 * Property-based fuzzing of what an upstream SMSC sends on an outbound bind
 * (fast-check), over real TCP into the shipped gateway policy in the real
 * sandbox: random deliver_sm (receipts or not, any esm_class, bodies and
 * TLVs), data_sm, alert_notification and unknown commands. Every request is
 * answered exactly once, the bind stays up, and an ESME beside it is served.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { TestEsme } from '../helpers/esme';
import { cstr, freePort, rawPdu, sandboxedSetup, sleep, until } from '../helpers/harness';

const GATEWAY = readFileSync(path.resolve(__dirname, '../../../policies/gateway.ts'), 'utf8');
const MARK = 0x7ffffff0;

/** An upstream that answers binds and enquire_links, and keeps every frame the gateway sends it. */
class FuzzUpstream {
  readonly got: { id: number; status: number; seq: number }[] = [];
  socket: net.Socket | undefined;
  private readonly server = net.createServer((s) => {
    this.socket = s;
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 16 && buf.length >= buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const f = buf.subarray(0, len);
        buf = buf.subarray(len);
        const id = f.readUInt32BE(4);
        const seq = f.readUInt32BE(12);
        if (id === 0x09) s.write(rawPdu(0x80000009, seq, cstr('fuzz')));
        else if (id === 0x15) s.write(rawPdu(0x80000015, seq));
        else if (id === 0x04) s.write(rawPdu(0x80000004, seq, cstr(`F${seq.toString(16)}`)));
        else this.got.push({ id, status: f.readUInt32BE(8), seq });
      }
    });
    s.on('error', () => {});
  });

  listen(port: number): Promise<void> {
    return new Promise((r) => this.server.listen(port, '127.0.0.1', () => r()));
  }

  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A deliver_sm body with the given parts, optional receipt TLVs after it. */
function deliverBody(p: { src: string; dst: string; esm: number; dcs: number; sm: Uint8Array; rid?: string; state?: number }): Buffer {
  const tlvs: Buffer[] = [];
  if (p.rid !== undefined) {
    const v = cstr(p.rid);
    const h = Buffer.alloc(4);
    h.writeUInt16BE(0x001e, 0);
    h.writeUInt16BE(v.length, 2);
    tlvs.push(h, v);
  }
  if (p.state !== undefined) tlvs.push(Buffer.from([0x04, 0x27, 0x00, 0x01, p.state]));
  return Buffer.concat([cstr(''), Buffer.from([0, 0]), cstr(p.src), Buffer.from([0, 0]), cstr(p.dst), Buffer.from([p.esm, 0, 0]), cstr(''), cstr(''), Buffer.from([0, 0, p.dcs, 0, p.sm.length]), p.sm, ...tlvs]);
}

const text = fc.stringMatching(/^[ -~]{0,20}$/);
const hex = (max: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-fA-F]{0,${max}}$`));
const receiptText = fc.tuple(hex(24), fc.constantFrom('DELIVRD', 'UNDELIV', 'ENROUTE', 'EXPIRED', 'x'), fc.string({ maxLength: 40 })).map(([id, st, rest]) => Buffer.from(`id:${id} sub:001 dlvrd:001 submit date:2612031200 done date:2612031201 stat:${st} err:000 text:${rest}`, 'latin1').subarray(0, 254));
const deliverArb = fc.record({
  src: text,
  dst: fc.oneof(fc.constant('4470123'), fc.constant('4412345'), text),
  esm: fc.oneof(fc.constantFrom(0, 0x04, 0x20, 0x40, 0x44), fc.integer({ min: 0, max: 255 })),
  dcs: fc.constantFrom(0, 1, 3, 4, 8, 0xf0, 0x25),
  sm: fc.oneof(receiptText, fc.uint8Array({ maxLength: 254 })),
  rid: fc.option(hex(30), { nil: undefined }),
  state: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
});
const pduArb = fc.oneof(
  { weight: 6, arbitrary: deliverArb.map((d) => ({ id: 0x05, body: deliverBody(d) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ id: 0x05, body: Buffer.from(b) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }).map((b) => ({ id: 0x103, body: Buffer.from(b) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((b) => ({ id: 0x102, body: Buffer.from(b) })) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0x10, max: 0x7fffffff }), fc.uint8Array({ maxLength: 60 })).map(([id, b]) => ({ id: id === 0x06 ? 0x07 : id, body: Buffer.from(b) })) },
);

describe('outbound bind: fuzzing what an upstream sends', () => {
  let sluice: Sluice;
  let up: FuzzUpstream;
  let dir: string;
  before(async () => {
    const port = await freePort();
    up = new FuzzUpstream();
    await up.listen(port);
    const s = sandboxedSetup(
      { gateway: GATEWAY },
      {
        tenants: [
          {
            id: 'acme',
            policy: 'gateway.ts',
            system_ids: ['acme-app', 'acme-batch'],
            limits: { handler_deadline_ms: 2000 },
            settings: { esmes: { 'acme-app': 'acme-pw', 'acme-batch': 'batch-pw' }, mo_routes: { '4470': 'acme-batch' }, mo_default: 'acme-app' },
            binds: [{ name: 'up', host: '127.0.0.1', port, system_id: 'acme' }],
            routing: { default_chain: ['bind:up', 'queue'] },
          },
        ],
      },
    );
    dir = s.dir;
    sluice = await startSluice({ config: s.config, logger: silentLogger, cwd: dir, watch: false, reconnectBaseMs: 50 });
    await until(() => sluice.gateway.binds('acme')[0]!.state === 'bound', 8000);
  });
  after(async () => {
    await sluice.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every request is answered once, the bind stays up, the gateway lives, an ESME beside it is served', { timeout: 60_000 }, async () => {
    const esme = await TestEsme.bind(sluice.port);
    let seq = 1;
    await fc.assert(
      fc.asyncProperty(fc.array(pduArb, { minLength: 1, maxLength: 8 }), async (pdus) => {
        const sent = pdus.map((p) => ({ ...p, seq: seq++ }));
        const mark = MARK - seq;
        up.socket!.write(Buffer.concat([...sent.map((p) => rawPdu(p.id, p.seq, p.body)), rawPdu(0x15, mark)]));
        // Those with an answer in SMPP: all but alert_notification.
        const want = sent.filter((p) => p.id !== 0x102);
        const end = Date.now() + 5000;
        while (!want.every((p) => up.got.some((g) => g.seq === p.seq)) && Date.now() < end) await sleep(5);
        for (const p of want) {
          const answers = up.got.filter((g) => g.seq === p.seq);
          assert.equal(answers.length, 1, `0x${p.id.toString(16)} seq ${p.seq} answered ${answers.length} times`);
          assert.ok(answers[0]!.id === 0x80000000 || answers[0]!.id === (p.id | 0x80000000) >>> 0, `answered with 0x${answers[0]!.id.toString(16)}`);
        }
        assert.equal(sluice.gateway.binds('acme')[0]!.state, 'bound');
        assert.equal((await esme.client.request('enquire_link')).command_status, 0);
      }),
      { numRuns: 60, seed: 0x5ee1, interruptAfterTimeLimit: 30_000 },
    );
    assert.equal((await esme.submit('after')).command_status, 0);
    esme.close();
  });
});

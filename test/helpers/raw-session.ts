/** Raw SMPP peers and frame readers the malformed-input tests share: command ids, PDU builders, reading and settling, the witness ESME. */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, afterEach, before } from 'node:test';
import type { EsmeClient } from '../../src/tools/esme-client';
import { commandName, decodePdu, isResponseId } from '../../src/wire/codec';
import { ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_ROK } from '../../src/wire/status';
import { bindBody, cstr, RawPeer, rawPdu, sleep, startGateway, testConfig, type Harness } from './harness';

export const GENERIC_NACK = 0x80000000;
export const BIND_TRX = 0x00000009;
export const BIND_TRX_RESP = 0x80000009;
export const SUBMIT_SM = 0x00000004;
export const SUBMIT_SM_RESP = 0x80000004;
export const ENQUIRE_LINK = 0x00000015;
export const ENQUIRE_LINK_RESP = 0x80000015;
export const MAX_PDU = 16384; // server.max_pdu_bytes default
/** Fixed so a failure reproduces; set SLUICE_FUZZ_SEED to explore other inputs. */
export const FUZZ_SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20240611);

// ---- PDU building ---------------------------------------------------------------

export function tlv(tag: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + value.length);
  b.writeUInt16BE(tag, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/** A complete submit_sm body: every mandatory field, then optional TLV bytes. */
export function submitBody(dest: string, msg: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
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

export const submitPdu = (seq: number, text = 'hi'): Buffer => rawPdu(SUBMIT_SM, seq, submitBody('31600000000', Buffer.from(text)));

// ---- reading ------------------------------------------------------------------

export interface Frame {
  id: number;
  status: number;
  seq: number;
  body: Buffer;
}

/**
 * Splits what the gateway sent into PDUs, asserting the framing is sound: every
 * command_length is 16..max_pdu_bytes and nothing is left over.
 */
export function frames(buf: Buffer): Frame[] {
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
export function assertWellFormedAnswer(f: Frame): void {
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
export function collect(socket: net.Socket): { bytes: () => Buffer; quietMs: () => number } {
  const chunks: Buffer[] = [];
  let last = Date.now();
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    last = Date.now();
  });
  return { bytes: () => Buffer.concat(chunks), quietMs: () => Date.now() - last };
}

/** Wait until the peer is closed or nothing has arrived for `quietMs` (bounded by `maxMs`). */
export async function settle(p: RawPeer, c: { quietMs: () => number }, quietMs = 25, maxMs = 1500): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!p.closed && c.quietMs() < quietMs && Date.now() < deadline) await sleep(5);
}

/** Nothing more arrives within `ms` (the connection may be open or closed). */
export async function assertNothingMore(p: RawPeer, ms = 60): Promise<void> {
  try {
    const extra = await p.read(ms);
    assert.equal(extra, undefined, `unexpected PDU 0x${extra?.id.toString(16)} seq ${extra?.seq}`);
  } catch (err) {
    if (!/timed out/.test((err as Error).message)) throw err;
  }
}

// ---- sessions -----------------------------------------------------------------

export const peers = new Set<RawPeer | net.Socket>();

export async function rawPeer(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  peers.add(p);
  return p;
}

/** A raw TCP peer bound as `systemId` with sequence number 1. */
export async function boundPeer(port: number, systemId = 'acme-app'): Promise<RawPeer> {
  const p = await rawPeer(port);
  p.write(rawPdu(BIND_TRX, 1, bindBody(systemId)));
  const r = await p.read();
  assert.deepEqual([r?.id, r?.status, r?.seq], [BIND_TRX_RESP, ESME_ROK, 1], 'bind of the raw peer');
  return p;
}

export function destroyPeers(): void {
  for (const p of peers) p.destroy();
  peers.clear();
}

/** The well-behaved second session still gets submit_sm answered. */
export async function assertWitness(c: EsmeClient, n = 1): Promise<void> {
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

/**
 * The gateway a malformed-input test talks to, and a second, normally bound
 * ESME (the witness) that must keep getting answers. A short response timer,
 * so stopping does not wait 30 s for raw peers that never answer unbind.
 */
export async function gatewayWithWitness(): Promise<{ h: Harness; witness: EsmeClient }> {
  const h = await startGateway({ config: testConfig({ server: { response_timer_ms: 1000 } }) });
  return { h, witness: await h.esme('acme-2', { responseTimeoutMs: 2000 }) };
}

/**
 * The suite's gateway and witness (gatewayWithWitness), started before its
 * tests; every raw peer destroyed after each test, the gateway closed at the
 * end. Call inside a `describe`; read `h` and `witness` in the tests.
 */
export function useGatewayWithWitness(): { readonly h: Harness; readonly witness: EsmeClient } {
  let got: { h: Harness; witness: EsmeClient } | undefined;
  before(async () => {
    got = await gatewayWithWitness();
  });
  afterEach(destroyPeers);
  after(async () => {
    destroyPeers();
    await got?.h.close();
  });
  return {
    get h() {
      return got!.h;
    },
    get witness() {
      return got!.witness;
    },
  };
}


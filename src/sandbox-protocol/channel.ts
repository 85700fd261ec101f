import type { Duplex } from 'node:stream';
import { deserialize, serialize } from 'node:v8';
import { atTurnEnd } from '../util/turn';

/**
 * The core ↔ sandbox channel: length-prefixed frames on a socket pair, in
 * place of Node's IPC channel. Everything sent in one turn goes out in one
 * write. The hot messages — a PDU for a policy (its raw SMPP frame) and the
 * common answers (default, or a status with at most a message_id) — have
 * binary frames of their own; every other message is a V8 structured clone,
 * as Node's `advanced` IPC serialisation would make it, and such messages
 * sent back to back (a turn's host calls and their results) go as one clone
 * of their array: a serializer per message cost more than the message. One
 * channel carries all of them, in the order they were sent.
 *
 * Frame: u32 body length, u8 type, body.
 */

const GENERIC = 0;
const PDU = 1;
const OUTCOME_DEFAULT = 2;
const OUTCOME_REPLY = 3;
/** A session view, sent once before the first PDU that names it by number. */
const SESSION = 4;
/** The sender forgot its session numbers; so does the receiver. */
const SESSIONS_RESET = 5;
/** Structured-clone messages sent back to back, as one clone of their array. */
const GENERIC_BATCH = 6;
/** Messages in one GENERIC_BATCH, and the body size past which a batch goes as single frames instead. */
const MAX_BATCH = 64;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** Session numbers a sender hands out before it starts over (bounds the receiver's map). */
const MAX_SESSIONS = 4096;

const HEAD = 5;
/** Largest frame either side accepts: far above any PDU or policy source. */
const MAX_FRAME = 64 * 1024 * 1024;

/** The shapes the channel has binary frames for; anything else goes as a structured clone. */
interface PduDispatch {
  t: 'dispatch';
  id: number;
  tenant: string;
  kind: 'pdu';
  payload: { frame: Uint8Array; session: object };
}

interface OutcomeMessage {
  t: 'outcome';
  id: number;
  outcome: { kind: string; status?: number; fields?: Record<string, unknown> };
}

function isPduDispatch(m: { t: string }): m is PduDispatch {
  const d = m as Partial<PduDispatch>;
  return d.t === 'dispatch' && d.kind === 'pdu' && !!d.payload && d.payload.frame instanceof Uint8Array && Buffer.byteLength(d.tenant!) < 256;
}

/** An outcome a binary frame can carry: the default, or a status with nothing but a string message_id. */
function simpleReply(m: { t: string }): { status: number; fields: 0 | 1 | 2; messageId: string } | 'default' | undefined {
  if (m.t !== 'outcome') return undefined;
  const o = (m as OutcomeMessage).outcome;
  if (o.kind === 'default') return 'default';
  if (o.kind !== 'reply' || typeof o.status !== 'number' || o.status < 0 || o.status > 0xffffffff || !Number.isInteger(o.status)) return undefined;
  const f = o.fields;
  if (f === undefined) return { status: o.status, fields: 0, messageId: '' };
  let messageId: string | undefined;
  for (const k in f) {
    if (k !== 'message_id' || typeof f[k] !== 'string') return undefined;
    messageId = f[k] as string;
  }
  return messageId === undefined ? { status: o.status, fields: 2, messageId: '' } : { status: o.status, fields: 1, messageId };
}

/**
 * One message as a frame of its own (a structured clone), for a writer that
 * is not a Channel: the sentry's thread, writing to the channel's socket
 * while the thread that owns the Channel is stuck.
 */
export function genericFrame(m: object): Buffer {
  const body = serialize(m);
  const frame = Buffer.allocUnsafe(HEAD + body.length);
  writeHead(frame, 0, GENERIC, body.length);
  body.copy(frame, HEAD);
  return frame;
}

/** A frame's header at `at`: its length after the length field (type byte + body), then its type. */
function writeHead(b: Buffer, at: number, type: number, len: number): void {
  b.writeUInt32LE(len + 1, at);
  b[at + 4] = type;
}

export class Channel<In extends { t: string }, Out extends { t: string }> {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private pos = 0;
  private scheduled = false;
  private pending: Buffer | undefined;
  /** Numbers of the session views sent so far (each view object is sent once). */
  private sessionNumbers = new WeakMap<object, number>();
  private sessionsSent = 0;
  /** The other side's session views, by number. */
  private readonly sessions = new Map<number, object>();
  private closed = false;
  /** Structured-clone messages waiting to go as one batch, ahead of anything sent after them. */
  private generic: Out[] = [];

  /**
   * `onUnsendable` hears of a message that cannot be cloned (it is dropped,
   * the rest of its batch still goes). Clones are made when the batch is
   * written, so the sender's call has returned by then.
   */
  constructor(
    private readonly socket: Duplex,
    private readonly onMessage: (m: In) => void,
    private readonly onUnsendable: (m: Out, err: Error) => void = (m, err) => process.emitWarning(`sandbox channel: a '${m.t}' message cannot be sent: ${err.message}`),
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  get open(): boolean {
    return !this.closed && this.socket.writable;
  }

  /**
   * Queue `m` for this turn's write. A structured-clone message is cloned when
   * its batch is written, later in the turn: what is sent must not change
   * after it is sent (every caller sends objects made for the message).
   */
  send(m: Out): void {
    if (this.closed) return;
    if (isPduDispatch(m)) {
      this.writeGeneric();
      this.writePdu(m);
    } else {
      const r = simpleReply(m);
      if (r !== undefined) this.writeGeneric();
      if (r === 'default') {
        this.head(OUTCOME_DEFAULT, 8);
        this.buf.writeDoubleLE((m as unknown as OutcomeMessage).id, this.pos);
        this.pos += 8;
      } else if (r) {
        const idLen = Buffer.byteLength(r.messageId);
        this.head(OUTCOME_REPLY, 13 + idLen);
        this.buf.writeDoubleLE((m as unknown as OutcomeMessage).id, this.pos);
        this.buf.writeUInt32LE(r.status, this.pos + 8);
        this.buf[this.pos + 12] = r.fields;
        if (idLen) this.buf.write(r.messageId, this.pos + 13);
        this.pos += 13 + idLen;
      } else {
        this.generic.push(m);
        if (this.generic.length >= MAX_BATCH) this.writeGeneric();
      }
    }
    this.schedule();
  }

  /** The structured-clone messages waiting, as one GENERIC_BATCH frame (or single frames: one message, or a batch too large). */
  private writeGeneric(): void {
    const list = this.generic;
    if (list.length === 0) return;
    this.generic = [];
    if (list.length > 1) {
      let body: Buffer | undefined;
      try {
        body = serialize(list);
      } catch {
        // One of them cannot be cloned: send the others one by one.
      }
      if (body && body.length <= MAX_BATCH_BYTES) {
        this.frame(GENERIC_BATCH, body);
        return;
      }
    }
    for (const m of list) {
      let body: Buffer;
      try {
        body = serialize(m);
      } catch (err) {
        this.onUnsendable(m, err as Error);
        continue;
      }
      this.frame(GENERIC, body);
    }
  }

  private frame(type: number, body: Buffer): void {
    this.head(type, body.length);
    body.copy(this.buf, this.pos);
    this.pos += body.length;
  }

  private writePdu(m: PduDispatch): void {
    const session = this.sessionNumber(m.payload.session);
    const tenantLen = Buffer.byteLength(m.tenant);
    const frame = m.payload.frame;
    this.head(PDU, 8 + 1 + tenantLen + 4 + frame.length);
    let p = this.pos;
    this.buf.writeDoubleLE(m.id, p);
    this.buf[p + 8] = tenantLen;
    this.buf.write(m.tenant, p + 9);
    p += 9 + tenantLen;
    this.buf.writeUInt32LE(session, p);
    p += 4;
    this.buf.set(frame, p);
    this.pos = p + frame.length;
  }

  /** The number the other side knows this session view by; sends the view first if it does not know it yet. */
  private sessionNumber(view: object): number {
    const known = this.sessionNumbers.get(view);
    if (known !== undefined) return known;
    if (this.sessionsSent >= MAX_SESSIONS) {
      this.head(SESSIONS_RESET, 0);
      this.sessionNumbers = new WeakMap();
      this.sessionsSent = 0;
    }
    const n = ++this.sessionsSent;
    this.sessionNumbers.set(view, n);
    const json = JSON.stringify(view);
    const len = Buffer.byteLength(json);
    this.head(SESSION, 4 + len);
    this.buf.writeUInt32LE(n, this.pos);
    this.buf.write(json, this.pos + 4);
    this.pos += 4 + len;
    return n;
  }

  /** Room for a frame of `len` body bytes, and its header. */
  private head(type: number, len: number): void {
    const need = this.pos + HEAD + len;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.pos);
      this.buf = grown;
    }
    writeHead(this.buf, this.pos, type, len);
    this.pos += HEAD;
  }

  /**
   * One write per loop turn, whatever the turn's reads or isolate completions
   * produced (setImmediate runs later in the same turn): a write to the other
   * process costs tens of µs here, far more than a frame.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    atTurnEnd(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Write what is queued now; `done` runs once the socket has taken it. */
  flush(done?: () => void): void {
    if (!this.closed) this.writeGeneric();
    if (this.pos === 0 || this.closed) {
      if (done) setImmediate(done);
      return;
    }
    // The socket may hold on to what it is given, so it gets a copy of just
    // the frames (small ones come from Node's buffer pool) and the working
    // buffer is reused; one that grew past 1 MB for a large message shrinks back.
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    if (this.buf.length > 1024 * 1024) this.buf = Buffer.allocUnsafe(16 * 1024);
    this.pos = 0;
    this.socket.write(out, done ? () => done() : undefined);
  }

  /** Drop whatever is queued (the other side is gone). */
  clear(): void {
    this.pos = 0;
    this.generic = [];
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.pending) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let off = 0;
    while (data.length - off >= 4) {
      const len = data.readUInt32LE(off);
      if (len < 1 || len > MAX_FRAME) {
        // Not a frame this channel wrote: nothing after it can be trusted.
        this.closed = true;
        this.socket.destroy(new Error(`sandbox channel: bad frame length ${len}`));
        return;
      }
      if (data.length - off - 4 < len) break;
      const type = data[off + 4]!;
      const body = data.subarray(off + HEAD, off + 4 + len);
      off += 4 + len;
      let m: In | In[] | undefined;
      try {
        m = type === GENERIC_BATCH ? this.decodeBatch(body) : this.decode(type, body);
      } catch (err) {
        // A frame that does not decode: the other side is broken (or worse); stop listening to it.
        this.closed = true;
        this.socket.destroy(new Error(`sandbox channel: frame of type ${type} does not decode: ${(err as Error).message}`));
        return;
      }
      if (Array.isArray(m)) for (const one of m) this.onMessage(one);
      else if (m !== undefined) this.onMessage(m);
    }
    if (off < data.length) this.pending = data.subarray(off);
  }

  private decodeBatch(b: Buffer): In[] {
    const list = deserialize(b) as unknown;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH) throw new Error('a batch is a list of 1 to 64 messages');
    for (const m of list) if (m === null || typeof m !== 'object' || typeof (m as { t?: unknown }).t !== 'string') throw new Error('a batch holds only messages');
    return list as In[];
  }

  /** One frame as a message; undefined for the channel's own bookkeeping frames. Throws on a frame that does not decode. */
  private decode(type: number, b: Buffer): In | undefined {
    switch (type) {
      case PDU: {
        const id = b.readDoubleLE(0);
        const tenantLen = b[8]!;
        const tenant = b.toString('utf8', 9, 9 + tenantLen);
        const p = 9 + tenantLen;
        const session = this.sessions.get(b.readUInt32LE(p));
        if (!session) throw new Error('PDU names a session view it never sent');
        return { t: 'dispatch', id, tenant, kind: 'pdu', payload: { frame: b.subarray(p + 4), session } } as unknown as In;
      }
      case SESSION:
        this.sessions.set(b.readUInt32LE(0), JSON.parse(b.toString('utf8', 4)) as object);
        return undefined;
      case SESSIONS_RESET:
        this.sessions.clear();
        return undefined;
      case OUTCOME_DEFAULT:
        return { t: 'outcome', id: b.readDoubleLE(0), outcome: { kind: 'default' } } as unknown as In;
      case OUTCOME_REPLY: {
        const outcome: { kind: 'reply'; status: number; fields?: { message_id?: string } } = { kind: 'reply', status: b.readUInt32LE(8) };
        if (b[12] === 1) outcome.fields = { message_id: b.toString('utf8', 13) };
        else if (b[12] === 2) outcome.fields = {};
        return { t: 'outcome', id: b.readDoubleLE(0), outcome } as unknown as In;
      }
      default:
        return deserialize(b) as In;
    }
  }
}

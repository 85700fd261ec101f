import type { Duplex } from 'node:stream';
import { deserialize, serialize } from 'node:v8';

/**
 * The core ↔ sandbox channel: length-prefixed frames on a socket pair, in
 * place of Node's IPC channel. Everything sent in one turn goes out in one
 * write. The hot messages — a PDU for a policy (its raw SMPP frame) and the
 * common answers (default, or a status with at most a message_id) — have
 * binary frames of their own; every other message is a V8 structured clone,
 * as Node's `advanced` IPC serialisation would make it. One channel carries
 * both, so their order holds.
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

  constructor(
    private readonly socket: Duplex,
    private readonly onMessage: (m: In) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  get open(): boolean {
    return !this.closed && this.socket.writable;
  }

  send(m: Out): void {
    if (this.closed) return;
    if (isPduDispatch(m)) this.writePdu(m);
    else {
      const r = simpleReply(m);
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
        const body = serialize(m);
        this.head(GENERIC, body.length);
        body.copy(this.buf, this.pos);
        this.pos += body.length;
      }
    }
    this.schedule();
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
    this.buf.writeUInt32LE(len + 1, this.pos);
    this.buf[this.pos + 4] = type;
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
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Write what is queued now; `done` runs once the socket has taken it. */
  flush(done?: () => void): void {
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
      let m: In | undefined;
      try {
        m = this.decode(type, body);
      } catch (err) {
        // A frame that does not decode: the other side is broken (or worse); stop listening to it.
        this.closed = true;
        this.socket.destroy(new Error(`sandbox channel: frame of type ${type} does not decode: ${(err as Error).message}`));
        return;
      }
      if (m !== undefined) this.onMessage(m);
    }
    if (off < data.length) this.pending = data.subarray(off);
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

// One file on purpose: one SMPP session is one state machine (framing, windows, timers, backpressure); splitting it
// would spread its state over files.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { SluiceError } from '../errors';
import type { PeerLog, SourceLogLimiter } from '../log/source-limit';
import type { Clock, TimerHandle } from '../util/clock';
import { atTurnEnd } from '../util/turn';
import {
  commandId,
  checkPdu,
  decodePdu,
  encodePdu,
  encodeSimpleResponse,
  genericNack,
  isResponseId,
  NO_RESPONSE,
  PDU_HEADER_BYTES,
  SIMPLE_RESPONSE_IDS,
  type InboundRequest,
  type UnknownTlv,
  type WirePdu,
} from '../wire/codec';
import { ESME_RINVCMDLEN, ESME_ROK, ESME_RTHROTTLED } from '../wire/status';

/**
 * One SMPP session over one socket, in either role. Sluice owns all of it:
 * framing, sequence numbers, both windows, write batching and backpressure,
 * and every timer. npm `smpp` is only asked to encode and decode bodies.
 */
export interface SessionOptions {
  role: 'server' | 'client';
  clock: Clock;
  logger: Logger;
  /** Our requests outstanding at once; more wait in a bounded queue. */
  window: number;
  /** The peer's unanswered requests we accept; beyond it they get ESME_RTHROTTLED. */
  peerWindow: number;
  responseTimeoutMs: number;
  enquireLinkMs: number;
  inactivityMs: number;
  /** A frame begun but not completed within this long closes the session (default 10 s). */
  frameTimeoutMs?: number;
  /** Server role: an unbound connection is closed after this long. */
  sessionInitMs?: number;
  maxPduBytes: number;
  /** Requests allowed to wait for a window slot (default 16 × window). */
  maxQueued?: number;
  /** Lines the peer causes (malformed PDUs, half frames) go through this limit, under `logSource`. */
  logLimiter?: SourceLogLimiter;
  logSource?: string;
  /** Told of every request from the peer as it is answered (metrics): its command, the status, how long after it arrived. */
  answered?: (command: string, status: number, ms: number) => void;
}

export type SessionState = 'open' | 'bound' | 'closing' | 'closed';

export type { InboundRequest } from '../wire/codec';

interface Pending {
  command: string;
  deadline: number;
  resolve: (pdu: WirePdu) => void;
  reject: (err: Error) => void;
}

interface Queued {
  command: string;
  buf: Buffer;
  deadline: number;
  resolve: (pdu: WirePdu) => void;
  reject: (err: Error) => void;
}

export interface SessionEvents {
  /** A request PDU from the peer (enquire_link and unbind are handled here). */
  request: [pdu: InboundRequest];
  /** The peer sent unbind; it has been answered. */
  unbind: [];
  close: [reason: string];
}

let sessionCounter = 0;
// Measured on the echo bench: 16 keeps both ends busy; a whole window (64) serialises them.
const FLUSH_PDUS = 16;
const FLUSH_BYTES = 16 * 1024;

export class SmppSession extends EventEmitter<SessionEvents> {
  readonly id: string;
  readonly remoteAddress: string;
  state: SessionState = 'open';
  closeReason = '';

  private readonly opts: SessionOptions;
  private readonly socket: Socket;
  private readonly log: Logger;
  /** For lines the peer can make us write as often as it likes. */
  private readonly peerLog: PeerLog;
  private rx: Buffer | undefined;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private blocked = false;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  /** Stopping: requests from the peer are refused while those in flight are answered. */
  private draining = false;
  /** When the partial frame in `rx` began, if there is one. */
  private partialSince: number | undefined;
  private queue: Queued[] = [];
  private peerOutstanding = 0;
  private readonly openedAt: number;
  private lastRx: number;
  private lastMessage: number;
  private timer: TimerHandle | undefined;
  private enquireInFlight = false;
  /** A request went unanswered for the response timer; an enquire_link is out to learn whether the peer is still there. */
  private _suspect = false;

  constructor(socket: Socket, opts: SessionOptions) {
    super();
    this.socket = socket;
    this.opts = opts;
    this.id = `s${(++sessionCounter).toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.log = opts.logger.child({ session: this.id });
    this.peerLog = opts.logLimiter ? opts.logLimiter.for(this.log, opts.logSource ?? this.remoteAddress) : (this.log as PeerLog);
    this.openedAt = this.lastRx = this.lastMessage = opts.clock.now();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.close(`socket error: ${err.message}`, false));
    socket.on('end', () => this.close('peer closed the connection', false));
    socket.on('close', () => this.close('connection closed', false));
    this.arm();
  }

  /** Our requests the peer has not answered yet, sent or waiting for a window slot. */
  get backlog(): number {
    return this.pending.size + this.queue.length;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get outstanding(): number {
    return this.pending.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  get unansweredFromPeer(): number {
    return this.peerOutstanding;
  }

  /** Moves the session to bound: the session-init timer stops, inactivity starts. */
  markBound(): void {
    if (this.state === 'open') {
      this.state = 'bound';
      this.lastMessage = this.opts.clock.now();
      this.rearm();
    }
  }

  // ---- reading -----------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastRx = this.opts.clock.now();
    let buf = this.rx ? Buffer.concat([this.rx, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len < PDU_HEADER_BYTES || len > this.opts.maxPduBytes) {
        // The length is the only framing SMPP has; once it is wrong nothing after it can be trusted.
        const seq = buf.length - off >= PDU_HEADER_BYTES ? buf.readUInt32BE(off + 12) : 0;
        this.peerLog.warn({ command_length: len, max: this.opts.maxPduBytes }, 'invalid command_length, closing');
        this.writeNow(genericNack(seq, ESME_RINVCMDLEN));
        this.rx = undefined;
        this.close(`invalid command_length ${len}`);
        return;
      }
      if (buf.length - off < len) break;
      const frame = buf.subarray(off, off + len);
      off += len;
      this.onFrame(frame);
      if (this.closed) return;
    }
    this.rx = off === buf.length ? undefined : Buffer.from(buf.subarray(off));
    // The frame now in assembly: since when (a peer that sends half a PDU and stops is closed).
    if (this.rx === undefined) this.partialSince = undefined;
    else if (off > 0 || this.partialSince === undefined) {
      this.partialSince = this.lastRx;
      this.ensureTimer(this.partialSince + (this.opts.frameTimeoutMs ?? 10_000));
    }
  }

  private onFrame(frame: Buffer): void {
    const id = frame.readUInt32BE(4);
    if (isResponseId(id)) {
      this.onResponseFrame(frame, id);
      return;
    }
    // Checked whole here; fields are decoded only if something reads them.
    const checked = checkPdu(frame);
    if (!checked.ok) {
      this.peerLog.warn({ command_id: checked.command_id, reason: checked.reason }, 'generic_nack');
      this.write(genericNack(checked.sequence_number, checked.status));
      return;
    }
    const pdu: InboundRequest = checked.pdu;
    if (pdu.command === 'enquire_link') {
      this.write(encodeSimpleResponse(0x80000015, pdu.sequence_number, ESME_ROK));
      return;
    }
    this.lastMessage = this.lastRx;
    if (pdu.command === 'unbind') {
      this.write(encodeSimpleResponse(0x80000006, pdu.sequence_number, ESME_ROK));
      this.emit('unbind');
      this.close('peer unbound');
      return;
    }
    if (this.opts.answered) pdu.receivedAt = this.lastRx;
    if (this.draining) {
      // Stopping: what is in flight is answered, new work is refused for now (the peer may resend it elsewhere).
      pdu.answered = true;
      this.opts.answered?.(pdu.command, ESME_RTHROTTLED, 0);
      this.write(encodeSimpleResponse((pdu.command_id | 0x80000000) >>> 0, pdu.sequence_number, ESME_RTHROTTLED));
      return;
    }
    if (this.peerOutstanding >= this.opts.peerWindow) {
      // The peer ignores the window we offer; refuse rather than buffer without bound.
      pdu.answered = true;
      this.opts.answered?.(pdu.command, ESME_RTHROTTLED, 0);
      this.write(encodeSimpleResponse((pdu.command_id | 0x80000000) >>> 0, pdu.sequence_number, ESME_RTHROTTLED));
      return;
    }
    this.peerOutstanding++;
    this.emit('request', pdu);
  }

  private onResponseFrame(frame: Buffer, id: number): void {
    const seq = frame.readUInt32BE(12);
    const p = this.pending.get(seq);
    if (!p) {
      this.log.debug({ command_id: id, sequence_number: seq }, 'response to no outstanding request, dropped');
      return;
    }
    const decoded = decodePdu(frame);
    this.pending.delete(seq);
    if (p.command !== 'enquire_link') this.lastMessage = this.lastRx;
    if (decoded.ok) {
      p.resolve(decoded.pdu);
    } else {
      // A response we cannot parse still settles the request, with the status it carried.
      p.resolve({ command: 'generic_nack', command_id: id, command_status: frame.readUInt32BE(8) || decoded.status, sequence_number: seq, fields: {} });
    }
    this.pump();
  }

  // ---- answering the peer -------------------------------------------------

  /**
   * Answer `req` with `status` and, for a success, `fields` of the response.
   * A negative status answers nothing (PDUs that have no response) but still
   * frees the peer's window slot.
   */
  respond(req: InboundRequest, status: number, fields?: Record<string, unknown>): void {
    if (req.answered) return;
    req.answered = true;
    this.peerOutstanding--;
    if (this.opts.answered && status >= 0) this.opts.answered(req.command, status, this.opts.clock.now() - (req.receivedAt ?? this.opts.clock.now()));
    if (this.state === 'closed' || status < 0 || NO_RESPONSE.has(req.command)) return;
    this.lastMessage = this.opts.clock.now();
    const respId = (req.command_id | 0x80000000) >>> 0;
    if (SIMPLE_RESPONSE_IDS.has(respId) && (!fields || status !== ESME_ROK || onlyMessageId(fields))) {
      const id = fields ? ((fields.message_id ?? fields.system_id) as string | undefined) : undefined;
      this.write(encodeSimpleResponse(respId, req.sequence_number, status, id));
      return;
    }
    this.write(encodePdu(`${req.command}_resp`, req.sequence_number, status, fields));
  }

  /** Answer `req` with a generic_nack (a command we do not take in this direction). */
  nack(req: InboundRequest, status: number): void {
    if (req.answered) return;
    req.answered = true;
    this.peerOutstanding--;
    this.opts.answered?.(req.command, status, 0);
    if (this.state !== 'closed') this.write(genericNack(req.sequence_number, status));
  }

  // ---- our requests -------------------------------------------------------

  /**
   * Send a request and resolve with the peer's response (whatever its status).
   * Rejects with TIMEOUT, SESSION_CLOSED or THROTTLED (queue full), each
   * saying in `sent` whether the PDU had left (TIMEOUT waiting for a window
   * slot, or closed while queued: it had not); throws
   * INVALID_FIELD before anything is sent if the fields do not encode.
   */
  request(command: string, fields?: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): Promise<WirePdu> {
    if (this.state === 'closed' || this.state === 'closing') {
      return Promise.reject(new SluiceError('SESSION_CLOSED', `session ${this.id} is closed`));
    }
    // Encoded once, up front, so a bad field fails the caller and never the session;
    // the sequence number is written into the header when the PDU goes out.
    let buf: Buffer;
    try {
      buf = encodePdu(command, 0, 0, fields, unknownTlvs);
    } catch (err) {
      return Promise.reject(new SluiceError('INVALID_FIELD', `${command}: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise<WirePdu>((resolve, reject) => {
      if (this.pending.size < this.opts.window && !this.blocked && this.queue.length === 0) {
        this.send(command, buf, resolve, reject);
        return;
      }
      const max = this.opts.maxQueued ?? this.opts.window * 16;
      if (this.queue.length >= max) {
        reject(new SluiceError('THROTTLED', `window full and ${max} requests already waiting`));
        return;
      }
      const deadline = this.opts.clock.now() + this.opts.responseTimeoutMs;
      this.queue.push({ command, buf, deadline, resolve, reject });
      this.ensureTimer(deadline);
    });
  }

  /** Send a request that has no response in SMPP (alert_notification, outbind). */
  notify(command: string, fields?: Record<string, unknown>, unknownTlvs?: readonly UnknownTlv[]): void {
    if (this.state === 'closed' || this.state === 'closing') throw new SluiceError('SESSION_CLOSED', `session ${this.id} is closed`);
    let buf: Buffer;
    try {
      buf = encodePdu(command, this.nextSeq(), 0, fields, unknownTlvs);
    } catch (err) {
      throw new SluiceError('INVALID_FIELD', `${command}: ${(err as Error).message}`, { cause: err });
    }
    this.lastMessage = this.opts.clock.now();
    this.write(buf);
  }

  private nextSeq(): number {
    this.seq = (this.seq % 0x7fffffff) + 1;
    return this.seq;
  }

  private send(command: string, buf: Buffer, resolve: (pdu: WirePdu) => void, reject: (err: Error) => void): void {
    const seq = this.nextSeq();
    buf.writeUInt32BE(seq, 12);
    const now = this.opts.clock.now();
    const deadline = now + this.opts.responseTimeoutMs;
    this.pending.set(seq, { command, deadline, resolve, reject });
    if (command !== 'enquire_link') this.lastMessage = now;
    this.write(buf);
    this.ensureTimer(deadline);
  }

  private pump(): void {
    while (this.queue.length > 0 && this.pending.size < this.opts.window && !this.blocked && this.state !== 'closed') {
      const q = this.queue.shift()!;
      this.send(q.command, q.buf, q.resolve, q.reject);
    }
  }

  // ---- writing --------------------------------------------------------------

  private write(buf: Buffer): void {
    this.out.push(buf);
    this.outBytes += buf.length;
    // Batch, but not a whole window at once: a peer that gets the first part
    // early works on it while we produce the rest, so both ends overlap.
    if (this.out.length >= FLUSH_PDUS || this.outBytes >= FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      atTurnEnd(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private writeNow(buf: Buffer): void {
    this.out.push(buf);
    this.outBytes += buf.length;
    this.flush();
  }

  /** Write what is queued now, not at the end of the loop turn (a bind response, ahead of the work that follows it). */
  flushNow(): void {
    this.flush();
  }

  /** One socket write per turn of the event loop: responses produced together leave together. */
  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) {
      this.out = [];
      this.outBytes = 0;
      return;
    }
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (!this.socket.write(data) && !this.blocked) {
      // The peer is not reading: stop reading its requests until it does.
      this.blocked = true;
      this.socket.pause();
    }
  }

  private onDrain(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.state !== 'closed') this.socket.resume();
    this.pump();
  }

  /** True while the socket's write buffer is over its high-water mark. */
  get writeBlocked(): boolean {
    return this.blocked;
  }

  // ---- timers ---------------------------------------------------------------

  private nextDeadline(): number {
    const o = this.opts;
    let d = Infinity;
    if (this.state === 'open' && o.role === 'server' && o.sessionInitMs) d = this.openedAt + o.sessionInitMs;
    if (!this.enquireInFlight) d = Math.min(d, this.lastRx + o.enquireLinkMs);
    if (this.state === 'bound') d = Math.min(d, this.lastMessage + o.inactivityMs);
    const first = this.pending.values().next();
    if (!first.done) d = Math.min(d, first.value.deadline);
    if (this.queue.length > 0) d = Math.min(d, this.queue[0]!.deadline);
    if (this.partialSince !== undefined) d = Math.min(d, this.partialSince + (o.frameTimeoutMs ?? 10_000));
    return d;
  }

  private ensureTimer(deadline: number): void {
    if (!this.timer || this.timer.due > deadline) this.rearm();
  }

  private rearm(): void {
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.arm();
  }

  private arm(): void {
    if (this.state === 'closed') return;
    const d = this.nextDeadline();
    if (d === Infinity) return;
    this.timer = this.opts.clock.setTimeout(() => this.onTimer(), Math.max(0, d - this.opts.clock.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.state === 'closed') return;
    const o = this.opts;
    const now = o.clock.now();
    if (this.state === 'open' && o.role === 'server' && o.sessionInitMs && now >= this.openedAt + o.sessionInitMs) {
      this.close('session_init_timer expired before bind');
      return;
    }
    if (this.state === 'bound' && now >= this.lastMessage + o.inactivityMs) {
      this.log.info('inactivity_timer expired, unbinding');
      void this.unbindAndClose('inactivity_timer expired');
      return;
    }
    if (this.partialSince !== undefined && now >= this.partialSince + (o.frameTimeoutMs ?? 10_000)) {
      this.peerLog.info({ bytes: this.rx?.length ?? 0 }, 'a frame was not completed in time, closing');
      this.close('partial frame not completed within frame_timeout_ms');
      return;
    }
    let unanswered = 0;
    for (const [seq, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(seq);
      if (p.command !== 'enquire_link') unanswered++;
      p.reject(new SluiceError('TIMEOUT', `${p.command} seq ${seq}: no response in ${o.responseTimeoutMs} ms`, { sent: true }));
    }
    if (this.closed) return;
    // A peer that stops answering (stopped, wedged, a dead path) is found out now, not at the next
    // enquire_link_timer: probe at once, and say `suspect` until it answers (or the session closes).
    if (unanswered > 0 && this.state === 'bound' && !this._suspect) {
      this._suspect = true;
      this.log.warn({ unanswered }, 'requests went unanswered for the response timer; probing with enquire_link');
      if (!this.enquireInFlight) this.probe();
    }
    while (this.queue.length > 0 && this.queue[0]!.deadline <= now) {
      const q = this.queue.shift()!;
      q.reject(new SluiceError('TIMEOUT', `${q.command}: no window slot in ${o.responseTimeoutMs} ms`, { sent: false }));
    }
    if (!this.enquireInFlight && now >= this.lastRx + o.enquireLinkMs) this.probe();
    this.pump();
    if (!this.closed) this.arm();
  }

  /**
   * True from a request going unanswered for the response timer until the
   * enquire_link sent then is answered: new requests should go elsewhere.
   */
  get suspect(): boolean {
    return this._suspect;
  }

  /**
   * enquire_link the peer (idle, or suspected of not answering); no answer
   * within the response timer means it is dead. It goes out at once, beside
   * a full window: it is the question whether the window will ever move.
   */
  private probe(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    // A bare header: it always encodes.
    const buf = encodePdu('enquire_link', 0, 0);
    this.enquireInFlight = true;
    new Promise<WirePdu>((resolve, reject) => this.send('enquire_link', buf, resolve, reject)).then(
      () => {
        this.enquireInFlight = false;
        if (this._suspect) {
          this._suspect = false;
          this.log.info('the peer answered enquire_link; taking requests again');
        }
        if (this.state !== 'closed') this.rearm();
      },
      (err: SluiceError) => {
        this.enquireInFlight = false;
        if (err.code === 'TIMEOUT') this.close('peer did not answer enquire_link');
      },
    );
  }

  // ---- closing ----------------------------------------------------------------

  /** Send unbind, wait for unbind_resp (or the response timer), then close. */
  /**
   * The first half of a graceful end: from now on new requests from the
   * peer are answered ESME_RTHROTTLED; resolves once those in flight are
   * answered, or after `maxWaitMs`. Then `unbindAndClose`.
   */
  async drain(maxWaitMs: number): Promise<void> {
    this.draining = true;
    const until = this.opts.clock.now() + maxWaitMs;
    while (this.peerOutstanding > 0 && !this.closed && this.opts.clock.now() < until) {
      await new Promise<void>((r) => this.opts.clock.setTimeout(r, 10));
    }
  }

  async unbindAndClose(reason: string): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const p = this.request('unbind');
    this.state = 'closing';
    try {
      await p;
    } catch {
      // closing anyway
    }
    this.close(reason);
  }

  /**
   * Close the session: every outstanding and queued request settles with
   * SESSION_CLOSED, pending writes are flushed, the socket is ended.
   */
  close(reason: string, graceful = true): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = reason;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const err = new SluiceError('SESSION_CLOSED', `session closed: ${reason}`, { sent: true });
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    // Queued requests never left: whoever sent them may send them elsewhere.
    const unsent = new SluiceError('SESSION_CLOSED', `session closed: ${reason}`, { sent: false });
    for (const q of this.queue) q.reject(unsent);
    this.queue = [];
    if (graceful && !this.socket.destroyed) {
      this.flush();
      this.socket.end();
      // A peer that never reads would hold the socket open forever.
      this.opts.clock.setTimeout(() => this.socket.destroy(), 2000);
    } else {
      this.out = [];
      this.socket.destroy();
    }
    this.log.debug({ reason }, 'session closed');
    this.emit('close', reason);
  }
}

function onlyMessageId(fields: Record<string, unknown>): boolean {
  for (const k in fields) if (k !== 'message_id' && k !== 'system_id') return false;
  return true;
}

export { commandId };

// One file on purpose: the simulated SMSC plays every upstream behaviour the tests put the
// gateway through (sluice sim --help lists them) in one session handler.
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { isSluiceError } from '../errors';
import { silentLogger, type Logger } from '../log/logger';
import { SmppSession, type InboundRequest } from '../sessions/smpp-session';
import { realClock, type Clock, type TimerHandle } from '../util/clock';
import { STATUS } from '../wire/status';

/** How a delivery receipt writes the id of the message it is for, relative to the submit_sm_resp id. */
export type ReceiptIdForm = 'same' | 'upper-hex' | 'lower-hex' | 'decimal' | 'padded' | 'padded-decimal' | 'mixed';
export const RECEIPT_ID_FORMS: readonly ReceiptIdForm[] = ['same', 'upper-hex', 'lower-hex', 'decimal', 'padded', 'padded-decimal', 'mixed'];

/** One line of `sluice sim --log-events`. */
export type SimEvent =
  | { ev: 'submit'; id: string; src: string; dst: string; text: string; rd: number; sys: string }
  | { ev: 'receipt'; id: string; rid: string; acked: boolean; n: number }
  | { ev: 'mo'; text: string; acked: boolean; n: number }
  | { ev: 'bind'; sys: string }
  | { ev: 'drop' };

export interface SimOptions {
  host?: string;
  port?: number;
  /** Accept binds only with these credentials; any when absent. */
  systemId?: string;
  password?: string;
  /** Delay before each submit_sm_resp. */
  latencyMs?: number;
  /** Fraction (0..1) of submits answered ESME_RSUBMITFAIL. */
  errorRate?: number;
  /** Delay before the delivery receipt of a submit that asked for one; negative = never. */
  dlrDelayMs?: number;
  /** stat of the receipts sent. */
  dlrStat?: string;
  window?: number;
  /** Speak SMPP over TLS with this certificate and key (PEM). */
  tls?: { cert: Buffer | string; key: Buffer | string };
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
  /** Refuse a bind of a system_id that is bound already (ESME_RALYBND), as upstreams that allow one bind per account do. */
  oneBindPerSystemId?: boolean;
  /** How submit_sm_resp writes the message id: uppercase hex (default) or decimal. */
  respIdForm?: 'hex' | 'decimal';
  /** How receipts write the id (text `id:` and receipted_message_id); default 'same'. */
  receiptIdForm?: ReceiptIdForm;
  /** Fraction (0..1) of receipt-requesting submits whose receipt is sent before their submit_sm_resp. */
  earlyReceiptRate?: number;
  /** Delay of the submit_sm_resp after an early receipt (default 50). */
  earlyRespDelayMs?: number;
  /** Re-send a deliver_sm answered non-zero or not answered after this delay; 0 = off (default). */
  resendUnansweredMs?: number;
  /** Most re-sends of one deliver_sm (default 5). */
  resendMax?: number;
  /** Fraction (0..1) of receipts sent a second time after an ESME_ROK answer. */
  duplicateReceiptRate?: number;
  /** Response timer for the simulator's own deliver_sm (default 10000). */
  deliverTimeoutMs?: number;
  /** Close the connection (no unbind) after every Nth submit_sm answered; 0 = never. */
  dropEvery?: number;
  /** Send an MO deliver_sm on a bound session this often; 0 = off (default). */
  moEveryMs?: number;
  /** destination_addr of MO messages (default '4470123'). */
  moTo?: string;
  /** Messages remembered for query_sm / cancel_sm / replace_sm (default 100000; oldest forgotten first). */
  keepMessages?: number;
  /**
   * Which session of the account a receipt goes to: the one that carried
   * the message (`carrier`, default, while it is bound), another one when
   * there is one (`other`: the worst case for a gateway that correlates per
   * session), or each bound session in turn (`spread`).
   */
  receiptsOn?: ReceiptsOn;
  /** Called once per event (what `--log-events` prints); a submit's before its submit_sm_resp is written. */
  onEvent?: (e: SimEvent) => void;
}

export const RECEIPTS_ON = ['carrier', 'other', 'spread'] as const;
export type ReceiptsOn = (typeof RECEIPTS_ON)[number];

export interface SimStats {
  binds: number;
  /** Binds refused because the system_id was bound already (oneBindPerSystemId). */
  refusedAlreadyBound: number;
  /** Most sessions bound at once, over the simulator's life. */
  peakBound: number;
  submits: number;
  failed: number;
  dlrsSent: number;
  dlrsAcked: number;
  /** Receipts sent before their submit_sm_resp. */
  early: number;
  /** deliver_sm sent again after a non-zero answer, no answer or a closed session. */
  resent: number;
  /** Receipts sent a second time after an ESME_ROK answer. */
  duplicates: number;
  /** deliver_sm sent on another session of the account than the one first chosen. */
  rerouted: number;
  /** deliver_sm that waited for a session of the account to bind. */
  queued: number;
  /** deliver_sm waiting now for a session of their account to bind. */
  pendingReceipts: number;
  /** deliver_sm given up on (resendMax reached). */
  gaveUp: number;
  queries: number;
  cancels: number;
  replaces: number;
  drops: number;
  mo: number;
  moAcked: number;
}

function yymmddhhmm(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

const STATE: Record<string, number> = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

interface Msg {
  num: number;
  /** The id as the submit_sm_resp wrote it. */
  rid: string;
  /** The id as receipts write it. */
  receiptId: string;
  sys: string;
  src: string;
  dst: string;
  submitted: Date;
  /** message_state once final (receipt sent, or cancelled). */
  finalState?: number;
  finalDate?: Date;
  cancelled?: boolean;
  timer?: TimerHandle;
}

interface Job {
  kind: 'receipt' | 'mo';
  sys: string;
  /** The session it was (or is to be) sent on first. */
  session?: SmppSession;
  fields: Record<string, unknown>;
  msg?: Msg;
  /** Attempts so far. */
  n: number;
  dup?: boolean;
  acked?: boolean;
  text?: string;
}

interface Bound {
  sys: string;
  /** Bound as receiver or transceiver: can take deliver_sm. */
  rx: boolean;
}

/** `id` written in `form` (`n` is the message's place, for 'mixed'). */
export function formatReceiptId(rid: string, num: number, form: ReceiptIdForm, n = 0): string {
  const f = form === 'mixed' ? RECEIPT_ID_FORMS[n % (RECEIPT_ID_FORMS.length - 1)]! : form;
  switch (f) {
    case 'upper-hex':
      return num.toString(16).toUpperCase();
    case 'lower-hex':
      return num.toString(16);
    case 'decimal':
      return String(num);
    case 'padded':
      return num.toString(16).toUpperCase().padStart(20, '0');
    case 'padded-decimal':
      return String(num).padStart(20, '0');
    default:
      return rid;
  }
}

/**
 * An upstream SMSC for development, tests and benchmarks (`sluice sim`):
 * accepts binds, acks submit_sm with a hex message id, and sends SMPP 3.4
 * Appendix B delivery receipts after a delay — to the account (any bound
 * session of the system_id, or the next one to bind), not to the socket.
 * Optionally: latency, failures, early and duplicate receipts, re-sends,
 * dropped connections, MO traffic, and query_sm / cancel_sm / replace_sm.
 */
export class SmscSimulator {
  readonly stats: SimStats = {
    binds: 0,
    refusedAlreadyBound: 0,
    peakBound: 0,
    submits: 0,
    failed: 0,
    dlrsSent: 0,
    dlrsAcked: 0,
    early: 0,
    resent: 0,
    duplicates: 0,
    rerouted: 0,
    queued: 0,
    pendingReceipts: 0,
    gaveUp: 0,
    queries: 0,
    cancels: 0,
    replaces: 0,
    drops: 0,
    mo: 0,
    moAcked: 0,
  };
  private readonly server: net.Server;
  private readonly sessions = new Set<SmppSession>();
  /** Bound sessions and the system_id each bound as. */
  private readonly bound = new Map<SmppSession, Bound>();
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Next message number; starts at a random 32-bit offset (always 8 hex digits or more). */
  private nextNum = 0x10000000 + randomInt(0, 0xe0000000);
  private msgCount = 0;
  private answered = 0;
  private moCount = 0;
  private readonly messages = new Map<string, Msg>();
  /** The same messages by number, for ids written in another form. */
  private readonly byNum = new Map<number, Msg>();
  /** deliver_sm waiting for a session of their system_id to bind, in order. */
  private readonly waiting = new Map<string, Job[]>();
  private readonly timers = new Set<TimerHandle>();
  private moTimer: TimerHandle | undefined;
  /** Next session in turn for `receiptsOn: 'spread'`. */
  private turn = 0;
  private stopped = false;

  constructor(private readonly opts: SimOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.server = opts.tls ? tls.createServer(opts.tls, (s) => this.accept(s)) : net.createServer((s) => this.accept(s));
  }

  /** Connections accepted so far, TLS or plain. */
  accepted = 0;

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.scheduleMo();
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Sessions currently connected. */
  get connections(): number {
    return this.sessions.size;
  }

  /** Sessions bound now. */
  get boundSessions(): number {
    return this.bound.size;
  }

  /** Drop every connection at once (tests of reconnect). */
  dropAll(): void {
    for (const s of this.sessions) s.close('simulator dropped the connection', false);
  }

  async close(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.clock.clearTimeout(this.moTimer);
    for (const m of this.messages.values()) this.clock.clearTimeout(m.timer);
    for (const s of this.sessions) s.close('simulator stopping', false);
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private emitEvent(e: SimEvent): void {
    this.opts.onEvent?.(e);
  }

  private later(fn: () => void, ms: number): void {
    const h = this.clock.setTimeout(() => {
      this.timers.delete(h);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(h);
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    const session = new SmppSession(socket, {
      role: 'server',
      clock: this.clock,
      logger: this.opts.logger ?? silentLogger,
      window: this.opts.window ?? 64,
      peerWindow: 100_000,
      responseTimeoutMs: this.opts.deliverTimeoutMs ?? 10_000,
      enquireLinkMs: 0x7fffffff,
      inactivityMs: 0x7fffffff,
      maxPduBytes: 65_536,
    });
    this.sessions.add(session);
    session.on('close', () => {
      this.sessions.delete(session);
      this.bound.delete(session);
    });
    session.on('request', (pdu) => this.onRequest(session, pdu));
  }

  private onRequest(session: SmppSession, pdu: InboundRequest): void {
    const f = pdu.fields;
    switch (pdu.command) {
      case 'bind_transceiver':
      case 'bind_transmitter':
      case 'bind_receiver': {
        const ok = (this.opts.systemId === undefined || f.system_id === this.opts.systemId) && (this.opts.password === undefined || f.password === this.opts.password);
        const systemId = String(f.system_id ?? '');
        if (ok && this.opts.oneBindPerSystemId && [...this.bound.values()].some((b) => b.sys === systemId)) {
          this.stats.refusedAlreadyBound++;
          session.respond(pdu, STATUS.ESME_RALYBND!);
          return;
        }
        session.respond(pdu, ok ? 0 : STATUS.ESME_RBINDFAIL!, ok ? { system_id: 'sim' } : undefined);
        if (ok) {
          session.markBound();
          this.stats.binds++;
          const rx = pdu.command !== 'bind_transmitter';
          this.bound.set(session, { sys: systemId, rx });
          this.stats.peakBound = Math.max(this.stats.peakBound, this.bound.size);
          this.emitEvent({ ev: 'bind', sys: systemId });
          if (rx) this.flushWaiting(systemId);
        }
        return;
      }
      case 'submit_sm':
      case 'data_sm':
        this.onSubmit(session, pdu);
        return;
      case 'query_sm':
      case 'cancel_sm':
      case 'replace_sm':
        this.onManage(session, pdu);
        return;
      default:
        session.respond(pdu, STATUS.ESME_RINVCMDID!);
    }
  }

  private newId(): { num: number; rid: string } {
    const num = this.nextNum++;
    return { num, rid: this.opts.respIdForm === 'decimal' ? String(num) : num.toString(16).toUpperCase() };
  }

  private onSubmit(session: SmppSession, pdu: InboundRequest): void {
    this.stats.submits++;
    const errorRate = this.opts.errorRate ?? 0;
    const fail = errorRate > 0 && this.random() < errorRate;
    const answer = (): void => {
      if (fail) {
        this.stats.failed++;
        session.respond(pdu, STATUS.ESME_RSUBMITFAIL!);
        this.afterAnswer(session);
        return;
      }
      const f = pdu.fields;
      const { num, rid } = this.newId();
      const sys = this.bound.get(session)?.sys ?? '';
      const msg: Msg = {
        num,
        rid,
        receiptId: formatReceiptId(rid, num, this.opts.receiptIdForm ?? 'same', this.msgCount++),
        sys,
        src: String(f.source_addr ?? ''),
        dst: String(f.destination_addr ?? ''),
        submitted: new Date(),
      };
      this.remember(msg);
      const rd = Number(f.registered_delivery ?? 0);
      const delay = this.opts.dlrDelayMs ?? 100;
      const wantsDlr = (rd & 0x03) !== 0 && delay >= 0;
      const respond = (): void => {
        // The event first: respond() may write to the socket at once (a full batch), and a
        // process killed between the two must not have answered a submit it never reported.
        if (this.opts.onEvent) {
          const sm = (f.short_message ?? f.message_payload) as { message?: unknown } | Buffer | string | undefined;
          const raw = Buffer.isBuffer(sm) ? sm : sm && typeof sm === 'object' && 'message' in sm ? sm.message : sm;
          const text = Buffer.isBuffer(raw) ? raw.toString('latin1') : String(raw ?? '');
          this.emitEvent({ ev: 'submit', id: rid, src: msg.src, dst: msg.dst, text, rd, sys });
        }
        session.respond(pdu, 0, { message_id: rid });
        this.afterAnswer(session);
      };
      const earlyRate = this.opts.earlyReceiptRate ?? 0;
      if (wantsDlr && earlyRate > 0 && this.random() < earlyRate) {
        this.stats.early++;
        this.sendReceipt(session, msg);
        this.later(respond, this.opts.earlyRespDelayMs ?? 50);
        return;
      }
      respond();
      if (wantsDlr) {
        msg.timer = this.clock.setTimeout(() => {
          msg.timer = undefined;
          if (!this.stopped) this.sendReceipt(session, msg);
        }, delay);
      }
    };
    const latency = this.opts.latencyMs ?? 0;
    if (latency > 0) this.later(answer, latency);
    else answer();
  }

  private remember(msg: Msg): void {
    this.messages.set(msg.rid, msg);
    this.byNum.set(msg.num, msg);
    const keep = this.opts.keepMessages ?? 100_000;
    while (this.messages.size > keep) {
      const old = this.messages.values().next().value!;
      this.messages.delete(old.rid);
      this.byNum.delete(old.num);
    }
  }

  /** The message a message_id names, in any form the simulator writes: exact, else its hex value, else its decimal value. */
  private lookup(id: string): Msg | undefined {
    const exact = this.messages.get(id);
    if (exact) return exact;
    const t = id.trim();
    if (/^[0-9a-f]{1,20}$/i.test(t)) {
      const m = this.byNum.get(parseInt(t, 16));
      if (m) return m;
    }
    return /^\d{1,20}$/.test(t) ? this.byNum.get(Number(t)) : undefined;
  }

  /** --drop-every: close the connection (flushing the answer, no unbind) after every Nth submit answered. */
  private afterAnswer(session: SmppSession): void {
    const every = this.opts.dropEvery ?? 0;
    if (every <= 0 || ++this.answered % every !== 0 || session.closed) return;
    this.stats.drops++;
    this.emitEvent({ ev: 'drop' });
    session.close('simulator dropped the connection (drop-every)', true);
  }

  private sendReceipt(session: SmppSession, msg: Msg): void {
    if (msg.cancelled) return;
    const now = yymmddhhmm(new Date());
    const stat = this.opts.dlrStat ?? 'DELIVRD';
    const id = msg.receiptId;
    const text = `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${yymmddhhmm(msg.submitted)} done date:${now} stat:${stat} err:000 text:`;
    const fields = {
      source_addr: msg.dst,
      destination_addr: msg.src,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'latin1'),
      receipted_message_id: id,
      message_state: STATE[stat] ?? (stat === 'DELIVRD' ? 2 : 5),
    };
    this.dispatch({ kind: 'receipt', sys: msg.sys, session, fields, msg, n: 0 });
  }

  /**
   * A session of `sys` that takes deliver_sm, as `receiptsOn` says: `prefer`
   * (the carrier) if it still can, else another; `other`: another first;
   * `spread`: the next in turn. A transmitter-only `prefer` as the last resort.
   */
  private pick(sys: string, prefer: SmppSession | undefined): SmppSession | undefined {
    const p = prefer ? this.bound.get(prefer) : undefined;
    const mode = this.opts.receiptsOn ?? 'carrier';
    const usable = [...this.bound].filter(([s, b]) => b.sys === sys && b.rx && !s.closed).map(([s]) => s);
    if (mode === 'spread' && usable.length > 0) return usable[this.turn++ % usable.length];
    if (mode === 'other') {
      const other = usable.find((s) => s !== prefer);
      if (other) return other;
    }
    if (prefer && p && p.rx && !prefer.closed) return prefer;
    if (usable.length > 0) return usable[0];
    return prefer && p && !prefer.closed ? prefer : undefined;
  }

  private dispatch(job: Job): void {
    if (this.stopped) return;
    if (job.msg?.cancelled && !job.dup && job.n === 0) return;
    const target = this.pick(job.sys, job.session);
    if (!target) {
      let q = this.waiting.get(job.sys);
      if (!q) this.waiting.set(job.sys, (q = []));
      q.push(job);
      this.stats.queued++;
      this.stats.pendingReceipts++;
      return;
    }
    if (job.session && target !== job.session) this.stats.rerouted++;
    job.session = target;
    this.attempt(job, target);
  }

  private flushWaiting(sys: string): void {
    const q = this.waiting.get(sys);
    if (!q) return;
    this.waiting.delete(sys);
    this.stats.pendingReceipts -= q.length;
    for (const job of q) this.dispatch(job);
  }

  private attempt(job: Job, s: SmppSession): void {
    job.n++;
    if (job.kind === 'receipt' && job.n === 1 && !job.dup) {
      this.stats.dlrsSent++;
      const m = job.msg!;
      m.finalState = job.fields.message_state as number;
      m.finalDate = new Date();
    }
    s.request('deliver_sm', job.fields).then(
      (r) => this.settled(job, r.command_status === 0, false),
      (err: unknown) => this.settled(job, false, isSluiceError(err) && err.code === 'SESSION_CLOSED'),
    );
  }

  private settled(job: Job, ok: boolean, closed: boolean): void {
    if (job.kind === 'receipt') this.emitEvent({ ev: 'receipt', id: job.msg!.receiptId, rid: job.msg!.rid, acked: ok, n: job.n });
    else this.emitEvent({ ev: 'mo', text: job.text ?? '', acked: ok, n: job.n });
    if (this.stopped) return;
    if (ok) {
      if (job.acked) return;
      job.acked = true;
      if (job.kind === 'mo') {
        this.stats.moAcked++;
        return;
      }
      if (!job.dup) this.stats.dlrsAcked++;
      const rate = this.opts.duplicateReceiptRate ?? 0;
      if (!job.dup && rate > 0 && this.random() < rate) {
        this.stats.duplicates++;
        this.later(() => this.dispatch({ ...job, dup: true, acked: false }), this.opts.resendUnansweredMs ?? 0);
      }
      return;
    }
    const resendMs = this.opts.resendUnansweredMs ?? 0;
    const canResend = resendMs > 0 && job.n <= (this.opts.resendMax ?? 5);
    if (canResend || closed) {
      // Unanswered because the session went: the account still gets it, on another session or the next bind.
      this.stats.resent++;
      if (resendMs > 0) this.later(() => this.dispatch(job), resendMs);
      else this.dispatch(job);
      return;
    }
    this.stats.gaveUp++;
  }

  private onManage(session: SmppSession, pdu: InboundRequest): void {
    const msg = this.lookup(String(pdu.fields.message_id ?? ''));
    const final = !msg || msg.finalState !== undefined;
    if (pdu.command === 'query_sm') {
      this.stats.queries++;
      if (!msg) {
        session.respond(pdu, STATUS.ESME_RQUERYFAIL!);
        return;
      }
      session.respond(pdu, 0, { message_id: msg.rid, final_date: msg.finalDate ? `${yymmddhhmm(msg.finalDate)}${String(msg.finalDate.getUTCSeconds()).padStart(2, '0')}000+` : '', message_state: msg.finalState ?? STATE.ENROUTE!, error_code: 0 });
      return;
    }
    if (pdu.command === 'cancel_sm') {
      this.stats.cancels++;
      if (final) {
        session.respond(pdu, STATUS.ESME_RCANCELFAIL!);
        return;
      }
      msg.cancelled = true;
      msg.finalState = STATE.DELETED;
      msg.finalDate = new Date();
      this.clock.clearTimeout(msg.timer);
      msg.timer = undefined;
      session.respond(pdu, 0);
      return;
    }
    this.stats.replaces++;
    session.respond(pdu, final ? STATUS.ESME_RREPLACEFAIL! : 0);
  }

  private scheduleMo(): void {
    const every = this.opts.moEveryMs ?? 0;
    if (every <= 0 || this.stopped) return;
    this.moTimer = this.clock.setTimeout(() => {
      this.moTimer = undefined;
      if (this.stopped) return;
      this.sendMo();
      this.scheduleMo();
    }, every);
  }

  private sendMo(): void {
    const rx = [...this.bound].filter(([s, b]) => b.rx && !s.closed);
    if (rx.length === 0) return;
    const [session, b] = rx[this.moCount % rx.length]!;
    const text = `mo ${++this.moCount}`;
    this.stats.mo++;
    const fields = {
      source_addr: '447700900123',
      destination_addr: this.opts.moTo ?? '4470123',
      esm_class: 0,
      data_coding: 0,
      short_message: Buffer.from(text, 'latin1'),
    };
    this.dispatch({ kind: 'mo', sys: b.sys, session, fields, n: 0, text });
  }
}

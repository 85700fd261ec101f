/**
 * The calls in flight in one sandbox process: every dispatch (bind, PDU,
 * session event, timer) the core sent and the sandbox has not answered, so
 * that a crash, a restart, a removed tenant or a stop answers each of them
 * exactly once. A PDU given as its frame is also kept by its sequence number,
 * which is how a policy's `smpp.forward` of it finds it: a dispatch lost with
 * its isolate or process while that forward was under way is answered with
 * the forward's result, as the policy's `return smpp.forward(pdu)` would
 * have been (the message may be on its way).
 */
import type { PduOutcome } from '../dispatch/policy-host';
import { forwardAnswer, type ForwardResult } from '../forward/messages';
import type { SandboxOutcome } from '../sandbox-protocol/messages';

interface InFlight {
  /** Its dispatch id (the key of `byId`). */
  id: number;
  tenant: string;
  startedAt: number;
  resolve: (o: SandboxOutcome) => void;
  /** A PDU given as its frame: that frame, its sequence number and the session it came on (a forward of it carries both). */
  frame: Uint8Array | undefined;
  seq: number;
  sessionId: string | undefined;
  /** The next PDU dispatch in flight with the same sequence number (another session's, mostly). */
  sameSeq: InFlight | undefined;
  /** The policy forwarded this PDU: what its last forward answers it with (undefined: the forward failed). */
  forwarded: Promise<PduOutcome | undefined> | undefined;
}

/** A failed dispatch that a forward of its PDU answers instead: its policy was lost with the forward under way, not a policy that threw or refused. */
const LOST: ReadonlySet<string> = new Set(['crash', 'memory']);

/** The sequence number in an SMPP frame's header. */
function frameSeq(frame: Uint8Array): number {
  return ((frame[12]! << 24) | (frame[13]! << 16) | (frame[14]! << 8) | frame[15]!) >>> 0;
}

export class InFlightCalls {
  /** dispatch id → call */
  private readonly byId = new Map<number, InFlight>();
  /** PDU dispatches in flight (given as frames) by sequence number, chained through `sameSeq`: how a forward finds the dispatch of its PDU. */
  private readonly bySeq = new Map<number, InFlight>();

  get size(): number {
    return this.byId.size;
  }

  /** A dispatch sent as `id`. `frame` and `sessionId`: a PDU given as its frame, which a forward of it is matched to. */
  add(id: number, tenant: string, startedAt: number, resolve: (o: SandboxOutcome) => void, frame?: Uint8Array, sessionId?: string): void {
    const tracked = frame !== undefined && frame.byteLength >= 16;
    const f: InFlight = { id, tenant, startedAt, resolve, frame: tracked ? frame : undefined, seq: tracked ? frameSeq(frame) : 0, sessionId, sameSeq: undefined, forwarded: undefined };
    this.byId.set(id, f);
    if (tracked) {
      f.sameSeq = this.bySeq.get(f.seq);
      this.bySeq.set(f.seq, f);
    }
  }

  /** A call that settles: out of the table and, for a PDU, out of its sequence number's chain. */
  take(id: number): InFlight | undefined {
    const f = this.byId.get(id);
    if (!f) return undefined;
    this.byId.delete(id);
    if (f.frame === undefined) return f;
    const head = this.bySeq.get(f.seq);
    if (head === f) {
      if (f.sameSeq) this.bySeq.set(f.seq, f.sameSeq);
      else this.bySeq.delete(f.seq);
    } else {
      for (let x = head; x; x = x.sameSeq) {
        if (x.sameSeq === f) {
          x.sameSeq = f.sameSeq;
          break;
        }
      }
    }
    f.sameSeq = undefined;
    return f;
  }

  /** The sandbox answered dispatch `id`. */
  answered(id: number, outcome: SandboxOutcome): void {
    const f = this.take(id);
    if (!f) return;
    // The isolate was lost (memory limit, stopped) with a forward of this PDU under way.
    if (f.forwarded && outcome.kind === 'error' && LOST.has(outcome.reason)) answerForwarded(f, outcome);
    else f.resolve(outcome);
  }

  /** Every call of `tenant` answered with `outcome` (a tenant removed by a config reload). */
  failTenant(tenant: string, outcome: SandboxOutcome): void {
    for (const [id, f] of [...this.byId]) {
      if (f.tenant !== tenant) continue;
      this.take(id);
      f.resolve(outcome);
    }
  }

  /** The process died: every call answered `crash`, or by the forward of its PDU where one was under way. Returns how many of each. */
  crashed(outcome: SandboxOutcome): { failed: number; forwarded: number } {
    const failed = this.byId.size;
    let forwarded = 0;
    for (const f of this.byId.values()) {
      if (f.forwarded) {
        forwarded++;
        answerForwarded(f, outcome);
      } else f.resolve(outcome);
    }
    this.clear();
    return { failed, forwarded };
  }

  /** Every call answered with `outcome`, forwards or not (the pool stops). */
  failAll(outcome: SandboxOutcome): void {
    for (const f of this.byId.values()) f.resolve(outcome);
    this.clear();
  }

  /** The tenant whose call has been running longest, not counting those `skip` says were only waiting on the host. */
  longestRunning(skip: (tenant: string) => boolean): string | undefined {
    let oldest: InFlight | undefined;
    for (const f of this.byId.values()) if (!skip(f.tenant) && (!oldest || f.startedAt < oldest.startedAt)) oldest = f;
    return oldest?.tenant;
  }

  /**
   * A policy forwards a PDU: the dispatch of that PDU still in flight (same
   * tenant, session and frame, so the same sequence number) remembers what
   * the forward will answer it with, in case the policy cannot return it.
   * A PDU forwarded again remembers its last forward. PDUs the policy saw as
   * fields, not frames (the test harness), are not matched.
   */
  noteForward(tenant: string, args: unknown, call: Promise<unknown>): void {
    const a = args as { frame?: unknown; session?: { sessionId?: unknown }; tail?: unknown } | null | undefined;
    const frame = a?.frame;
    if (!(frame instanceof Uint8Array) || frame.byteLength < 16) return;
    const sessionId = a!.session?.sessionId;
    let match: InFlight | undefined;
    for (let f = this.bySeq.get(frameSeq(frame)); f; f = f.sameSeq) {
      if (f.tenant !== tenant || f.sessionId !== sessionId || Buffer.compare(f.frame!, frame) !== 0) continue;
      // The same frame twice in flight on one session (a peer that reuses a sequence number): one forward each.
      if (!match || (match.forwarded && !f.forwarded)) match = f;
    }
    if (!match) return;
    const forwarded = call.then((r) => forwardAnswer(r as ForwardResult), () => undefined);
    match.forwarded = forwarded;
    // The handler returned this forward itself: its result is the PDU's answer, given now rather
    // than after one more trip to the sandbox and back; the sandbox's own answer, which follows,
    // finds the dispatch settled and is dropped (docs/design.md, "A handler that returns its forward").
    if (a!.tail === true) {
      const id = match.id;
      void forwarded.then((o) => {
        if (o === undefined) return;
        const f = this.take(id);
        f?.resolve(o);
      });
    }
  }

  private clear(): void {
    this.byId.clear();
    this.bySeq.clear();
  }
}

/** A dispatch lost with its sandbox (or isolate) while a forward of its PDU was under way: answered with that forward's result once it has one, else as it failed. The core's handler deadline still bounds the wait. */
function answerForwarded(f: InFlight, failure: SandboxOutcome): void {
  void f.forwarded!.then((o) => f.resolve(o ?? failure));
}

/**
 * The host calls a tenant's isolates are awaiting, per isolate: the
 * dispatch each came from (a failed entry that settles a result fails that
 * dispatch), and `max_pending` enforced here as well as in the prelude — the
 * prelude counts with a Map the policy shares prototypes with, and each call
 * that passes costs the core work.
 */
import type { PolicyIsolate } from './policy-isolate';

export class PendingHostCalls {
  /** Per isolate: call id → the dispatch it came from. */
  private readonly byIsolate = new Map<PolicyIsolate, Map<number, number>>();

  /** A new isolate whose calls are counted. */
  open(iso: PolicyIsolate): void {
    this.byIsolate.set(iso, new Map());
  }

  /** An isolate gone: its calls are forgotten (results that still come are dropped with it). */
  close(iso: PolicyIsolate): void {
    this.byIsolate.delete(iso);
  }

  /** The isolate asked call `callId` of the host: false when it already awaits `max` (noted all the same, to be answered THROTTLED). */
  begin(iso: PolicyIsolate, callId: number, origin: number, max: number): boolean {
    const outstanding = this.byIsolate.get(iso);
    if (outstanding && outstanding.size >= max) {
      outstanding.set(callId, origin);
      return false;
    }
    outstanding?.set(callId, origin);
    return true;
  }

  /** Call `callId` is answered: the dispatch it came from. */
  end(iso: PolicyIsolate, callId: number): number | undefined {
    const origin = this.byIsolate.get(iso)?.get(callId);
    this.byIsolate.get(iso)?.delete(callId);
    return origin;
  }
}

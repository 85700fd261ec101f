import { SluiceError } from './errors';
import type { Clock } from './util/clock';
import type { WirePdu } from './wire/codec';
import { isVendorStatus, statusName } from './wire/status';

/**
 * What the core tells whoever measures it (the admin API's Prometheus
 * metrics, src/admin/metrics.ts): one call per PDU answered, per request
 * answered by a peer, per receipt. Each gateway has its own, so two gateways
 * in one process (tests, `sluice bench`) never count each other's traffic.
 * Labels passed here come from fixed tables or from the config (tenant,
 * bind, command, status names, receipt stats), never from what a peer can
 * choose freely.
 */
export interface TelemetrySink {
  /** A request from a bound ESME answered with `status` (a command_status name), `ms` after it arrived. */
  esmeAnswered(tenant: string, command: string, status: string, ms: number): void;
  /** A request we sent a bound ESME answered with `status`, or a Sluice error code when it was not (TIMEOUT, SESSION_CLOSED). */
  esmeSent(tenant: string, command: string, status: string, ms: number): void;
  /** A request from an upstream (deliver_sm, …) answered with `status`. */
  upstreamAnswered(tenant: string, bind: string, command: string, status: string, ms: number): void;
  /** A request we sent an upstream answered with `status`, or a Sluice error code when it was not. */
  upstreamSent(tenant: string, bind: string, command: string, status: string, ms: number): void;
  /** A receipt from an upstream: its stat (a fixed table, else OTHER) and what correlation made of it. */
  receipt(tenant: string, bind: string, stat: string, outcome: ReceiptOutcome): void;
  /** A receipt delivered to its ESME, `ms` after it came from the upstream (this process only). */
  receiptDelivered(tenant: string, bind: string, ms: number): void;
}

/** matched: applied to its message; early: before its submit_sm_resp (parked); duplicate: sent again; unmatched: parked, never matched, dropped. */
export type ReceiptOutcome = 'matched' | 'early' | 'duplicate' | 'unmatched';

/** Receipt `stat` values SMPP 3.4 (appendix B) and common upstreams write; anything else is counted as OTHER. */
export const RECEIPT_STATS: ReadonlySet<string> = new Set(['DELIVRD', 'EXPIRED', 'DELETED', 'UNDELIV', 'ACCEPTD', 'UNKNOWN', 'REJECTD', 'ENROUTE', 'SKIPPED']);

/** A receipt stat as a label: one of RECEIPT_STATS, or OTHER. */
export function statLabel(stat: string | undefined): string {
  return stat !== undefined && RECEIPT_STATS.has(stat) ? stat : 'OTHER';
}

/** The gateway's fan-out: every attached sink hears every call; none attached costs one length check. */
export class Telemetry implements TelemetrySink {
  private sinks: TelemetrySink[] = [];

  /** Start telling `sink`; the function returned stops it. */
  attach(sink: TelemetrySink): () => void {
    this.sinks = [...this.sinks, sink];
    return () => {
      this.sinks = this.sinks.filter((s) => s !== sink);
    };
  }

  get active(): boolean {
    return this.sinks.length > 0;
  }

  esmeAnswered(tenant: string, command: string, status: string, ms: number): void {
    for (const s of this.sinks) s.esmeAnswered(tenant, command, status, ms);
  }
  esmeSent(tenant: string, command: string, status: string, ms: number): void {
    for (const s of this.sinks) s.esmeSent(tenant, command, status, ms);
  }
  upstreamAnswered(tenant: string, bind: string, command: string, status: string, ms: number): void {
    for (const s of this.sinks) s.upstreamAnswered(tenant, bind, command, status, ms);
  }
  upstreamSent(tenant: string, bind: string, command: string, status: string, ms: number): void {
    for (const s of this.sinks) s.upstreamSent(tenant, bind, command, status, ms);
  }
  receipt(tenant: string, bind: string, stat: string, outcome: ReceiptOutcome): void {
    for (const s of this.sinks) s.receipt(tenant, bind, stat, outcome);
  }
  receiptDelivered(tenant: string, bind: string, ms: number): void {
    for (const s of this.sinks) s.receiptDelivered(tenant, bind, ms);
  }
}

/**
 * A command_status as a metric label (bounded): its SMPP 3.4 name, its hex
 * for the vendor range (which upstreams use for their own reasons), OTHER
 * for any other value an upstream or ESME might send. For people, see
 * wire/status.ts statusLabel.
 */
export function statusMetric(status: number): string {
  const name = statusName(status);
  if (!name.startsWith('0x')) return name;
  return isVendorStatus(status) ? name : 'OTHER';
}

/**
 * A request we sent a peer, timed: `record` gets the status it was answered
 * with (statusMetric), or the Sluice error code of why it was not, and the ms
 * it took. The answer or the error goes on to the caller as it was.
 */
export async function timed(clock: Clock, sending: Promise<WirePdu>, record: (status: string, ms: number) => void): Promise<WirePdu> {
  const at = clock.now();
  try {
    const resp = await sending;
    record(statusMetric(resp.command_status), clock.now() - at);
    return resp;
  } catch (err) {
    record(err instanceof SluiceError ? err.code : 'ERROR', clock.now() - at);
    throw err;
  }
}

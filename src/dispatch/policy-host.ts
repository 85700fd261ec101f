import type { PolicyPdu } from '../pdu/model';

/**
 * The seam between the trusted core and whatever makes decisions. The core
 * calls a PolicyHost for every bind, PDU and session event; the sandbox
 * (isolates in supervised processes) implements it, and so does the trusted
 * in-process host used by tests and benchmarks. Only plain, copyable data
 * crosses it in either direction.
 */

/** An inbound bind_transceiver, as the policy sees it. */
export interface BindRequest {
  sessionId: string;
  systemId: string;
  password: string;
  systemType: string;
  interfaceVersion: number;
  clientAddr: string;
}

export type BindDecision = { accept: true } | { accept: false; status: number; reason?: string };

/** A session as the policy sees it: an inbound ESME or one of our outbound binds. */
export interface SessionInfo {
  kind: 'esme' | 'bind';
  sessionId: string;
  systemId: string;
  clientAddr: string;
  /** Outbound bind name, for kind 'bind'. */
  bind?: string;
}

/**
 * What a handler decided: the default of the operation table, or an answer.
 * `fields` are response fields (`message_id`; for query_sm_resp
 * `message_state`, `final_date`, `error_code`).
 */
export type PduOutcome = { kind: 'default' } | { kind: 'reply'; status: number; fields?: Record<string, unknown> };

export type SessionEvent = 'bound' | 'unbound';

export interface PolicyHost {
  /** Authorise an inbound bind. No handler → reject. */
  bind(tenant: string, req: BindRequest): Promise<BindDecision>;
  /**
   * Optional: the same as `pdu`, from the PDU's raw frame, answered through
   * `done` exactly once (no promise per PDU). A host that crosses a process
   * boundary sends these bytes and builds the policy's view on the far side,
   * which is cheaper than decoding here and copying the object.
   */
  pduFrame?(tenant: string, frame: Uint8Array, session: SessionInfo, done: (err: Error | undefined, outcome?: PduOutcome) => void): void;
  /** A message PDU from an ESME or from an upstream SMSC. */
  pdu(tenant: string, pdu: PolicyPdu, session: SessionInfo): Promise<PduOutcome>;
  /**
   * Optional: a status to answer a message PDU with at once, without building
   * its policy view or calling `pdu` (a tenant over its CPU budget).
   */
  refuse?(tenant: string, command: string): number | undefined;
  /** Lifecycle; fire-and-forget. */
  session(tenant: string, event: SessionEvent, session: SessionInfo): void;
  close?(): Promise<void>;
}

/** A host with no handlers at all: every operation takes its default, every bind is refused. */
export const noPolicy: PolicyHost = {
  bind: async () => ({ accept: false, status: 0x0f, reason: 'no bind handler' }),
  pdu: async () => ({ kind: 'default' }),
  session: () => {},
};

import type { PolicyPdu } from '../pdu/model';
import { statusValue } from '../wire/status';
import type { BindDecision, BindRequest, PduOutcome, PolicyHost, SessionEvent, SessionInfo } from './policy-host';

/**
 * Handlers written as trusted host code: the policy host for tests, for the
 * benchmark's in-process baseline, and for embedding Sluice as a library.
 * Tenant code never runs here — tenant policies run in the sandbox.
 */
export interface InProcessHandlers {
  bind?(req: BindRequest): BindDecision | Promise<BindDecision>;
  pdu?: Partial<Record<string, (pdu: PolicyPdu, session: SessionInfo) => PduOutcome | undefined | void | Promise<PduOutcome | undefined | void>>>;
  session?(event: SessionEvent, session: SessionInfo): void;
}

export class InProcessPolicyHost implements PolicyHost {
  constructor(private readonly tenants: Readonly<Record<string, InProcessHandlers>>) {}

  async bind(tenant: string, req: BindRequest): Promise<BindDecision> {
    const h = this.tenants[tenant]?.bind;
    if (!h) return { accept: false, status: statusValue('ESME_RINVSYSID'), reason: 'no bind handler' };
    return h(req);
  }

  async pdu(tenant: string, pdu: PolicyPdu, session: SessionInfo): Promise<PduOutcome> {
    const h = this.tenants[tenant]?.pdu?.[pdu.command];
    if (!h) return { kind: 'default' };
    return (await h(pdu, session)) ?? { kind: 'default' };
  }

  session(tenant: string, event: SessionEvent, session: SessionInfo): void {
    this.tenants[tenant]?.session?.(event, session);
  }
}

/** Accept a bind. */
export const accept = (): BindDecision => ({ accept: true });
/** Refuse a bind with a status name. */
export const reject = (status: string, reason?: string): BindDecision => ({ accept: false, status: statusValue(status), reason });
/** Answer a PDU: ESME_ROK with response fields, or a status name. */
export const reply = (fields: Record<string, unknown> & { command_status?: string | number } = {}): PduOutcome => {
  const { command_status, ...rest } = fields;
  return { kind: 'reply', status: command_status === undefined ? 0 : statusValue(command_status), fields: rest };
};

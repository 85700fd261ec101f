import type { Logger } from 'pino';
import type { OutboundBind } from '../binds/outbound-bind';
import type { LeaseStore } from '../cache/backend';
import type { TenantConfig } from '../config/schema';
import type { Telemetry } from '../telemetry';
import type { Clock } from '../util/clock';
import type { UnknownTlv } from '../wire/codec';
import type { EsmeDelivery } from './outbox';

/** A tenant as store and forward sees it: its config and its outbound binds by name. */
export interface ForwardTenant {
  readonly config: TenantConfig;
  readonly binds: ReadonlyMap<string, OutboundBind>;
}

/** How `deliverToEsme` sends: `unknownTlvs` as they are; with `queue`, a session whose window is full queues it rather than have it held (an outbox receipt). */
export interface DeliverOptions {
  unknownTlvs?: readonly UnknownTlv[];
  queue?: boolean;
}

/** What the forwarder needs of the gateway. */
export interface ForwarderHost {
  readonly clock: Clock;
  readonly logger: Logger;
  tenant(id: string): ForwardTenant | undefined;
  tenantIds(): string[];
  /**
   * A deliver_sm for `systemId`: to `sessionId` if it is bound here, else to
   * another session of that system_id bound here, else held in the store
   * for the next one (docs/design.md, "Replicas"). Rejects only when it could not be held.
   */
  deliverToEsme(tenant: string, systemId: string, sessionId: string | undefined, command: string, fields: Record<string, unknown>, opts?: DeliverOptions): Promise<EsmeDelivery>;
  /**
   * This process's name and the store replicas share: it keeps a liveness
   * lease there, so others deliver its outbox receipts only once it is gone.
   * Without it, this process is taken to be the only one.
   */
  readonly replica?: { owner: string; leases: LeaseStore };
  /** Where receipts are counted by stat and their round trip timed (metrics). */
  readonly telemetry?: Telemetry;
}

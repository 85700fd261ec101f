/**
 * Which tenant this isolate is for. The prelude runs in an isolate made
 * ahead of need, before anyone knows which tenant will take it; the first
 * entry, `boot`, gives it its tenant, once, before any tenant code. Until
 * then these are null.
 */

/** What the host allows this tenant (src/sandbox-process/policy-isolate.ts builds it from the tenant's limits). */
export interface Limits {
  maxDataBytes: number;
  maxLogPerSec: number;
  maxLogBytes: number;
  maxPending: number;
}

/** The boot record, as JSON from the host (`PolicyIsolate.create` in src/sandbox-process/policy-isolate.ts). */
export interface Boot {
  tenant: string;
  config: unknown;
  routing: unknown;
  /** `tenants[].settings`, for `smpp.settings()`. */
  settings?: unknown;
  /** Command status name → value (src/wire/status.ts). */
  statusNames: Record<string, number>;
  /** The start of every `smpp.newMessageId()` of this isolate. */
  idPrefix: string;
  limits: Limits;
}

export let boot: Boot | null = null;
export let LIMITS: Limits = null!;
export let STATUS: Record<string, number> = null!;

export function setBoot(b: Boot): void {
  boot = b;
  LIMITS = b.limits;
  STATUS = b.statusNames;
}

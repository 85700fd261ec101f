/**
 * The messages between the core and a sandbox process, over the channel
 * (channel.ts): what the core asks (ToSandbox) and what the sandbox answers
 * or asks of it (FromSandbox). Both sides import their types from here and
 * from nowhere on the other side (docs/design.md, "The process boundary").
 */
import type { TenantLimits } from '../config/schema';
import type { PolicyDiagnostic } from '../policy-compiler/compile';

export interface BootInfo {
  tenant: string;
  config: unknown;
  routing: unknown;
  /** `tenants[].settings`, for `smpp.settings()`. */
  settings?: unknown;
}

/** What a dispatch came to. `error.reason` says why a PDU must be answered ESME_RSYSERR. */
export type SandboxOutcome =
  | { kind: 'default' }
  | { kind: 'reply'; status: number; fields?: Record<string, unknown> }
  | { kind: 'bind'; accept: boolean; status: number; reason?: string }
  | { kind: 'done' }
  | { kind: 'throttled'; retryInMs?: number }
  | { kind: 'error'; reason: 'throw' | 'timeout' | 'memory' | 'deadline' | 'unavailable' | 'crash'; message: string };

export type RuntimeState = 'idle' | 'starting' | 'ready' | 'failed' | 'backoff' | 'quarantined';

export interface TenantStats {
  tenant: string;
  state: RuntimeState;
  version: number;
  hash?: string;
  cpuMs: number;
  heapUsed: number;
  heapLimit: number;
  calls: number;
  errors: number;
  timeouts: number;
  memoryKills: number;
  throttled: number;
  /** Its entries run inline now. */
  inline: boolean;
  /** Inline entries that ran over inline_entry_ms or failed. */
  inlineOffences: number;
  loadError?: string;
}

/** A policy version registered or loaded: its number and hash, or why it did not compile. */
export type LoadResult = { ok: true; version: number; hash: string } | { ok: false; errors: PolicyDiagnostic[] };

export type ToSandbox =
  | { t: 'register'; reqId: number; tenant: string; source: string; filename: string; limits: TenantLimits; boot: BootInfo; activate: boolean }
  | { t: 'dispatch'; id: number; tenant: string; kind: 'bind' | 'pdu' | 'session' | 'timer'; payload: unknown }
  | { t: 'hostResult'; id: number; ok: boolean; value: unknown }
  | { t: 'view'; tenant: string; name: string; value: unknown }
  | { t: 'remove'; tenant: string }
  | { t: 'stats'; reqId: number };

export type FromSandbox =
  | { t: 'ready' }
  | { t: 'loaded'; reqId: number; tenant: string; result: LoadResult }
  | { t: 'outcome'; id: number; outcome: SandboxOutcome }
  | { t: 'hostCall'; id: number; tenant: string; op: string; args: unknown }
  | { t: 'log'; tenant: string; level: string; msg: string; fields?: unknown }
  | { t: 'stats'; reqId: number; tenants: TenantStats[]; rss: number }
  /** A registered version of this tenant's policy does not compile (found ahead of use, or at first use). */
  | { t: 'compileFailed'; tenant: string; errors: PolicyDiagnostic[] }
  /** This tenant's policy made an isolate unrecoverable; the process exits right after (the culprit, for the core's penalty). */
  | { t: 'fatal'; tenant: string; message: string };

/**
 * The shape of `config/sluice.yaml`: one JSON Schema (draft-07, validated by
 * ajv with `useDefaults` and `coerceTypes`) and the TypeScript types of the
 * validated, defaults-filled result.
 *
 * Conventions of this schema:
 * - every object has `additionalProperties: false`, so a misspelt key is an
 *   error rather than a silently ignored setting;
 * - every default lives here, next to its key, and nowhere else;
 * - `description` states what a value must be; the loader quotes it in error
 *   messages for pattern and length violations ("must be <description>");
 * - `resolvePath` (a keyword of ours, {@link SCHEMA_KEYWORDS}) marks values
 *   that hold paths: relative ones resolve against the config file's directory.
 */
import type { SchemaObject } from 'ajv';

/** What a session does with message PDUs over `server.max_msg_per_sec`. */
export type ThrottleAction = 'pace' | 'reject';

/** Log levels, lowest volume first (`silent` turns logging off). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** How an outbound bind binds to its upstream SMSC. */
export type BindType = 'transceiver' | 'transmitter' | 'receiver';

/** An optional second, TLS-wrapped SMPP listener (`server.tls`). */
export interface TlsListenerConfig {
  /** TCP port of the TLS listener; 0 picks an ephemeral port. */
  readonly port: number;
  /** Address to listen on; absent means `server.bind_address`. */
  readonly bind_address?: string;
  /** PEM certificate chain; absolute once loaded (a relative path resolves against the config file's directory). */
  readonly cert_path: string;
  /** PEM private key; absolute once loaded. */
  readonly key_path: string;
  /** PEM CA bundle used to verify client certificates. */
  readonly ca_path?: string;
  /** Ask ESMEs for a client certificate (and verify it against `ca_path`). */
  readonly request_cert: boolean;
}

/** The inbound SMPP listener and the per-session timers and limits. */
export interface ServerConfig {
  readonly bind_address: string;
  /** TCP port; 0 picks an ephemeral port (tests). */
  readonly port: number;
  /** Time allowed between TCP connect and a successful bind. */
  readonly session_init_timer_ms: number;
  /** Idle time after which Sluice sends enquire_link. */
  readonly enquire_link_timer_ms: number;
  /** Time without any PDU after which the session is closed. */
  readonly inactivity_timer_ms: number;
  /** Time a peer has to answer one of our requests. */
  readonly response_timer_ms: number;
  /** A PDU begun on the wire but not completed within this long closes the session. */
  readonly frame_timeout_ms: number;
  /** How long a message for an ESME bound on another replica, or not at all, is held before it is dropped, in ms. */
  readonly hold_ttl_ms: number;
  /** Message PDUs per second per inbound session; 0 = unlimited. */
  readonly max_msg_per_sec: number;
  readonly throttle_action: ThrottleAction;
  /** Outstanding requests per session. */
  readonly window: number;
  /** Largest `command_length` accepted on the wire. */
  readonly max_pdu_bytes: number;
  readonly tls?: TlsListenerConfig;
  /** Connection caps and bind-guessing limits (src/sessions/admission.ts). */
  readonly admission: AdmissionConfig;
}

/** What the listener admits: connection caps, sessions per system_id, failed-bind limits. */
export interface AdmissionConfig {
  /** Connections open at once, bound or not; more are closed at once. */
  readonly max_connections: number;
  /** Connections open at once from one source address. */
  readonly max_connections_per_ip: number;
  /** Bound sessions of one system_id on this replica; more binds are answered ESME_RBINDFAIL. */
  readonly max_sessions_per_system_id: number;
  /** Failed binds from one address within the window that lock the address out. */
  readonly bind_failures_per_ip: number;
  /** Failed binds from one address for one system_id within the window that lock that pair out. */
  readonly bind_failures_per_system_id: number;
  readonly bind_failure_window_ms: number;
  /** How long a lockout lasts: binds answered ESME_RBINDFAIL, the policy not asked. */
  readonly bind_lockout_ms: number;
  /** The first failed bind's answer is delayed this long, each further one twice as long (at most 5 s). */
  readonly bind_failure_delay_ms: number;
  /** Failed binds on one connection before it is closed. */
  readonly bind_failures_per_connection: number;
  /** Log lines one source address (or upstream) can cause a minute: refused binds, malformed PDUs, connections that never bound. */
  readonly log_lines_per_minute: number;
}

/** Where tenant cache data lives: `sqlite://path`, `memory://`, `redis://…` or `rediss://…`. */
export interface CacheConfig {
  /** A `sqlite://` path is absolute once loaded (resolved against the config file's directory). */
  readonly url: string;
  /** How long a `single: true` bind's lease lasts unrenewed, in ms; its holder renews it every third of this. */
  readonly lease_ttl_ms: number;
}

/** Supervised processes that host the tenant isolates. */
export interface SandboxConfig {
  readonly processes: number;
  /**
   * Longest a policy entry may run inline, on its sandbox process's own
   * thread, in ms; 0 keeps every tenant's entries on their isolate's thread.
   */
  readonly inline_entry_ms: number;
}

/** The HTTP admin endpoint. */
export interface AdminConfig {
  /** `host:port`, IPv6 hosts in brackets (`[::1]:8075`). */
  readonly listen: string;
  /** Bearer token for the whole admin API; a secret, never logged. Absent when unset or empty. */
  readonly token?: string;
}

/** Host logging. */
export interface LogConfig {
  readonly level: LogLevel;
}

/** Per-tenant sandbox and cache limits (SECURITY.md, limits). Every field has a default. */
export interface TenantLimits {
  /** Isolate heap limit. */
  readonly memory_mb: number;
  /** CPU budget per second of wall time. */
  readonly cpu_ms_per_s: number;
  /** CPU time allowed to one handler call. */
  readonly handler_timeout_ms: number;
  /** Wall time allowed to one PDU's handler, awaits included. */
  readonly handler_deadline_ms: number;
  readonly max_cache_mb: number;
  readonly max_value_kb: number;
  readonly max_script_kb: number;
  readonly max_log_per_s: number;
  /** Host calls (submitVia, cache, …) in flight at once. */
  readonly max_pending: number;
  /** ESME sessions bound at once, over all the tenant's system_ids; more binds get ESME_RBINDFAIL. */
  readonly max_sessions: number;
}

/** TLS settings of an outbound bind when `tls` is a mapping rather than `true`. */
export interface OutboundTlsConfig {
  /** PEM CA bundle to verify the upstream with, instead of the system store. */
  readonly ca_path?: string;
  readonly reject_unauthorized: boolean;
  /** SNI name and certificate name to expect; defaults to `host`. */
  readonly servername?: string;
}

/** How an upstream writes receipt ids relative to its submit_sm_resp ids (the keys each form gives: src/forward/receipt-ids.ts). */
export const RECEIPT_ID_FORMS = ['auto', 'exact', 'hex', 'decimal', 'hex-decimal', 'decimal-hex'] as const;
export type ReceiptIdForm = (typeof RECEIPT_ID_FORMS)[number];

/** One outbound bind to an upstream SMSC, owned by a tenant. */
export interface OutboundBindConfig {
  /** Name the tenant's policy uses (`smpp.submitVia(name, …)`, `bind:<name>` in routing). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly system_id: string;
  /** A secret, never logged; at most 8 characters (SMPP 3.4). */
  readonly password: string;
  readonly system_type: string;
  readonly bind_type: BindType;
  /** Submits per second on this bind; 0 = unlimited. Only ever delays. */
  readonly max_msg_per_sec: number;
  readonly window: number;
  /** `false`: plain TCP; `true`: TLS with default verification; a mapping: TLS with these settings. */
  readonly tls: boolean | OutboundTlsConfig;
  /** Overrides `server.enquire_link_timer_ms` for this bind. */
  readonly enquire_link_timer_ms?: number;
  /** Overrides `server.response_timer_ms` for this bind. */
  readonly response_timer_ms?: number;
  readonly addr_ton: number;
  readonly addr_npi: number;
  readonly address_range: string;
  /** Held by one replica at a time through a lease in the shared cache (docs/design.md, "Replicas"). */
  readonly single: boolean;
  /** How this upstream writes message ids in receipts relative to its submit_sm_resp (src/forward/receipt-ids.ts); one form per account. */
  readonly receipt_id: ReceiptIdForm;
  /**
   * The upstream account this bind is a session of. Binds of one account
   * share one receipt correlation space: an SMSC may send a receipt on any
   * session of the account. Default: host, port and system_id (`accountOf`).
   */
  readonly account?: string;
}

/**
 * The upstream account a bind belongs to: its `account`, else its host,
 * port and system_id. Receipts are correlated per account, never per bind.
 */
export function accountOf(b: { readonly account?: string; readonly host: string; readonly port: number; readonly system_id: string }): string {
  return b.account ?? `${b.host}:${b.port}/${b.system_id}`;
}

/** A routing rule: destinations starting with `prefix` take `chain`. */
export interface RoutingRule {
  /** Leading digits of `destination_addr`. */
  readonly prefix: string;
  readonly name: string;
  readonly chain: readonly string[];
}

/** A tenant's routing table, read by its policy through `smpp.routingRules()`. */
export interface RoutingConfig {
  /** Steps tried when no rule matches: `bind:<name>`, `queue` or `reject`. */
  readonly default_chain: readonly string[];
  readonly rules: readonly RoutingRule[];
}

/** How the core retries what a tenant's routing chain queued (`queue` step). */
export interface QueueConfig {
  /** First retry delay; doubles per attempt. */
  readonly retry_ms: number;
  readonly retry_max_ms: number;
  /** A queued message without a validity_period expires after this long (the ESME gets an EXPIRED receipt if it asked). */
  readonly expiry_ms: number;
  /** A validity_period further away than this is cut to it. */
  readonly max_expiry_ms: number;
}

/** How long the core keeps what correlates delivery receipts. */
export interface ReceiptsConfig {
  /** A sent message's correlation lives this long without a final receipt. */
  readonly ttl_ms: number;
  /** A receipt that came before its message's submit_sm_resp waits this long for it. */
  readonly early_ttl_ms: number;
  /** After its final receipt, a message is remembered this long so a re-sent receipt is not delivered twice. */
  readonly dedupe_ms: number;
  /**
   * Who handles a delivery receipt from an upstream: `policy` (default: its
   * deliver_sm / data_sm handler, which passes it on with `smpp.forward`) or
   * `core` (the core correlates it from the journal without a sandbox round
   * trip; the policy's handlers then see MO only).
   */
  readonly by: 'policy' | 'core';
}

/** One customer of the host (docs/design.md, "Tenants"). */
export interface TenantConfig {
  readonly id: string;
  /** Path of the tenant's policy script; absolute once loaded (resolved against the config file's directory). */
  readonly policy?: string;
  /** Inbound ESMEs that belong to this tenant; each system_id belongs to one tenant at most. */
  readonly system_ids: readonly string[];
  /** Lets the holder manage only this tenant's policy; a secret, never logged. Absent when unset or empty. */
  readonly upload_token?: string;
  readonly limits: TenantLimits;
  readonly binds: readonly OutboundBindConfig[];
  readonly routing: RoutingConfig;
  /** Free-form settings the tenant's policy reads (`smpp.settings`): ESME passwords, MO owners, … Never logged. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly queue: QueueConfig;
  readonly receipts: ReceiptsConfig;
}

/** The whole validated configuration, defaults filled, deep-frozen. */
export interface SluiceConfig {
  readonly server: ServerConfig;
  readonly cache: CacheConfig;
  readonly sandbox: SandboxConfig;
  readonly admin: AdminConfig;
  readonly log: LogConfig;
  readonly tenants: readonly TenantConfig[];
}

/** One parsed step of a routing chain. */
export type ChainStep =
  | { readonly kind: 'bind'; readonly bind: string }
  | { readonly kind: 'queue' }
  | { readonly kind: 'reject'; readonly status?: string };

/** Keys whose values are secrets: never echoed in errors or logs. */
export const SECRET_KEYS: readonly string[] = Object.freeze(['password', 'token', 'upload_token']);

/** Values of these enums, exported so other modules need not repeat them. */
export const THROTTLE_ACTIONS: readonly ThrottleAction[] = Object.freeze(['pace', 'reject'] as const);
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
);
export const BIND_TYPES: readonly BindType[] = Object.freeze(['transceiver', 'transmitter', 'receiver'] as const);

/** Prefix every `cache.url` must start with. */
export const CACHE_URL_SCHEMES: readonly string[] = Object.freeze(['sqlite://', 'memory://', 'redis://', 'rediss://']);

/** Pattern of a tenant id. */
export const TENANT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$';
/** Pattern of an outbound bind name. */
export const BIND_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

const BIND_STEP = /^bind:(.+)$/;

/**
 * Parse one routing chain step (`bind:<name>`, `queue`, `reject`); `undefined`
 * for anything else. The loader has already rejected unknown steps, so on a
 * loaded config this never returns `undefined`.
 */
export function parseChainStep(step: string): ChainStep | undefined {
  if (step === 'queue') return { kind: 'queue' };
  if (step === 'reject') return { kind: 'reject' };
  if (step.startsWith('reject:')) return { kind: 'reject', status: step.slice('reject:'.length) };
  const m = BIND_STEP.exec(step);
  return m ? { kind: 'bind', bind: m[1] as string } : undefined;
}

// setTimeout fires at once for delays above 2^31-1 ms, so no timer may exceed it.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Keywords of this schema beyond JSON Schema's own (the loader registers
 * them with ajv): `resolvePath`, the value names a file (`file`) or is a
 * `cache.url` that may (`sqlite-url`); a relative path is resolved against
 * the directory of the config file.
 */
export const SCHEMA_KEYWORDS: readonly string[] = Object.freeze(['resolvePath']);

/** How a value holding a path is resolved (`resolvePath`). */
export type PathKind = 'file' | 'sqlite-url';

function integer(minimum: number, maximum: number, dflt?: number): SchemaObject {
  return dflt === undefined ? { type: 'integer', minimum, maximum } : { type: 'integer', minimum, maximum, default: dflt };
}

function timerMs(dflt?: number): SchemaObject {
  return integer(1, MAX_TIMER_MS, dflt);
}

function text(minLength: number, maxLength: number, description: string, dflt?: string): SchemaObject {
  const s: SchemaObject = { type: 'string', minLength, maxLength, description };
  if (dflt !== undefined) s.default = dflt;
  return s;
}

const rate: SchemaObject = { type: 'number', minimum: 0, maximum: 1_000_000, default: 0 };

const nonEmpty: SchemaObject = { type: 'string', minLength: 1, description: 'a non-empty string' };

const file: SchemaObject = { ...nonEmpty, resolvePath: 'file' satisfies PathKind };

const tlsListener: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['port', 'cert_path', 'key_path'],
  properties: {
    port: integer(0, 65535),
    bind_address: nonEmpty,
    cert_path: file,
    key_path: file,
    ca_path: file,
    request_cert: { type: 'boolean', default: false },
  },
};

const server: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: {
    bind_address: { ...nonEmpty, default: '0.0.0.0' },
    port: integer(0, 65535, 2775),
    session_init_timer_ms: timerMs(5000),
    enquire_link_timer_ms: timerMs(30000),
    inactivity_timer_ms: timerMs(300000),
    response_timer_ms: timerMs(30000),
    frame_timeout_ms: timerMs(10000),
    hold_ttl_ms: integer(1000, 2147483647, 86_400_000),
    max_msg_per_sec: rate,
    throttle_action: { type: 'string', enum: [...THROTTLE_ACTIONS], default: 'pace' },
    window: integer(1, 10000, 64),
    max_pdu_bytes: integer(64, 1048576, 16384),
    tls: tlsListener,
    admission: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        max_connections: integer(1, 1_000_000, 10_000),
        max_connections_per_ip: integer(1, 1_000_000, 200),
        max_sessions_per_system_id: integer(1, 100_000, 50),
        bind_failures_per_ip: integer(1, 1_000_000, 20),
        bind_failures_per_system_id: integer(1, 1_000_000, 5),
        bind_failure_window_ms: timerMs(300_000),
        bind_lockout_ms: timerMs(900_000),
        bind_failure_delay_ms: integer(0, 5000, 250),
        bind_failures_per_connection: integer(1, 1000, 3),
        log_lines_per_minute: integer(1, 1_000_000, 60),
      },
    },
  },
};

const cache: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: {
    url: {
      type: 'string',
      pattern: '^(sqlite|memory|redis|rediss)://',
      description: 'a URL starting with sqlite://, memory://, redis:// or rediss://',
      resolvePath: 'sqlite-url' satisfies PathKind,
      default: 'sqlite://data/cache.sqlite',
    },
    lease_ttl_ms: integer(100, 600000, 15000),
  },
};

const sandbox: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: { processes: integer(1, 64, 2), inline_entry_ms: { type: 'number', minimum: 0, maximum: 1000, default: 10 } },
};

const admin: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: {
    // Parsed and range-checked by the loader: host:port, [v6]:port.
    listen: { type: 'string', default: '127.0.0.1:8075' },
    token: { type: 'string' },
  },
};

const log: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: { level: { type: 'string', enum: [...LOG_LEVELS], default: 'info' } },
};

const limits: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: {
    memory_mb: integer(8, 4096, 64),
    cpu_ms_per_s: integer(1, 1000, 250),
    handler_timeout_ms: integer(1, 60000, 50),
    handler_deadline_ms: integer(1, 600000, 5000),
    max_cache_mb: integer(1, 1048576, 64),
    max_value_kb: integer(1, 1048576, 64),
    max_script_kb: integer(1, 65536, 512),
    max_log_per_s: integer(1, 1000000, 100),
    max_pending: integer(1, 1000000, 1000),
    max_sessions: integer(1, 1000000, 500),
  },
};

const outboundTls: SchemaObject = {
  // false | true | { ca_path?, reject_unauthorized?, servername? }
  type: ['boolean', 'object'],
  default: false,
  additionalProperties: false,
  properties: {
    ca_path: file,
    reject_unauthorized: { type: 'boolean', default: true },
    servername: nonEmpty,
  },
};

const bind: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'host', 'port', 'system_id'],
  properties: {
    name: {
      type: 'string',
      pattern: BIND_NAME_PATTERN,
      description: "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    },
    host: nonEmpty,
    port: integer(1, 65535),
    system_id: text(1, 15, '1 to 15 characters (the SMPP 3.4 limit for system_id)'),
    password: text(0, 8, 'at most 8 characters (the SMPP 3.4 limit for password)', ''),
    system_type: text(0, 12, 'at most 12 characters (the SMPP 3.4 limit for system_type)', ''),
    bind_type: { type: 'string', enum: [...BIND_TYPES], default: 'transceiver' },
    max_msg_per_sec: rate,
    window: integer(1, 10000, 10),
    tls: outboundTls,
    enquire_link_timer_ms: timerMs(),
    response_timer_ms: timerMs(),
    addr_ton: integer(0, 255, 0),
    addr_npi: integer(0, 255, 0),
    address_range: text(0, 40, 'at most 40 characters (the SMPP 3.4 limit for address_range)', ''),
    single: { type: 'boolean', default: false },
    receipt_id: { type: 'string', enum: [...RECEIPT_ID_FORMS], default: 'auto' },
    account: text(1, 128, '1 to 128 characters naming the upstream account'),
  },
};

const chain: SchemaObject = {
  type: 'array',
  items: {
    type: 'string',
    pattern: '^(bind:.+|queue|reject|reject:ESME_[A-Z0-9_]+)$',
    description: '"bind:<name>", "queue", "reject" or "reject:<ESME status>"',
  },
};

const routing: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: false,
  properties: {
    default_chain: { ...chain, default: [] },
    rules: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix', 'name', 'chain'],
        properties: {
          prefix: {
            type: 'string',
            pattern: '^[0-9]{1,20}$',
            description: '1 to 20 digits (a leading part of destination_addr)',
          },
          name: nonEmpty,
          chain,
        },
      },
    },
  },
};

const tenant: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      pattern: TENANT_ID_PATTERN,
      description: "1 to 63 letters, digits, '_' or '-', starting with a letter or digit",
    },
    policy: file,
    system_ids: {
      type: 'array',
      default: [],
      items: text(1, 15, '1 to 15 characters (the SMPP 3.4 limit for system_id)'),
    },
    upload_token: { type: 'string' },
    limits,
    binds: { type: 'array', default: [], items: bind },
    routing,
    settings: { type: 'object', default: {} },
    queue: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        retry_ms: integer(10, 3_600_000, 1000),
        retry_max_ms: integer(10, 86_400_000, 60_000),
        expiry_ms: integer(1000, MAX_TIMER_MS, 86_400_000),
        max_expiry_ms: integer(1000, 31 * 86_400_000, 7 * 86_400_000),
      },
    },
    receipts: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        ttl_ms: integer(1000, 31 * 86_400_000, 259_200_000),
        early_ttl_ms: integer(1000, 86_400_000, 600_000),
        dedupe_ms: integer(1000, 86_400_000, 600_000),
        by: { type: 'string', enum: ['policy', 'core'], default: 'policy' },
      },
    },
  },
};

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The JSON Schema (draft-07) of `config/sluice.yaml`, deep-frozen. */
export const configSchema: SchemaObject = deepFreeze({
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Sluice configuration',
  type: 'object',
  additionalProperties: false,
  properties: {
    server,
    cache,
    sandbox,
    admin,
    log,
    tenants: { type: 'array', default: [], items: tenant },
  },
});

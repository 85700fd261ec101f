// One file on purpose: the whole configuration schema by design: every key's type, range, default and description live
// here and nowhere else (docs/configuration.md is generated from it).
/**
 * The shape of `config/sluice.yaml`: one JSON Schema (draft-07, validated by
 * ajv with `useDefaults` and `coerceTypes`) and the TypeScript types of the
 * validated, defaults-filled result.
 *
 * Conventions of this schema:
 * - every object has `additionalProperties: false`, so a misspelt key is an
 *   error rather than a silently ignored setting;
 * - every default lives here, next to its key, and nowhere else;
 * - every property has a `description`: what it means and what happens at
 *   it, for operators. docs/configuration.md is generated from them
 *   (`npm run docs:config`, src/tools/config-doc.ts), and a test fails when
 *   one is missing or the file is stale;
 * - `expected` (a keyword of ours, {@link SCHEMA_KEYWORDS}) states what a
 *   string must be; the loader quotes it in errors ("must be <expected>");
 * - `resolvePath` marks values that hold paths: relative ones resolve against
 *   the config file's directory.
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
 * them with ajv):
 * - `expected`: what a string must be, in words; the loader quotes it in
 *   errors for pattern and length violations ("must be <expected>");
 * - `resolvePath`: the value names a file (`file`) or is a `cache.url` that
 *   may (`sqlite-url`); a relative path is resolved against the directory of
 *   the config file.
 */
export const SCHEMA_KEYWORDS: readonly string[] = Object.freeze(['expected', 'resolvePath']);

/** How a value holding a path is resolved (`resolvePath`). */
export type PathKind = 'file' | 'sqlite-url';

function integer(minimum: number, maximum: number, description: string, dflt?: number): SchemaObject {
  const s: SchemaObject = { type: 'integer', minimum, maximum, description };
  if (dflt !== undefined) s.default = dflt;
  return s;
}

function timerMs(description: string, dflt?: number): SchemaObject {
  return integer(1, MAX_TIMER_MS, description, dflt);
}

function text(minLength: number, maxLength: number, expected: string, description: string, dflt?: string): SchemaObject {
  const s: SchemaObject = { type: 'string', minLength, maxLength, expected, description };
  if (dflt !== undefined) s.default = dflt;
  return s;
}

function rate(description: string): SchemaObject {
  return { type: 'number', minimum: 0, maximum: 1_000_000, default: 0, description };
}

function nonEmpty(description: string, dflt?: string): SchemaObject {
  const s: SchemaObject = { type: 'string', minLength: 1, expected: 'a non-empty string', description };
  if (dflt !== undefined) s.default = dflt;
  return s;
}

function file(description: string): SchemaObject {
  return { ...nonEmpty(description), resolvePath: 'file' satisfies PathKind };
}

function flag(description: string, dflt: boolean): SchemaObject {
  return { type: 'boolean', default: dflt, description };
}

function oneOf(values: readonly string[], description: string, dflt: string): SchemaObject {
  return { type: 'string', enum: [...values], default: dflt, description };
}

const tlsListener: SchemaObject = {
  type: 'object',
  description: 'A second SMPP listener, speaking SMPP over TLS. Absent: none.',
  additionalProperties: false,
  required: ['port', 'cert_path', 'key_path'],
  properties: {
    port: integer(0, 65535, 'TCP port of the TLS listener; must differ from `server.port`. 0 picks a free port (the start-up line logs it as `tlsPort`).'),
    bind_address: nonEmpty('Address the TLS listener binds to. Absent: `server.bind_address`.'),
    cert_path: file('PEM certificate chain of the listener.'),
    key_path: file('PEM private key of the listener.'),
    ca_path: file('PEM CA bundle that client certificates are verified against (with `request_cert`).'),
    request_cert: flag('Ask ESMEs for a client certificate, and refuse the connection unless it verifies (against `ca_path`, else the system CA store).', false),
  },
};

const admission: SchemaObject = {
  type: 'object',
  description: 'The edge against floods and bind guessing: connection caps, sessions per system_id, and delays and lockouts for failed binds. What each guards against: SECURITY.md.',
  default: {},
  additionalProperties: false,
  properties: {
    max_connections: integer(1, 1_000_000, 'Connections open at once, bound or not; more are closed at once (`sluice_connections_refused_total`).', 10_000),
    max_connections_per_ip: integer(1, 1_000_000, 'Connections open at once from one source address; more are closed at once (`sluice_connections_refused_per_ip_total`).', 200),
    max_sessions_per_system_id: integer(1, 100_000, 'Bound sessions of one system_id on this replica; more binds are answered `ESME_RBINDFAIL`.', 50),
    bind_failures_per_ip: integer(1, 1_000_000, 'Failed binds from one source address within `bind_failure_window_ms` that lock the address out for `bind_lockout_ms`.', 20),
    bind_failures_per_system_id: integer(1, 1_000_000, 'Failed binds from one source address for one system_id within `bind_failure_window_ms` that lock that pair out (the right password from another address still binds).', 5),
    bind_failure_window_ms: timerMs('The window the failed-bind counts are taken over.', 300_000),
    bind_lockout_ms: timerMs('How long a lockout lasts: binds are answered `ESME_RBINDFAIL` without asking the policy; logged once, counted in `sluice_bind_lockouts_total`.', 900_000),
    bind_failure_delay_ms: integer(0, 5000, "The first failed bind's answer is delayed this long, each further one twice as long, at most 5 s.", 250),
    bind_failures_per_connection: integer(1, 1000, 'Failed binds on one connection before it is closed.', 3),
    log_lines_per_minute: integer(1, 1_000_000, 'Log lines one source address (or upstream) can cause a minute: refused binds, malformed PDUs, connections that never bound, TLS handshake failures. The rest are counted (`sluice_log_lines_left_out_total`), not written.', 60),
  },
};

const server: SchemaObject = {
  type: 'object',
  description: 'The inbound SMPP listener, where ESMEs bind, and the timers and limits of each session. Changes take effect at the next start.',
  default: {},
  additionalProperties: false,
  properties: {
    bind_address: nonEmpty('Address the SMPP listener binds to (`0.0.0.0`: every IPv4 address).', '0.0.0.0'),
    port: integer(0, 65535, 'TCP port of the SMPP listener. 0 picks a free port (the start-up line logs it as `port`).', 2775),
    session_init_timer_ms: timerMs('Time a connection has to bind after its TCP connect; then it is closed.', 5000),
    enquire_link_timer_ms: timerMs('Idle time after which Sluice sends enquire_link to the peer; unanswered, the session is closed.', 30000),
    inactivity_timer_ms: timerMs('Time a bound session may go without a PDU other than enquire_link; then it is unbound.', 300000),
    response_timer_ms: timerMs("Time a peer has to answer one of our requests. Then the request fails with `TIMEOUT`, an enquire_link goes out at once, and the peer gets no new request until it answers; unanswered, the session is closed. A bind's own `response_timer_ms` overrides it.", 30000),
    frame_timeout_ms: timerMs('A PDU begun on the wire but not completed within this long closes the session, whatever its state.', 10000),
    hold_ttl_ms: integer(1000, MAX_TIMER_MS, 'How long a message for an ESME that is bound on another replica, or not bound at all, is held in the store before it is dropped (`sluice_held_expired_total`).', 86_400_000),
    max_msg_per_sec: rate('Message PDUs per second per inbound session; 0 = unlimited. Over it, `throttle_action` applies, before any policy runs.'),
    throttle_action: oneOf(THROTTLE_ACTIONS, 'What a session does with message PDUs over `max_msg_per_sec`: `pace` delays the response; `reject` answers `ESME_RTHROTTLED` without running the handler.', 'pace'),
    window: integer(1, 10000, "Requests a peer may have unanswered on one session; more are answered `ESME_RTHROTTLED`. Our own requests to the peer wait for a slot in a queue of at most 16 × window, then fail with `THROTTLED`.", 64),
    max_pdu_bytes: integer(64, 1048576, 'Largest `command_length` accepted on the wire. A larger one (or one below 16) is answered `generic_nack ESME_RINVCMDLEN` and the connection closed.', 16384),
    tls: tlsListener,
    admission,
  },
};

const cache: SchemaObject = {
  type: 'object',
  description: "The store: tenants' cache data, the store-and-forward journal (queued messages, receipt correlations), leases, held messages and uploaded policy versions. Changes take effect at the next start.",
  default: {},
  additionalProperties: false,
  properties: {
    url: {
      type: 'string',
      pattern: '^(sqlite|memory|redis|rediss)://',
      expected: 'a URL starting with sqlite://, memory://, redis:// or rediss://',
      resolvePath: 'sqlite-url' satisfies PathKind,
      description:
        "Where the store lives. `sqlite://path`: a SQLite file (relative to the config file's directory; the file and its directory are created), durable, shared by the processes of one host; `sqlite:///abs/path` for an absolute path. The message journal is a second file beside it: `data/cache.sqlite` → `data/cache.journal.sqlite`. `redis://host:port` or `rediss://…` (TLS): Redis or Valkey, shared by replicas. `memory://`: this process only, lost when it stops (tests).",
      default: 'sqlite://data/cache.sqlite',
    },
    lease_ttl_ms: integer(100, 600000, "How long the lease of a `single: true` bind lasts unrenewed. Its holder renews it every third of this; a holder that dies is replaced once it runs out, and one that cannot reach the store unbinds at nine tenths of it.", 15000),
  },
};

const sandbox: SchemaObject = {
  type: 'object',
  description: "The supervised processes that run the tenants' isolates, never the process that holds the sockets. Changes take effect at the next start.",
  default: {},
  additionalProperties: false,
  properties: {
    processes: integer(1, 64, 'Sandbox processes the tenants are spread over. One that dies is restarted; only the isolates it hosted lose their in-flight PDUs (`ESME_RSYSERR`).', 2),
    inline_entry_ms: {
      type: 'number',
      minimum: 0,
      maximum: 1000,
      default: 10,
      description:
        "A tenant whose policy calls stay under this much CPU (64 in a row) runs them on its sandbox process's own thread instead of its isolate's: about 0.1 ms less per round trip, and a tenth more throughput at window 64. A call that fails, or the second in an hour that runs longer, sends the tenant back to its own thread for a minute, doubling per offence (logged under the tenant's id). Tenants with `handler_timeout_ms` over 100 never run inline. 0 turns it off. The trade: SECURITY.md.",
    },
  },
};

const admin: SchemaObject = {
  type: 'object',
  description: 'The HTTP admin API, served while `sluice start` runs (README, "Admin API"). Changes take effect at the next start.',
  default: {},
  additionalProperties: false,
  properties: {
    // Parsed and range-checked by the loader: host:port, [v6]:port.
    listen: {
      type: 'string',
      default: '127.0.0.1:8075',
      expected: 'host:port',
      description: 'Address of the admin API as `host:port`, IPv6 hosts in brackets (`[::1]:8075`). Port 0 picks a free port (the start-up line logs it as `adminPort`).',
    },
    token: {
      type: 'string',
      description: "Bearer token that reaches the whole admin API; a secret, never logged. Unset or empty: only tenants' `upload_token`s (and `/healthz`, which needs none) work.",
    },
  },
};

const log: SchemaObject = {
  type: 'object',
  description: 'Host logging: JSON lines on stdout. Changes take effect at the next start.',
  default: {},
  additionalProperties: false,
  properties: { level: oneOf(LOG_LEVELS, 'Lowest level written; `silent` turns logging off.', 'info') },
};

const limits: SchemaObject = {
  type: 'object',
  description: "The tenant's sandbox and cache limits. What one tenant reaches never slows another (SECURITY.md).",
  default: {},
  additionalProperties: false,
  properties: {
    memory_mb: integer(8, 4096, "Heap limit of the tenant's isolate. Over it the isolate is disposed and its in-flight PDUs answered `ESME_RSYSERR`; a fresh isolate starts after a backoff, and repeated kills quarantine the tenant.", 64),
    cpu_ms_per_s: integer(1, 1000, "CPU budget per second of wall time: CPU the tenant's isolates got, not time they waited for a busy core. Over it, the tenant's new message PDUs from ESMEs get `ESME_RTHROTTLED` until it refills; what its upstreams send (receipts, MO) is never refused by it.", 250),
    handler_timeout_ms: integer(1, 60000, 'CPU time one policy call may take (a handler, or its continuation after an await). Over it the call is terminated and the PDU answered `ESME_RSYSERR`.', 50),
    handler_deadline_ms: integer(1, 600000, "Wall time one PDU's handling may take, awaits included. Then the PDU is answered `ESME_RSYSERR` and a late result is discarded.", 5000),
    max_cache_mb: integer(1, 1048576, "Size of the tenant's cache data. A write over it fails with `QUOTA_EXCEEDED`; the data already there is untouched.", 64),
    max_value_kb: integer(1, 1048576, 'Largest single cache value (at most `max_cache_mb` × 1024). A larger write fails with `QUOTA_EXCEEDED`.', 64),
    max_script_kb: integer(1, 65536, "Largest policy source. A larger file does not load; a larger upload is answered `413`.", 512),
    max_log_per_s: integer(1, 1000000, "Log lines per second the policy may write; the rest are dropped, and the drop is logged.", 100),
    max_pending: integer(1, 1000000, 'Host calls (`submitVia`, `cache`, …) the policy may have in flight at once; more fail with an error to the script.', 1000),
    max_sessions: integer(1, 1000000, "ESME sessions bound at once over all the tenant's system_ids; more binds are answered `ESME_RBINDFAIL`.", 500),
  },
};

const outboundTls: SchemaObject = {
  // false | true | { ca_path?, reject_unauthorized?, servername? }
  type: ['boolean', 'object'],
  description: '`false`: plain TCP. `true`: TLS, the upstream verified against the system CA store. A mapping: TLS with its own settings.',
  default: false,
  additionalProperties: false,
  properties: {
    ca_path: file('PEM CA bundle to verify the upstream with, instead of the system store.'),
    reject_unauthorized: flag("Refuse an upstream whose certificate does not verify. `false` accepts any certificate (tests only: anyone on the path can read the traffic).", true),
    servername: nonEmpty('Name sent as SNI and expected in the certificate. Absent: `host`, unless it is an IP address.'),
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
      expected: "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
      description: "The bind's name: the policy names it (`smpp.submitVia(name, …)`), routing chains as `bind:<name>`, and logs, metrics and the admin API show it. Unique within the tenant.",
    },
    host: nonEmpty('Host name or address of the upstream SMSC.'),
    port: integer(1, 65535, 'TCP port of the upstream SMSC.'),
    system_id: text(1, 15, '1 to 15 characters (the SMPP 3.4 limit for system_id)', 'system_id this bind binds with.'),
    password: text(0, 8, 'at most 8 characters (the SMPP 3.4 limit for password)', 'Password this bind binds with; a secret, never logged.', ''),
    system_type: text(0, 12, 'at most 12 characters (the SMPP 3.4 limit for system_type)', 'system_type sent in the bind, for upstreams that want one.', ''),
    bind_type: oneOf(BIND_TYPES, 'How it binds: `transceiver` (both ways), `transmitter` (we submit; no receipts or MO on this bind) or `receiver` (receipts and MO only).', 'transceiver'),
    max_msg_per_sec: rate('Submits per second on this bind; 0 = unlimited. It only ever delays, never refuses.'),
    window: integer(1, 10000, 'Our requests the upstream may have unanswered on this bind. More wait for a slot, up to 16 × window, then fail with `THROTTLED` (a routing chain takes its next step).', 10),
    tls: outboundTls,
    enquire_link_timer_ms: timerMs('`server.enquire_link_timer_ms` for this bind. Absent: the server\'s.'),
    response_timer_ms: timerMs("`server.response_timer_ms` for this bind. Absent: the server's. Keep it below the tenant's `handler_deadline_ms`, so a silent upstream is given up on by the chain, not the deadline."),
    addr_ton: integer(0, 255, 'addr_ton sent in the bind: the type of number of `address_range`.', 0),
    addr_npi: integer(0, 255, 'addr_npi sent in the bind: the numbering plan of `address_range`.', 0),
    address_range: text(0, 40, 'at most 40 characters (the SMPP 3.4 limit for address_range)', 'address_range sent in the bind: the addresses this bind serves, for upstreams that route MO by it. Empty: none.', ''),
    single: flag('Held by one replica at a time, through a lease in the store (`cache.lease_ttl_ms`). The other replicas show it as `standby`, and sends through it there fail with `BIND_DOWN`. For upstreams that allow one bind per system_id.', false),
    receipt_id: oneOf(
      RECEIPT_ID_FORMS,
      "How this upstream writes message ids in receipts relative to its submit_sm_resp ids: `exact`; `hex` (case and leading zeros ignored); `decimal`; `hex-decimal` (hex response, the same number in decimal in the receipt); `decimal-hex`; or `auto`, each of these in turn. One form per account: binds of one account that differ are a config error.",
      'auto',
    ),
    account: text(1, 128, '1 to 128 characters naming the upstream account', 'The upstream account this bind is a session of. Binds of one account share one receipt correlation space, since an SMSC may send a receipt on any session of the account. Absent: host, port and system_id name the account.'),
  },
};

const CHAIN_STEPS =
  'Steps tried in order: `bind:<name>` sends on that bind (skipped when it is down, in standby, throttled or its window queue is full, or when the upstream answers `ESME_RTHROTTLED` or `ESME_RMSGQFUL`); `queue` keeps the message in the journal and the core retries it (see `tenants[].queue`); `reject` answers `ESME_RINVDSTADR`, `reject:<ESME status>` that status. Past the last step the answer is `ESME_RSUBMITFAIL`.';

function chain(description: string, dflt?: readonly string[]): SchemaObject {
  const s: SchemaObject = {
    type: 'array',
    description,
    items: {
      type: 'string',
      pattern: '^(bind:.+|queue|reject|reject:ESME_[A-Z0-9_]+)$',
      expected: '"bind:<name>", "queue", "reject" or "reject:<ESME status>"',
    },
  };
  if (dflt !== undefined) s.default = [...dflt];
  return s;
}

const routing: SchemaObject = {
  type: 'object',
  description: "The tenant's routing: how `smpp.forward` routes a message, and what the policy reads through `smpp.routingRules()`.",
  default: {},
  additionalProperties: false,
  properties: {
    default_chain: chain(`The chain of a destination no rule matches. ${CHAIN_STEPS} Empty: every such message gets \`ESME_RSUBMITFAIL\`.`, []),
    rules: {
      type: 'array',
      description: 'Rules by destination: the rule with the longest `prefix` of `destination_addr` picks the chain.',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix', 'name', 'chain'],
        properties: {
          prefix: {
            type: 'string',
            pattern: '^[0-9]{1,20}$',
            expected: '1 to 20 digits (a leading part of destination_addr)',
            description: 'Leading digits of `destination_addr` this rule matches; unique within the tenant.',
          },
          name: nonEmpty("The rule's name: a policy can pick the rule by it (`smpp.forward(pdu, { rule })`)."),
          chain: chain('The chain of a destination this rule matches; its steps as in `default_chain`.'),
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
      expected: "1 to 63 letters, digits, '_' or '-', starting with a letter or digit",
      description: "The tenant's name in the admin API, logs, metrics and cache keys. Unique, compared case-insensitively.",
    },
    policy: file("The tenant's policy script, TypeScript or JavaScript. Editing it reloads it atomically, unless an upload pinned the tenant. Absent: the tenant has no policy, and its ESMEs' binds are refused, until one is uploaded."),
    system_ids: {
      type: 'array',
      description: "Inbound ESMEs that belong to this tenant, by the system_id they bind with. A system_id belongs to one tenant at most; one no tenant has is answered `ESME_RINVSYSID`.",
      default: [],
      items: { type: 'string', minLength: 1, maxLength: 15, expected: '1 to 15 characters (the SMPP 3.4 limit for system_id)' },
    },
    upload_token: {
      type: 'string',
      description: "Bearer token that reaches only this tenant's admin endpoints: upload, roll back and list its policy versions. A secret, never logged. Unset or empty: none.",
    },
    limits,
    binds: {
      type: 'array',
      description: "The tenant's outbound binds to upstream SMSCs. The core supervises each: reconnects with exponential backoff (capped at 60 s, reset after a healthy session), enquire_link, its window and pacing.",
      default: [],
      items: bind,
    },
    routing,
    settings: {
      type: 'object',
      description: "Free-form settings the tenant's policy reads through `smpp.settings()`: ESME passwords, MO routes, … Only that policy sees them: never in `smpp.config()`, the admin API or the logs.",
      default: {},
    },
    queue: {
      type: 'object',
      description: 'How the core retries what a routing chain queued (the `queue` step). Queued messages are also tried at once when a bind of the tenant comes up.',
      default: {},
      additionalProperties: false,
      properties: {
        retry_ms: integer(10, 3_600_000, 'First retry delay; it doubles per attempt.', 1000),
        retry_max_ms: integer(10, 86_400_000, 'Longest retry delay: the doubling stops here.', 60_000),
        expiry_ms: integer(1000, MAX_TIMER_MS, 'A queued message without a validity_period expires after this long; the ESME gets an `EXPIRED` receipt if it asked for receipts.', 86_400_000),
        max_expiry_ms: integer(1000, 31 * 86_400_000, 'A validity_period further away than this is cut to it.', 7 * 86_400_000),
      },
    },
    receipts: {
      type: 'object',
      description: 'How the core keeps what correlates delivery receipts, per upstream account (README, "Receipts, per upstream account").',
      default: {},
      additionalProperties: false,
      properties: {
        ttl_ms: integer(1000, 31 * 86_400_000, "How long a sent message's correlation is kept without a final receipt.", 259_200_000),
        early_ttl_ms: integer(1000, 86_400_000, "How long a receipt that came before its message's submit_sm_resp waits for it; one that matches nothing by then is dropped (`sluice_receipts_unmatched_total`).", 600_000),
        dedupe_ms: integer(1000, 86_400_000, 'How long a message is remembered after its final receipt, so a receipt the upstream sends again is not delivered twice.', 600_000),
        by: oneOf(
          ['policy', 'core'],
          "Who handles a delivery receipt from an upstream: `policy` (its deliver_sm / data_sm handler, which passes it on with `smpp.forward`) or `core` (the core correlates it from the journal without a sandbox round trip; the policy's handlers then see MO only).",
          'policy',
        ),
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
    tenants: {
      type: 'array',
      description:
        'The customers of this host, each with its policy, its ESMEs (by system_id), its outbound binds, routing and limits, and its own cache namespace. A reload (`kill -HUP`, `POST /v1/reload`) changes them in one step; tenants whose config did not change are not touched.',
      default: [],
      items: tenant,
    },
  },
});

/**
 * A key's default, read from the schema: for code that needs one where no
 * config is at hand (a tenant removed by a reload while its messages are
 * still in the journal). Defaults live in the schema and nowhere else.
 * `defaultOf('tenants', 'receipts', 'ttl_ms')`: array items are stepped into.
 */
export function defaultOf(...keys: string[]): number {
  let node: SchemaObject | undefined = configSchema;
  for (const k of keys) {
    const props = (node?.properties ?? (node?.items as SchemaObject | undefined)?.properties) as Record<string, SchemaObject> | undefined;
    node = props?.[k];
  }
  const d = node?.default;
  if (typeof d !== 'number') throw new Error(`config schema: no numeric default at ${keys.join('.')}`);
  return d;
}

/**
 * One registry for every error Sluice raises on purpose. Each code is stable,
 * documented here in one line, and matched by `code`, never by message.
 */
export const ERROR_CODES = {
  /** The configuration file is missing, unparsable or fails the schema. */
  SLUICE_ERR_CONFIG: 'invalid configuration',
  /** A field handed to a send helper cannot be encoded (bad type, unrepresentable text, too long). */
  INVALID_FIELD: 'invalid field',
  /** The named outbound bind is not bound right now. */
  BIND_DOWN: 'bind is down',
  /** The peer did not answer within response_timer_ms. */
  TIMEOUT: 'response timeout',
  /** The request was refused by a token bucket or a full window. */
  THROTTLED: 'throttled',
  /** No outbound bind of that name belongs to this tenant. */
  UNKNOWN_BIND: 'unknown bind',
  /** No bound session of that id belongs to this tenant. */
  UNKNOWN_SESSION: 'unknown session',
  /** The session closed before the peer answered. */
  SESSION_CLOSED: 'session closed',
  /** An SMPP status name that does not exist. */
  UNKNOWN_STATUS: 'unknown command_status',
  /** A cache write over the tenant's quota or value size limit. */
  QUOTA_EXCEEDED: 'quota exceeded',
  /** The shared store (cache.url) did not answer: nothing was held. */
  STORE_UNAVAILABLE: 'store unavailable',
  /** No tenant of that id is configured (host side only; policies never name tenants). */
  UNKNOWN_TENANT: 'unknown tenant',
  /** A host call failed for a reason of the host's own; the policy is told no more (no path, no secret). */
  HOST_ERROR: 'host call failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes no policy ever sees; every other code may reach a policy and is declared in sandbox/sluice.d.ts. */
export const HOST_ONLY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['SLUICE_ERR_CONFIG', 'UNKNOWN_TENANT']);

/** Base class of Sluice's own errors: a stable `code`, a message, an optional `cause`. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  /** For a failed request to a peer: whether the PDU had gone out on the wire (undefined: not a send). */
  readonly sent?: boolean;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; sent?: boolean }) {
    super(message ?? ERROR_CODES[code], options);
    this.code = code;
    if (options?.sent !== undefined) this.sent = options.sent;
    this.name = 'SluiceError';
  }
}

export function isSluiceError(err: unknown, code?: ErrorCode): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

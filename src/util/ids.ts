import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

// A random per-process prefix plus a counter: unique across restarts and replicas
// without coordination, short enough for SMPP's 65-octet message_id.
const prefix = randomBytes(5).toString('hex');
let counter = 0;

/** A new ESME-facing message id: 10 hex chars of process identity, then a base-36 counter. */
export function newMessageId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return prefix + counter.toString(36).padStart(6, '0');
}

/** This process's name among replicas (leases, the outbox's liveness, log lines): host, pid and a random suffix. */
export function replicaName(): string {
  return `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
}

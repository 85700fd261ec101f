// The public API of the sluice package: an explicit list.
export { Gateway, type GatewayOptions, type SendResult, type BindView } from './gateway';
export { startSluice, type Sluice, type StartOptions } from './runtime';
export { loadConfig, parseConfig, ConfigError } from './config/load';
export type { SluiceConfig, TenantConfig, TenantLimits, OutboundBindConfig, ServerConfig } from './config/schema';
export { SluiceError, ERROR_CODES, type ErrorCode } from './errors';
export type { PolicyHost, BindRequest, BindDecision, PduOutcome, SessionInfo } from './dispatch/policy-host';
export { InProcessPolicyHost, accept, reject, reply, type InProcessHandlers } from './dispatch/in-process';
export { PolicyHarness, type HarnessOptions, type HarnessResult, type SentMessage } from './testing/harness';
export type { PolicyPdu } from './pdu/model';
export { SmscSimulator, type SimOptions } from './tools/sim';
export { EsmeClient, type EsmeClientOptions } from './tools/esme-client';
export { createLogger } from './log/logger';

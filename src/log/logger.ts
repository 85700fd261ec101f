import { hostname } from 'node:os';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths redacted from every log line: SMPP passwords, admin and upload
 * tokens, and message bodies (which are customers' personal data).
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'upload_token',
  '*.upload_token',
  'short_message',
  '*.short_message',
  '*.*.short_message',
  'message_payload',
  '*.message_payload',
  '*.*.message_payload',
  'text',
  '*.text',
  '*.*.text',
  'receipt.text',
  'receipt.raw',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; stdout by default. Tests pass a recording stream. */
  destination?: DestinationStream;
}

/** The root logger. Everything else takes a child of it, injected, never imported. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      // Every line says which host wrote it; the runtime adds the replica (startSluice).
      base: { name: 'sluice', host: hostname() },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that keeps its JSON lines in memory, for tests that assert on logs. */
export function recordingLogger(level = 'debug'): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination: DestinationStream = { write: (s: string) => void chunks.push(s) };
  const logger = createLogger({ level, destination });
  return {
    logger,
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export const silentLogger: Logger = pino({ level: 'silent' });
export type { Logger };

/**
 * The process logger (pino, JSON lines). Tokens and positions must never reach logs
 * above debug level: the redaction list is the safety net behind that rule.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log object. */
const REDACTED = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'lat',
  'lon',
  '*.lat',
  '*.lon',
  'secret',
  '*.secret',
];

/** Makes the process logger at `level`; `destination` lets tests capture lines. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED, censor: '[redacted]' }, base: { svc: 'fieldtrack' } }, destination);
}

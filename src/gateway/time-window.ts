/**
 * The time window a fix's `ts` must fall in: not before the first day the archive still
 * keeps (RETENTION_DAYS, the same day boundary as the retention job) and not more than
 * 5 minutes ahead of the server clock. A point outside it could never be read back (or
 * would be dropped within the hour), and a phone with a wrong clock could otherwise
 * spread one batch over hundreds of day partitions.
 */
import { MAX_FUTURE_MS } from '../protocol.js';
import { firstKeptDayStart } from '../telemetry/retention.js';

/** Accepted `ts` range, both ends inclusive, ms since the epoch. */
export interface TimeWindow {
  /** The server clock the window was taken at. */
  readonly now: number;
  readonly oldest: number;
  readonly newest: number;
  /** RETENTION_DAYS, for messages. */
  readonly retentionDays: number;
}

/** The window as of `now`. */
export function timeWindow(now: number, retentionDays: number): TimeWindow {
  // UTC midnight: the boundary of the archive's day partitions. Arithmetic only: taken per message.
  return { now, oldest: firstKeptDayStart(now, retentionDays), newest: now + MAX_FUTURE_MS, retentionDays };
}

/** Why `ts` is outside `window`, as the tail of a field message, or null when it is inside. */
export function outsideWindow(ts: number, window: TimeWindow): string | null {
  if (ts > window.newest) return 'more than 5 minutes in the future';
  if (ts < window.oldest) {
    return `older than the ${window.retentionDays}-day retention window (before ${new Date(window.oldest).toISOString()})`;
  }
  return null;
}

/**
 * Refusing instead of queueing when the node falls behind (PROTOCOL.md, "Overload and
 * error codes"). The socket endpoint counts pings and batches whose answers are still
 * pending (an InflightTracker of their own); past MAX_FIXES_IN_FLIGHT, a new `ping` or
 * `batch` is answered `rate_limited` with a `retryMs` at once, so a device learns within a
 * frame that it should keep its fixes and send them later in a `batch`, instead of waiting
 * behind a queue that only grows. Every other message (SOS, check-in, order transitions,
 * a console's ack) is never shed.
 */

/** Message types that may be shed under load. */
export const SHEDDABLE: ReadonlySet<string> = new Set(['ping', 'batch']);

/** Shortest and longest wait a shed frame is told; spread so devices do not return in lockstep. */
const RETRY_MIN_MS = 250;
const RETRY_SPREAD_MS = 750;

/** How long a shed device should wait before sending its fixes again. */
export function shedRetryMs(): number {
  return RETRY_MIN_MS + Math.floor(Math.random() * RETRY_SPREAD_MS);
}

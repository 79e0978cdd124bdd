/**
 * Refusing instead of queueing when the node falls behind (PROTOCOL.md, "Overload and
 * error codes"). Pings and batches whose answers are still pending are counted node-wide;
 * past `limit`, a new `ping` or `batch` is answered `rate_limited` with a `retryMs` at once,
 * so a device learns within a frame that it should keep its fixes and send them later in
 * a `batch`, instead of waiting behind a queue that only grows. Every other message (SOS,
 * check-in, order transitions, a console's ack) is never shed.
 */

/** Message types that may be shed under load. */
export const SHEDDABLE: ReadonlySet<string> = new Set(['ping', 'batch']);

/** Shortest and longest wait a shed frame is told; spread so devices do not return in lockstep. */
const RETRY_MIN_MS = 250;
const RETRY_SPREAD_MS = 750;

/** See the module comment. One per node. */
export class LoadShedder {
  private pending = 0;

  constructor(private readonly limit: number) {}

  /** Pings and batches answered not yet. */
  get inFlight(): number {
    return this.pending;
  }

  /** Whether a new ping or batch must be refused now. */
  overloaded(): boolean {
    return this.pending >= this.limit;
  }

  /** Counts `work` (a ping or batch being handled) until it settles. */
  track(work: Promise<unknown>): void {
    this.pending += 1;
    void work.finally(() => {
      this.pending -= 1;
    });
  }

  /** How long a shed device should wait before sending its fixes again. */
  retryMs(): number {
    return RETRY_MIN_MS + Math.floor(Math.random() * RETRY_SPREAD_MS);
  }
}

/**
 * Refusing instead of queueing when the node falls behind (PROTOCOL.md, "Overload and
 * error codes"). Only `ping` and `batch` are ever shed; SOS, check-ins, order transitions
 * and a console's answers always go through.
 *
 * A shed frame is answered `rate_limited` with a `retryMs` at once, so a device learns
 * within a frame that it should keep its fixes and send them later in a `batch`, instead
 * of waiting behind a queue that only grows. Queueing is what made the node collapse: at
 * 2.5x its capacity every answer came seconds late, an SOS included, because the SOS
 * waited in the same event loop behind the pings.
 *
 * How many fixes may be in flight adapts to the node (a latency-driven concurrency limit,
 * as TCP Vegas or Netflix's concurrency-limits do it). Every `intervalMs` the limiter looks
 * at the shortest time a ping or batch took to be answered in that interval, and at how
 * busy the event loop was. A standing queue shows as a minimum above `targetMs` (the fsync
 * and a few loop turns stay well under it when the node keeps up) while the loop had no
 * idle time: then the limit shrinks in proportion (limit x target / minimum, by at most a
 * fifth per interval). A slow answer with an idle loop is a slow disk, which refusing
 * pings would not speed up. Otherwise, if the traffic used the limit, it grows by a
 * twentieth. Between the floor and the ceiling (MAX_FIXES_IN_FLIGHT) the node so keeps
 * about enough fixes in flight to stay busy, and answers everything else at once. The
 * minimum, not a percentile, is used because one slow fsync must not look like overload.
 */

import { performance } from 'node:perf_hooks';

/** Message types that may be shed under load. */
export const SHEDDABLE: ReadonlySet<string> = new Set(['ping', 'batch']);

/** Shortest and longest wait a shed frame is told; spread so devices do not return in lockstep. */
const RETRY_MIN_MS = 250;
const RETRY_SPREAD_MS = 750;

/** How long a shed device should wait before sending its fixes again. */
export function shedRetryMs(): number {
  return RETRY_MIN_MS + Math.floor(Math.random() * RETRY_SPREAD_MS);
}

/** Settings of the limiter (config: MAX_FIXES_IN_FLIGHT, SHED_MIN_IN_FLIGHT, SHED_TARGET_MS, SHED_INTERVAL_MS). */
export interface ShedderOptions {
  /** Ceiling of the limit: never more fixes in flight than this. */
  maxInFlight: number;
  /** Answer time of a ping above which the node counts as queueing. */
  targetMs: number;
  /** How often the limit is adjusted. */
  intervalMs: number;
  /**
   * Floor of the limit: a node always takes at least this many fixes at once. It keeps a
   * node whose answers are slow for another reason than its own queue (a CPU shared with
   * other work, long loop turns from connection churn) from shrinking the limit to nothing.
   */
  minInFlight: number;
  /** Share of the time since the last call the event loop was busy; tests inject their own. */
  loopBusy?: () => number;
}

/** Event-loop utilisation since the previous call (perf_hooks), from 0 (idle) to 1 (never idle). */
function eventLoopBusy(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return busy;
  };
}

/** Shrinks the limit at most this much per interval, so one bad interval cannot starve the node. */
const MAX_SHRINK = 0.8;
/** Share of an interval the event loop must have been busy for slow answers to count as overload. */
const BUSY = 0.9;
/** Growth per interval when the limit was in use and the answers were quick. */
const GROWTH = 0.05;

/** See the module comment. One per node. */
export class LoadShedder {
  private inFlight = 0;
  private current: number;
  private readonly floor: number;
  private intervalStart = Number.NEGATIVE_INFINITY;
  private fastest = Number.POSITIVE_INFINITY;
  private peak = 0;

  private readonly loopBusy: () => number;

  constructor(private readonly opts: ShedderOptions) {
    this.floor = Math.min(opts.maxInFlight, opts.minInFlight);
    this.current = opts.maxInFlight;
    this.loopBusy = opts.loopBusy ?? eventLoopBusy();
  }

  /** Fixes in flight now. */
  get size(): number {
    return this.inFlight;
  }

  /** The limit in force now. */
  get limit(): number {
    return Math.floor(this.current);
  }

  /** Whether a new ping or batch arriving at `now` (ms, monotonic) must be refused. */
  shouldShed(now: number): boolean {
    this.adjust(now);
    return this.inFlight >= this.current;
  }

  /** A ping or batch was taken. */
  begin(): void {
    this.inFlight += 1;
    if (this.inFlight > this.peak) this.peak = this.inFlight;
  }

  /** A ping or batch taken at some point was answered `tookMs` later. */
  end(tookMs: number): void {
    this.inFlight -= 1;
    if (tookMs < this.fastest) this.fastest = tookMs;
  }

  private adjust(now: number): void {
    if (now - this.intervalStart < this.opts.intervalMs) return;
    const { targetMs, maxInFlight } = this.opts;
    const busy = this.loopBusy();
    if (this.fastest > targetMs && Number.isFinite(this.fastest) && busy >= BUSY) {
      const factor = Math.max(MAX_SHRINK, targetMs / this.fastest);
      this.current = Math.max(this.floor, this.current * factor);
    } else if (this.peak >= this.current * 0.9) {
      this.current = Math.min(maxInFlight, this.current * (1 + GROWTH) + 1);
    }
    this.intervalStart = now;
    this.fastest = Number.POSITIVE_INFINITY;
    this.peak = this.inFlight;
  }
}

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
 * How many fixes may be in flight adapts to how busy the event loop is. Every interval
 * the limiter reads the loop's utilisation (perf_hooks): above HIGH the limit shrinks by a
 * sixth; below it, if the traffic used the limit, it grows by a tenth. The node so runs
 * just under saturation, where its loop turns stay short: an SOS, which needs a handful of
 * turns from frame to console, is not kept waiting behind a saturated loop, and every
 * frame is answered quickly, a ping with an ack or a refusal. Utilisation, not answer
 * time, is the signal, because answer times on a node have floors that are not queueing
 * (an fsync, loop turns, a CPU shared with other work), and a controller that shrank on
 * slow answers starved such a node down to nothing; a node whose loop has idle time gains
 * nothing by refusing pings.
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

/** Settings of the limiter (config: MAX_FIXES_IN_FLIGHT, SHED_MIN_IN_FLIGHT, SHED_INTERVAL_MS). */
export interface ShedderOptions {
  /** Ceiling of the limit, and where it starts: never more fixes in flight than this. */
  maxInFlight: number;
  /** Floor of the limit: a node always takes at least this many fixes at once. */
  minInFlight: number;
  /** How often the limit is adjusted. */
  intervalMs: number;
  /** Share of the time since the last call the event loop was busy; tests inject their own. */
  loopBusy?: () => number;
}

/** Loop utilisation above which the node counts as saturated. */
export const HIGH = 0.9;
const SHRINK = 5 / 6;
const GROW = 1.1;

/** Event-loop utilisation since the previous call, from 0 (idle) to 1 (never idle). */
function eventLoopBusy(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return busy;
  };
}

/** See the module comment. One per node. */
export class LoadShedder {
  private inFlight = 0;
  private current: number;
  private intervalStart = Number.NaN;
  private peak = 0;
  private readonly loopBusy: () => number;

  constructor(private readonly opts: ShedderOptions) {
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

  /** A ping or batch taken earlier was answered. */
  end(): void {
    this.inFlight -= 1;
  }

  private adjust(now: number): void {
    if (Number.isNaN(this.intervalStart)) this.intervalStart = now;
    if (now - this.intervalStart < this.opts.intervalMs) return;
    const { minInFlight, maxInFlight } = this.opts;
    if (this.loopBusy() > HIGH) this.current = Math.max(minInFlight, this.current * SHRINK);
    else if (this.peak >= this.current * 0.9) this.current = Math.min(maxInFlight, this.current * GROW + 1);
    this.intervalStart = now;
    this.peak = this.inFlight;
  }
}

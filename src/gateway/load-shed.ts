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
 * How many fixes may be in flight adapts to what the node delivers, the way TCP BBR sizes
 * its window: from the best delivery rate of the last second (fixes answered per ms) and
 * the shortest answer time of the last ten seconds, the limit is twice their product (two
 * "bandwidth-delay products"), between a floor and the ceiling (MAX_FIXES_IN_FLIGHT). So a
 * node keeps enough fixes in flight to stay fully busy, and at most about one answer time
 * of queue on top: admitted pings are answered within about twice the quickest answer,
 * everything past the limit is refused at once. The limit follows the node wherever its
 * answer time comes from: a CPU-bound node gets a short queue, a node that waits on a slow
 * disk or a CPU shared with other work keeps more in flight instead of starving itself (a
 * controller that shrinks on slow answers alone collapsed there). A burst after a quiet
 * spell may double the limit every interval, like TCP's slow start.
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

/** Settings of the limiter (config: MAX_FIXES_IN_FLIGHT, SHED_MIN_IN_FLIGHT, SHED_INTERVAL_MS). */
export interface ShedderOptions {
  /** Ceiling of the limit: never more fixes in flight than this. */
  maxInFlight: number;
  /**
   * Floor of the limit: a node always takes at least this many fixes at once, whatever it
   * measured (nothing yet after a quiet spell, for one).
   */
  minInFlight: number;
  /** How often the limit is recomputed. */
  intervalMs: number;
}

/** Limit = GAIN x best rate x shortest answer time. */
const GAIN = 2;
/** Intervals the best delivery rate is taken over (one second at 100 ms). */
const RATE_WINDOW = 10;
/** Intervals the shortest answer time is taken over (ten seconds at 100 ms). */
const RTT_WINDOW = 100;

/** The largest (or smallest) of the last `size` values pushed. */
class WindowedExtreme {
  private readonly values: number[] = [];
  constructor(
    private readonly size: number,
    private readonly pick: (a: number, b: number) => number,
    private readonly none: number,
  ) {}

  push(v: number): void {
    this.values.push(v);
    if (this.values.length > this.size) this.values.shift();
  }

  get value(): number {
    let best = this.none;
    for (const v of this.values) best = this.pick(best, v);
    return best;
  }
}

/** See the module comment. One per node. */
export class LoadShedder {
  private inFlight = 0;
  private current: number;
  private intervalStart = Number.NaN;
  private answered = 0;
  private fastest = Number.POSITIVE_INFINITY;
  private readonly bestRate = new WindowedExtreme(RATE_WINDOW, Math.max, 0);
  private readonly shortestAnswer = new WindowedExtreme(RTT_WINDOW, Math.min, Number.POSITIVE_INFINITY);

  constructor(private readonly opts: ShedderOptions) {
    this.current = Math.min(opts.maxInFlight, opts.minInFlight);
  }

  /** Fixes in flight now. */
  get size(): number {
    return this.inFlight;
  }

  /** The limit in force now. */
  get limit(): number {
    return this.current;
  }

  /** Whether a new ping or batch arriving at `now` (ms, monotonic) must be refused. */
  shouldShed(now: number): boolean {
    this.adjust(now);
    return this.inFlight >= this.current;
  }

  /** A ping or batch was taken. */
  begin(): void {
    this.inFlight += 1;
  }

  /** A ping or batch taken at some point was answered `tookMs` later. */
  end(tookMs: number): void {
    this.inFlight -= 1;
    this.answered += 1;
    if (tookMs < this.fastest) this.fastest = tookMs;
  }

  private adjust(now: number): void {
    if (Number.isNaN(this.intervalStart)) this.intervalStart = now;
    const elapsed = now - this.intervalStart;
    if (elapsed < this.opts.intervalMs) return;
    this.bestRate.push(this.answered / elapsed);
    if (Number.isFinite(this.fastest)) this.shortestAnswer.push(this.fastest);
    const product = this.bestRate.value * this.shortestAnswer.value;
    const wanted = Number.isFinite(product) ? Math.ceil(GAIN * product) : 0;
    this.current = Math.min(this.opts.maxInFlight, Math.max(this.opts.minInFlight, wanted));
    this.intervalStart = now;
    this.answered = 0;
    this.fastest = Number.POSITIVE_INFINITY;
  }
}

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
 * How many fixes may be in flight follows Little's law: the node's best delivery rate of
 * the last second (fixes answered per ms) times the answer time it may take (`targetMs`),
 * between a floor and the ceiling (MAX_FIXES_IN_FLIGHT). A saturated node so holds about
 * `targetMs` of work, answers what it admitted within about that, and refuses the rest at
 * once; a node with spare capacity never reaches its limit. Three controllers were tried
 * here and measured first: shrinking on slow answers, and shrinking on a busy event loop,
 * both starved a node to its floor (answers slow for other reasons than queueing; a loop
 * kept busy by the refusals themselves), which is the collapse shedding is meant to avoid.
 * The rate is measured, not guessed, so the limit needs no tuning per machine. A node whose
 * answers take long even without a queue (a slow disk) would still starve on a fixed
 * budget, so the budget is never less than twice the quickest answer of the last ten
 * seconds.
 */

/** Message types that may be shed under load. */
export const SHEDDABLE: ReadonlySet<string> = new Set(['ping', 'batch']);

/**
 * The wait a shed frame is told, from RETRY_MIN_MS when the node sheds a little to
 * RETRY_MAX_MS when it sheds nearly everything, times a random factor from 1 to 2 so that
 * devices do not come back in lockstep. Under sustained overload a device that came back
 * every half second would send more frames than its own pings (each refusal is a frame in
 * and a frame out, and on loopback a send costs as much as handling a ping): waiting longer
 * sends the held fixes in fewer, larger batches, which the node takes more cheaply.
 */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

/** Settings of the limiter (config: MAX_FIXES_IN_FLIGHT, SHED_MIN_IN_FLIGHT, SHED_TARGET_MS, SHED_INTERVAL_MS). */
export interface ShedderOptions {
  /** Ceiling of the limit, and where it starts: never more fixes in flight than this. */
  maxInFlight: number;
  /** Floor of the limit: a node always takes at least this many fixes at once. */
  minInFlight: number;
  /** Answer time a saturated node may take for a fix it admitted. */
  targetMs: number;
  /** How often the limit is recomputed. */
  intervalMs: number;
}

/** Intervals over which the best delivery rate is taken (one second at 100 ms). */
const RATE_WINDOW = 10;
/** Intervals over which the quickest answer is taken (ten seconds at 100 ms). */
const ANSWER_WINDOW = 100;

/** See the module comment. One per node. */
export class LoadShedder {
  private inFlight = 0;
  private current: number;
  private intervalStart = Number.NaN;
  private answered = 0;
  private readonly rates: number[] = [];
  private fastest = Number.POSITIVE_INFINITY;
  private readonly fastestPerInterval: number[] = [];
  private offered = 0;
  private refused = 0;
  /** Share of pings and batches refused, smoothed over the last few intervals. */
  private shedShare = 0;

  constructor(private readonly opts: ShedderOptions) {
    this.current = opts.maxInFlight;
  }

  /** Fixes in flight now. */
  get size(): number {
    return this.inFlight;
  }

  /** The limit in force now. */
  get limit(): number {
    return this.current;
  }

  /** Whether the limit is reached now: a hint that the next ping or batch may well be refused. */
  get saturated(): boolean {
    return this.inFlight >= this.current;
  }

  /** Whether a new ping or batch arriving at `now` (ms, monotonic) must be refused; ask once per frame. */
  shouldShed(now: number): boolean {
    this.adjust(now);
    this.offered += 1;
    const shed = this.inFlight >= this.current;
    if (shed) this.refused += 1;
    return shed;
  }

  /** How long a device whose fixes were just refused should wait before sending them again. */
  retryMs(random: () => number = Math.random): number {
    const base = RETRY_MIN_MS + (RETRY_MAX_MS - RETRY_MIN_MS) * this.shedShare;
    return Math.round(base * (1 + random()));
  }

  /** A ping or batch was taken. */
  begin(): void {
    this.inFlight += 1;
  }

  /** A ping or batch taken earlier was answered `tookMs` after it was taken. */
  end(tookMs: number): void {
    this.inFlight -= 1;
    this.answered += 1;
    if (tookMs < this.fastest) this.fastest = tookMs;
  }

  private adjust(now: number): void {
    if (Number.isNaN(this.intervalStart)) this.intervalStart = now;
    const elapsed = now - this.intervalStart;
    if (elapsed < this.opts.intervalMs) return;
    this.rates.push(this.answered / elapsed);
    if (this.rates.length > RATE_WINDOW) this.rates.shift();
    if (Number.isFinite(this.fastest)) this.fastestPerInterval.push(this.fastest);
    if (this.fastestPerInterval.length > ANSWER_WINDOW) this.fastestPerInterval.shift();
    const best = Math.max(...this.rates);
    const { minInFlight, maxInFlight, targetMs } = this.opts;
    const quickest = this.fastestPerInterval.length > 0 ? Math.min(...this.fastestPerInterval) : 0;
    const budget = Math.max(targetMs, 2 * quickest);
    this.current = Math.min(maxInFlight, Math.max(minInFlight, Math.ceil(best * budget)));
    if (this.offered > 0) this.shedShare = 0.5 * this.shedShare + 0.5 * (this.refused / this.offered);
    this.offered = 0;
    this.refused = 0;
    this.intervalStart = now;
    this.answered = 0;
    this.fastest = Number.POSITIVE_INFINITY;
  }
}

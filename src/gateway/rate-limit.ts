/**
 * Per-connection token bucket that refills at `ratePerSec` up to `burst`: one per
 * connection for messages, and one for `batch` points where a message spends one token per
 * point. It also counts refusals in a row, so that a client which keeps pushing past its
 * limit can be disconnected instead of answered forever, and says how long to wait.
 */
export class RateLimiter {
  private tokens: number;
  private refilledAt: number;
  /** Requests refused since the last one that was let through. */
  refusedInARow = 0;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes `cost` tokens if there are that many; false means the request must be refused. */
  take(now: number, cost = 1): boolean {
    this.refill(now);
    if (this.tokens >= cost) {
      this.tokens -= cost;
      this.refusedInARow = 0;
      return true;
    }
    this.refusedInARow += 1;
    return false;
  }

  /**
   * Milliseconds until `cost` tokens will be there (at least 1): the `retryMs` of a refusal.
   * A cost above the burst can never be met; it is answered with the time to a full bucket.
   */
  retryMs(now: number, cost = 1): number {
    this.refill(now);
    const missing = Math.min(cost, this.burst) - this.tokens;
    return Math.max(1, Math.ceil((missing * 1000) / this.ratePerSec));
  }

  private refill(now: number): void {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSec) / 1000);
      this.refilledAt = now;
    }
  }
}

/**
 * Per-connection message rate limit: a token bucket that refills at `ratePerSec` up to
 * `burst`. It also counts refusals in a row, so that a client which keeps pushing past
 * its limit can be disconnected instead of answered forever.
 */
export class RateLimiter {
  private tokens: number;
  private refilledAt: number;
  /** Messages refused since the last one that was let through. */
  refusedInARow = 0;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes one token if there is one; false means the message must be refused. */
  take(now: number): boolean {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSec) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.refusedInARow = 0;
      return true;
    }
    this.refusedInARow += 1;
    return false;
  }
}

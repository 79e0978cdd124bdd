/**
 * Counts work in flight inside the behaviour (messages queued or being handled, alert
 * changes being persisted). nact delivers messages asynchronously, so after a test moves
 * a ManualClock it awaits `settle()` to let every consequence land before asserting.
 * It is also what `close()` waits for.
 */

/** A counter of in-flight work with a way to wait until it drains. */
export class WorkCounter {
  private n = 0;

  /** One more piece of work started. */
  begin(): void {
    this.n++;
  }

  /** One piece of work finished (successfully or not). */
  end(): void {
    this.n--;
  }

  /** Work in flight now. */
  get inFlight(): number {
    return this.n;
  }

  /** Tracks a promise as one piece of work. */
  track<T>(p: Promise<T>): Promise<T> {
    this.begin();
    return p.finally(() => this.end());
  }

  /**
   * Resolves once nothing is in flight for two consecutive event-loop turns (work that
   * ends can start other work in the same turn). Rejects when work is still in flight
   * after `giveUpMs` of real time: something is stuck, and a test should say so.
   */
  async settle(giveUpMs = 30_000): Promise<void> {
    const giveUpAt = Date.now() + giveUpMs;
    let quiet = 0;
    while (quiet < 2) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      quiet = this.n === 0 ? quiet + 1 : 0;
      if (quiet === 0 && Date.now() > giveUpAt) throw new Error(`work still in flight after ${giveUpMs} ms: ${this.n}`);
    }
  }
}

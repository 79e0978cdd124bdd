/**
 * Counts message handlers still running, so that a graceful shutdown can wait for
 * their answers (acks of data already made durable) before closing sockets.
 */
import { type Clock, systemClock } from '../clock.js';

export class InflightTracker {
  constructor(private readonly clock: Clock = systemClock) {}

  private pending = 0;
  private waiters: Array<() => void> = [];

  /** One handler started; `end` must follow once it answered. */
  begin(): void {
    this.pending += 1;
  }

  /** One handler answered. */
  end(): void {
    this.pending -= 1;
    if (this.pending === 0 && this.waiters.length > 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /** Handlers still running. */
  get size(): number {
    return this.pending;
  }

  /** Resolves true when nothing is running, or false if `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(this.clock.now() + timeoutMs, () => resolve(false));
      this.waiters.push(() => {
        cancel();
        resolve(true);
      });
    });
  }
}

/**
 * Main-thread work of the archive writer (decoding a batch out of the spool, encoding it
 * for the store) gives the event loop a turn every few milliseconds of work, so that acks
 * waiting behind it never wait long. By time, not by count: when the server is busy, every
 * loop turn takes tens of milliseconds, and a batch that yields every N rows needs that
 * many turns whatever they cost, so the archive falls behind exactly when traffic peaks.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Work between two turns of the event loop. */
export const SLICE_MS = 3;

/** Measures the current slice of work and yields when it has run its time. */
export class WorkSlices {
  private start = performance.now();

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** True once the current slice has run for its time. */
  get over(): boolean {
    return performance.now() - this.start >= this.sliceMs;
  }

  /** Gives the event loop a turn when the current slice is over. */
  async pause(): Promise<void> {
    if (!this.over) return;
    await nextTurn();
    this.restart();
  }

  /** Starts a new slice, e.g. after an await that gave the loop its turn anyway. */
  restart(): void {
    this.start = performance.now();
  }
}

/**
 * Main-thread work of the archive writer (decoding a batch out of the spool, encoding it
 * for the store) gives the event loop a turn after each slice of a few milliseconds, so
 * that acks waiting behind it never wait long. By time, not by count: when the server is
 * busy every loop turn takes tens of milliseconds, and a batch that yields every N rows
 * needs that many turns whatever they cost, so the archive fell behind exactly when
 * traffic peaked.
 *
 * For the same reason a slice grows with the turns: a yield that took 80 ms to come back
 * means every ack already waits about that long for its turn, and 10 ms of archive work
 * more in it costs them little, while 2 ms slices would take five times more turns for the
 * same batch. The archive's share of the loop stays bounded (SHARE of a turn, at most
 * MAX_SLICE_MS), and on a quiet loop slices are MIN_SLICE_MS: there each slice is what an
 * ack may wait behind, and turns are cheap.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Work between two turns of the event loop while turns are short. */
export const MIN_SLICE_MS = 2;
/** The longest slice, however long turns get. */
export const MAX_SLICE_MS = 16;
/** A slice's length as a share of the last turn's. */
const SHARE = 1 / 8;

/** Measures the current slice of work and yields when it has run its time. */
export class WorkSlices {
  private start: number;
  private length = MIN_SLICE_MS;

  /** `now` and `turn` are the clock and the yield; tests pass their own. */
  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly turn: () => Promise<unknown> = nextTurn,
  ) {
    this.start = now();
  }

  /** How long the current slice may run (ms). */
  get sliceMs(): number {
    return this.length;
  }

  /** True once the current slice has run for its time. */
  get over(): boolean {
    return this.now() - this.start >= this.length;
  }

  /** Gives the event loop a turn when the current slice is over. */
  async pause(): Promise<void> {
    if (!this.over) return;
    const yielded = this.now();
    await this.turn();
    this.start = this.now();
    this.length = Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, (this.start - yielded) * SHARE));
  }
}

/**
 * Request frames of the simulated devices, timed from the frame leaving to its answer
 * (`ack` or `err`) arriving. The per-fix ack latency hides how the server answers: a fix
 * held back after `rate_limited` waits in the device on purpose. A frame's latency is what
 * the "no collapse" target is about: every frame gets an answer, and quickly, even
 * when the answer is "not now".
 */
import type * as hdr from 'hdr-histogram-js';

/** A frame answered later than this counts as late. */
export const LATE_FRAME_MS = 1000;

/** What a tally counted once closed. */
export interface FrameCounts {
  /** Frames sent while measuring. */
  frames: number;
  answered: number;
  /** Answered later than LATE_FRAME_MS. */
  over1s: number;
  /** Sent while measuring and still without an answer when the tally closed. */
  unanswered: number;
}

/** Counts frames and records their answer latency (µs) into `hist`. */
export class FrameTally {
  private frames = 0;
  private answered = 0;
  private over1s = 0;
  private closed: FrameCounts | undefined;

  constructor(private readonly hist: hdr.Histogram) {}

  /** One frame left. */
  sent(): void {
    if (this.closed === undefined) this.frames += 1;
  }

  /** One of the counted frames got its answer after `latencyMs`. */
  answer(latencyMs: number): void {
    if (this.closed !== undefined) return;
    this.answered += 1;
    if (latencyMs > LATE_FRAME_MS) this.over1s += 1;
    this.hist.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
  }

  /**
   * Ends counting: answers arriving later (after the drain gave up) change nothing, so a
   * frame is either answered within the drain or reported unanswered.
   */
  close(): FrameCounts {
    this.closed ??= {
      frames: this.frames,
      answered: this.answered,
      over1s: this.over1s,
      unanswered: this.frames - this.answered,
    };
    return this.closed;
  }
}

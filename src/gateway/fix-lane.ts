/**
 * The lane pings and batches wait in, so that nothing else waits behind them.
 *
 * uWS hands the node every frame that arrived since the last turn of the event loop in
 * one go, and each used to be decoded, validated and given to its actor right there. At
 * twice the node's capacity that is thousands of frames, and a turn of hundreds of
 * milliseconds: an SOS in the same turn waited for all of them, and each of the four or
 * five turns its journal write, commit and console push take was as long. Here a ping or
 * batch only has its bytes copied on arrival; the lane works through them in slices, one
 * per turn, and every other frame (SOS, check-ins, order transitions, a console's answers)
 * is handled the moment it arrives, ahead of the pings that came with it.
 *
 * A slice runs for as long as the rest of the loop took since the last one (at least
 * `minSliceMs`, at most MAX_SLICE_MS): the fixes get at least half the loop's time
 * whatever else it does. A fixed slice of a few milliseconds starved them on a busy or
 * descheduled process: with turns of 50 ms it gave pings a tenth of the node, and a node
 * at half its capacity shed. Turns are then about twice the other work of a turn, which
 * stays short when the node is not overloaded, and at most MAX_SLICE_MS longer when it is.
 *
 * Slices run in the timers phase of the event loop (a zero timeout), not in the check
 * phase with setImmediate: the work that the frames read in a turn queue with setImmediate
 * (an SOS's actor turn, which pushes it to consoles; an operator's ack) then runs in that
 * same turn, before the next slice. Queued behind a slice instead, each such hop waited up
 * to MAX_SLICE_MS more under overload.
 *
 * While safety work is under way (an SOS, an SOS cancel or an operator's answer read and
 * not yet answered: `urgent`), slices are the shortest (`minSliceMs`). Such work takes
 * several turns (the actors run each message in a later `setImmediate`, the push to the
 * consoles, the durable write and its answer come after), and under overload each of
 * those turns began with a slice of up to MAX_SLICE_MS: an SOS waited one long slice per
 * hop. The pings lose little: safety frames are a few a second, and each is answered
 * within a few short turns.
 *
 * Each slice first starts the durable writes the actors asked for in the turn before
 * (`runNextTurnJobs`): they then complete while the slice runs, instead of a turn later.
 *
 * The lane itself never refuses anything: how much may wait in it is the load shedder's
 * business (load-shed.ts), which counts a fix as in flight from the moment it is queued.
 */

import { runNextTurnJobs } from '../next-turn.js';

/** The longest slice, however long the rest of a turn took. */
export const MAX_SLICE_MS = 50;

/** Runs `run` in the timers phase of a later turn (see the module comment). */
function inTimersPhase(run: () => void): void {
  setTimeout(run, 0);
}

/** A queued unit of work: runs once, must not throw (a throw is reported and the lane goes on). */
export type LaneJob = () => void;

/** See the module comment. One per node. */
export class FixLane {
  private queue: Array<LaneJob | undefined> = [];
  private head = 0;
  private scheduled = false;
  /** When the last slice ended; NaN before the first. */
  private lastEnd = Number.NaN;
  /** Safety work read and not yet answered: while there is any, slices are the shortest. */
  private urgentWork = 0;

  /**
   * `minSliceMs`: the shortest slice (see the module comment). `now` and `schedule` are the
   * clock and the next-turn hook; tests pass their own.
   */
  constructor(
    private readonly minSliceMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: (run: () => void) => void = inTimersPhase,
  ) {}

  /** Jobs waiting. */
  get length(): number {
    return this.queue.length - this.head;
  }

  /**
   * Safety work has begun: slices are the shortest until the call returned here is made
   * (once; later calls do nothing), when its answer went out.
   */
  urgent(): () => void {
    this.urgentWork += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.urgentWork -= 1;
    };
  }

  /** Queues `job` behind the others; it runs in a later slice of this or a following turn. */
  push(job: LaneJob): void {
    this.queue.push(job);
    this.arm();
  }

  private arm(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(this.drain);
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    // The durable writes asked for since the last turn go to the disk first: they complete
    // while this slice runs (next-turn.ts).
    try {
      runNextTurnJobs();
    } catch (err) {
      this.onError(err);
    }
    const start = this.now();
    const rest = Number.isNaN(this.lastEnd) ? 0 : start - this.lastEnd;
    const longest = this.urgentWork > 0 ? this.minSliceMs : MAX_SLICE_MS;
    const until = start + Math.min(longest, Math.max(this.minSliceMs, rest));
    while (this.head < this.queue.length) {
      const job = this.queue[this.head] as LaneJob;
      this.queue[this.head] = undefined;
      this.head += 1;
      try {
        job();
      } catch (err) {
        this.onError(err);
      }
      if (this.now() >= until) break;
    }
    this.lastEnd = this.now();
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      // Compact now and then so the array does not grow without bound under sustained load.
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.arm();
    }
  };
}

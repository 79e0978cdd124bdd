/**
 * The lane pings and batches wait in, so that nothing else waits behind them.
 *
 * uWS hands the node every frame that arrived since the last turn of the event loop in
 * one go, and each used to be decoded, validated and given to its actor right there. At
 * twice the node's capacity that is thousands of frames, and a turn of hundreds of
 * milliseconds: an SOS in the same turn waited for all of them, and each of the four or
 * five turns its journal write, commit and console push take was as long. Here a ping or
 * batch only has its bytes copied on arrival; the lane works through them in slices of at
 * most `sliceMs` per turn, and every other frame (SOS, check-ins, order transitions, a
 * console's answers) is handled the moment it arrives. Turns stay short, so the safety
 * traffic's turns come quickly, and the fixes still get all the time the loop has left.
 *
 * The lane itself never refuses anything: how much may wait in it is the load shedder's
 * business (load-shed.ts), which counts a fix as in flight from the moment it is queued.
 */

/** A queued unit of work: runs once, must not throw (a throw is reported and the lane goes on). */
export type LaneJob = () => void;

/** See the module comment. One per node. */
export class FixLane {
  private queue: Array<LaneJob | undefined> = [];
  private head = 0;
  private scheduled = false;

  /**
   * `sliceMs`: the longest the lane works in one turn. `now` and `schedule` are the clock
   * and the next-turn hook; tests pass their own.
   */
  constructor(
    private readonly sliceMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: (run: () => void) => void = setImmediate,
  ) {}

  /** Jobs waiting. */
  get length(): number {
    return this.queue.length - this.head;
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
    const until = this.now() + this.sliceMs;
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

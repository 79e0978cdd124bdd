/**
 * Work to start at the very beginning of the next event-loop turn: the durable writes that
 * the actors ask for.
 *
 * The actors run each message in a `setImmediate` (nact), so the appends they make land in
 * the check phase, at the end of a turn. A `setImmediate` made there runs only in the next
 * turn's check phase: after that turn's timers phase, where the fix lane runs its slice of
 * pings (up to tens of milliseconds under load), and after its poll phase. The write then
 * completes in the poll phase of the turn after, so every ping, SOS and order change waited
 * a whole turn more than the disk needed.
 *
 * `atNextTurn` queues the job for the next `runNextTurnJobs`, which the fix lane calls at
 * the start of each slice: the write is in the thread pool while the slice runs and is done
 * by the same turn's poll phase. Without a slice due (no lane, or nothing in it), the job
 * runs in the next check phase, as a plain `setImmediate` would.
 */

const queued: Array<() => void> = [];
let immediateArmed = false;

/**
 * Runs the jobs queued so far, in order. A job that throws does not cost the others their
 * turn; the first error is thrown once they have run, as a throwing `setImmediate` would.
 */
export function runNextTurnJobs(): void {
  if (queued.length === 0) return;
  const jobs = queued.splice(0);
  let failure: { err: unknown } | null = null;
  for (const job of jobs) {
    try {
      job();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure !== null) throw failure.err;
}

/** Runs `job` once at the start of the next turn (see the module comment). */
export function atNextTurn(job: () => void): void {
  queued.push(job);
  if (immediateArmed) return;
  immediateArmed = true;
  setImmediate(() => {
    immediateArmed = false;
    runNextTurnJobs();
  });
}

/**
 * The `geofence_exit` alarm as a pure state machine, so its anti-flapping rule is tested
 * with tables instead of timers (the caller owns the clock and the one timer).
 *
 * Exit rule (README):
 *
 * - Fixes whose `acc` is greater than `maxAccuracyM` are ignored: no state change, no alert.
 * - A fix is *clearly outside* when its whole accuracy circle is outside the fence
 *   (circle: `dist - acc > radius`; polygon: outside it and more than `acc` from its
 *   boundary), and *clearly inside* when the whole circle is inside (circle:
 *   `dist + acc <= radius`; polygon: inside it and at least `acc` from its boundary).
 *   Anything else overlaps the edge.
 * - `geofence_exit` fires on the second clearly-outside fix in a row, or once the
 *   technician has been clearly outside for `dwellMs` (measured from the first
 *   clearly-outside fix) with no other fix in between that was not clearly outside. With
 *   `dwellMs` = 0 the first clearly-outside fix fires.
 * - Any fix that is not clearly outside ends the current outside streak. It fires at most
 *   once per exit: after firing it stays quiet until a clearly-inside fix re-arms it, so
 *   GPS jitter across the edge can neither fire on its own nor fire again.
 *
 * Timer contract: after every step the caller sets its single dwell timer to
 * `dwellDeadline` (replacing any earlier one) or cancels it when `dwellDeadline` is null,
 * and calls `onDwellTimer` when it expires. A stale timer is harmless: `onDwellTimer`
 * re-checks the state. Fixes older than the last one seen are not passed in.
 */
import { type Fence, type Fix, placeFix } from './fence.js';

/** Per technician and order, what the exit alarm remembers between fixes. */
export interface ExitWatch {
  /** `ts` of the first clearly-outside fix of the current streak; null when not outside. */
  outsideSince: number | null;
  /** Clearly-outside fixes in a row in the current streak. */
  outsideFixes: number;
  /** The alarm fired for this exit; only a clearly-inside fix re-arms it. */
  fired: boolean;
}

/** The armed, not-outside state: for a new `in_service` order, or to re-arm by hand. */
export const initialExitWatch: ExitWatch = Object.freeze({ outsideSince: null, outsideFixes: 0, fired: false });

/** The result of one step: the next state, whether to raise `geofence_exit` now, and the timer to keep. */
export type ExitStep = {
  watch: ExitWatch;
  fire: boolean;
  /** when set, re-evaluate with onDwellTimer at this time */
  dwellDeadline: number | null;
};

/** The dwell deadline implied by a state: only an armed watch with an outside streak waits. */
function deadline(watch: ExitWatch, dwellMs: number): number | null {
  return watch.outsideSince !== null && !watch.fired ? watch.outsideSince + dwellMs : null;
}

/** Advances the watch by one position fix (in time order); see the rule at the top of this file. */
export function onFix(
  watch: ExitWatch,
  fence: Fence,
  fix: Fix & { ts: number },
  opts: { maxAccuracyM: number; dwellMs: number },
): ExitStep {
  if ((fix.acc ?? 0) > opts.maxAccuracyM) {
    return { watch, fire: false, dwellDeadline: deadline(watch, opts.dwellMs) };
  }
  const placement = placeFix(fence, fix);
  if (placement === 'inside') return { watch: initialExitWatch, fire: false, dwellDeadline: null };
  if (placement === 'edge') {
    const next = watch.fired ? { outsideSince: null, outsideFixes: 0, fired: true } : initialExitWatch;
    return { watch: next, fire: false, dwellDeadline: null };
  }
  const outsideSince = watch.outsideSince ?? fix.ts;
  const outsideFixes = watch.outsideFixes + 1;
  const fire = !watch.fired && (outsideFixes >= 2 || fix.ts >= outsideSince + opts.dwellMs);
  const next: ExitWatch = { outsideSince, outsideFixes, fired: watch.fired || fire };
  return { watch: next, fire, dwellDeadline: deadline(next, opts.dwellMs) };
}

/** Re-evaluates the dwell rule when the caller's timer expires at `now`. */
export function onDwellTimer(watch: ExitWatch, now: number, dwellMs: number): ExitStep {
  const due = deadline(watch, dwellMs);
  if (due === null || now < due) return { watch, fire: false, dwellDeadline: due };
  return { watch: { ...watch, fired: true }, fire: true, dwellDeadline: null };
}

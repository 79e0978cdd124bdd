/**
 * What to do with one incoming position fix, as pure functions over a technician's live
 * position and its window of recently stored timestamps.
 *
 * Filtering rules (README):
 * - A fix at exactly (0, 0) ("null island", what broken GPS stacks send) is acked but
 *   neither archived nor used.
 * - A fix with the same `ts` as one already stored for this technician is a duplicate:
 *   acked, not stored again.
 * - A fix newer than the live position becomes the live position; an older one is late:
 *   archived, but it never moves the live position backwards and never raises an alert.
 * - Duplicates are recognised within the last `RECENT_WINDOW` stored timestamps of the
 *   technician (enough for a re-sent batch of 1000 points). An older re-sent point is
 *   stored again; the archive's track query still returns each `ts` once.
 */
import type { LivePosition } from './records.js';

/** How many stored timestamps per technician are remembered for duplicate detection. */
export const RECENT_WINDOW = 1024;

/** The fate of one fix: ignored (0,0), a duplicate, the new live position, or a late point. */
export type FixFate = 'ignore' | 'duplicate' | 'live' | 'late';

/** Decides the fate of a fix given the live position and the sorted recent window. */
export function classifyFix(
  pos: LivePosition | null,
  recent: readonly number[],
  ts: number,
  lat: number,
  lon: number,
): FixFate {
  if (lat === 0 && lon === 0) return 'ignore';
  // Every stored ts is <= the live ts, so anything newer is new.
  if (pos === null || ts > pos.ts) return 'live';
  if (ts === pos.ts || hasTs(recent, ts)) return 'duplicate';
  return 'late';
}

/** Binary search of a sorted window. */
export function hasTs(recent: readonly number[], ts: number): boolean {
  const i = lowerBound(recent, ts);
  return i < recent.length && recent[i] === ts;
}

/**
 * Adds `ts` to the sorted window in place, dropping the oldest beyond `RECENT_WINDOW`.
 * In place on purpose: copying a 1024-entry array per ping would dominate the hot path.
 * Callers only do this at commit time, after the point is stored.
 */
export function rememberTs(recent: number[], ts: number, window = RECENT_WINDOW): void {
  const n = recent.length;
  if (n === 0 || ts > recent[n - 1]!) recent.push(ts);
  else {
    const i = lowerBound(recent, ts);
    if (recent[i] === ts) return;
    recent.splice(i, 0, ts);
  }
  if (recent.length > window) recent.shift();
}

/**
 * `rememberTs` that never grows an empty array: a technician's first point gets an array
 * of exactly one element (V8 would reserve 17 slots on the first push), which is most of
 * what an idle technician's window costs. Returns the window to keep.
 */
export function withTs(recent: number[], ts: number, window = RECENT_WINDOW): number[] {
  if (recent.length === 0) return [ts];
  rememberTs(recent, ts, window);
  return recent;
}

function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Decides whether a soak series grows once warm. Samples are noisy (garbage collection,
 * allocator arenas, archive merges), so one high sample means nothing: the verdict
 * compares the median of the last third of the samples with the median of the first
 * third, and calls the series growing when the rise passes both a relative and an
 * absolute tolerance. The least-squares slope is reported beside it, per hour.
 */

/** `[seconds, value]` pairs in time order. */
export type Series = readonly (readonly [number, number])[];

/** The verdict on one series. */
export interface GrowthVerdict {
  firstThirdMedian: number;
  lastThirdMedian: number;
  rise: number;
  slopePerHour: number;
  growing: boolean;
}

/** Tolerances: a rise counts only when above `relative` of the start and above `absolute`. */
export interface Tolerance {
  relative: number;
  absolute: number;
}

/** The middle value of `xs` (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function slope(series: Series): number {
  const n = series.length;
  const mx = series.reduce((a, [x]) => a + x, 0) / n;
  const my = series.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of series) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Growth verdict of `series`; needs at least 6 samples to say anything. */
export function growthVerdict(series: Series, tolerance: Tolerance = { relative: 0.05, absolute: 5 }): GrowthVerdict {
  if (series.length < 6) throw new Error(`a soak verdict needs at least 6 warm samples, got ${series.length}`);
  const third = Math.floor(series.length / 3);
  const first = median(series.slice(0, third).map(([, y]) => y));
  const last = median(series.slice(-third).map(([, y]) => y));
  const rise = last - first;
  return {
    firstThirdMedian: +first.toFixed(1),
    lastThirdMedian: +last.toFixed(1),
    rise: +rise.toFixed(1),
    slopePerHour: +(slope(series) * 3600).toFixed(1),
    growing: rise > tolerance.absolute && rise > first * tolerance.relative,
  };
}

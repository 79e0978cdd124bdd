/**
 * A quantile of a Prometheus histogram over a window, from two scrapes of `/metrics`.
 * The node times each answer from reading the frame to sending the answer
 * (`fieldtrack_ack_latency_seconds`); beside the simulator's own timing it tells whether a
 * late answer was late in the node or before and after it (sockets, a busy simulator).
 * Buckets only bound a quantile: the answer is the upper edge of the bucket it falls in.
 */

/** Cumulative count per bucket edge (`le`, +Inf as Infinity), summed over every label set. */
export function bucketCounts(text: string, name: string): Map<number, number> {
  const counts = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const edge = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    counts.set(edge, (counts.get(edge) ?? 0) + value);
  }
  return counts;
}

/**
 * The upper edge (in the metric's unit) of the bucket holding quantile `q` of the samples
 * observed between the `before` and `after` scrapes: Infinity past the last finite edge,
 * null when the window observed nothing.
 */
export function windowQuantileBound(before: string, after: string, name: string, q: number): number | null {
  return windowsQuantileBound([{ before, after }], name, q);
}

/**
 * As `windowQuantileBound`, over the samples of several windows pooled (each its own pair
 * of scrapes), as if they were one.
 */
export function windowsQuantileBound(
  windows: ReadonlyArray<{ before: string; after: string }>,
  name: string,
  q: number,
): number | null {
  const pooled = new Map<number, number>();
  for (const { before, after } of windows) {
    const start = bucketCounts(before, name);
    for (const [edge, count] of bucketCounts(after, name)) {
      pooled.set(edge, (pooled.get(edge) ?? 0) + count - (start.get(edge) ?? 0));
    }
  }
  const edges = [...pooled.keys()].sort((a, b) => a - b);
  const total = pooled.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total <= 0) return null;
  for (const edge of edges) {
    if ((pooled.get(edge) ?? 0) >= q * total) return edge;
  }
  return Number.POSITIVE_INFINITY;
}

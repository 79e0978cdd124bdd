/**
 * The time from a safety console acknowledging an SOS to the technician's device getting
 * its `sos_status` push. The console and the device live in different simulator processes
 * (all on one machine, so `Date.now()` is one clock): each side stamps its own end by
 * incident id, and the parent joins the stamps after the run.
 */

/** Incident id -> `Date.now()` of one end. */
export type Stamps = Record<string, number>;

/** The joined figures of one run. */
export interface AckJoin {
  /** Acks the console sent. */
  sent: number;
  /** Of those, the ones whose device got the push. */
  seen: number;
  /** One latency (ms) per seen ack. */
  latenciesMs: number[];
}

/**
 * Joins the console's send stamps with every worker's receive stamps. A push stamped in
 * the same millisecond as the send (or, through rounding, one before) counts as 0 ms.
 */
export function joinAcks(sentAt: Stamps, seenAt: readonly Stamps[]): AckJoin {
  const seen: Stamps = Object.assign({}, ...seenAt);
  const latenciesMs: number[] = [];
  for (const [incident, t] of Object.entries(sentAt)) {
    const got = seen[incident];
    if (got !== undefined) latenciesMs.push(Math.max(0, got - t));
  }
  return { sent: Object.keys(sentAt).length, seen: latenciesMs.length, latenciesMs };
}

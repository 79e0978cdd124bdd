/**
 * Ownership leases: "technician X runs on node N until T", with a fencing token. Each
 * technician (with its orders and SOS incidents) runs on exactly one node at a time; its
 * node renews the lease while it runs, and a lease that is not renewed expires so another
 * node can claim it after a crash. A deadline fires only on the lease holder.
 *
 * Fencing: every lease key has a token that only grows. Taking a lease that another node
 * held last (or had handed over) issues a new, larger token; a node re-taking a lease that
 * nobody else held since it lapsed keeps its token (nothing happened in between that its
 * writes could overwrite). Writes to shared state carry the token (fencing.ts).
 * One interface, one file per backend (in-process, Redis).
 */

/** How long a lease lives in Redis without renewal: a dead holder's work moves after this. */
export const LEASE_TTL_MS = 10_000;
/**
 * How much sooner than Redis a holder stops counting a lease as its own: room for the two
 * clocks' rates to differ and for the confirming reply's way back. A lease confirmed by a
 * request sent at monotonic time t is acted on until t + LEASE_TTL_MS - LEASE_MARGIN_MS,
 * while Redis keeps it until at least t + LEASE_TTL_MS, so two renewals may fail in a row.
 */
export const LEASE_MARGIN_MS = 3_000;

/**
 * Whether a lease that Redis confirmed for a request sent at monotonic `confirmedAt` is
 * still provably held at monotonic `now`: the one rule every holder acts by (technicians'
 * leases, the webhook delivery lease).
 */
export function leaseProven(confirmedAt: number, now: number): boolean {
  return now - confirmedAt < LEASE_TTL_MS - LEASE_MARGIN_MS;
}

/** See the module comment. Every method is atomic with respect to every other node. */
export interface Leases {
  /**
   * Takes `key` for `owner` for `ttlMs` if free or expired, or renews it if `owner` already
   * holds it; resolves with the lease's fencing token, or null when another node holds it.
   */
  acquire(key: string, owner: string, ttlMs: number): Promise<number | null>;
  /** Extends `key` by `ttlMs` only if `owner` still holds it; false means the lease was lost. */
  renew(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Hands `key` from `owner` straight to `to` for `ttlMs` if `owner` holds it, so no third
   * node can take it in between (a device moved between live nodes), with a new token that
   * `to` learns by acquiring; false if `owner` did not hold it.
   */
  transfer(key: string, owner: string, to: string, ttlMs: number): Promise<boolean>;
  /** Gives `key` up if `owner` holds it (a graceful hand-over); false if it did not. */
  release(key: string, owner: string): Promise<boolean>;
  /** The current holder of `key`, or null when free or expired. */
  holder(key: string): Promise<string | null>;
  /** Releases connections (not the leases: they expire by themselves). */
  close(): Promise<void>;
}

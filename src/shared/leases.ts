/**
 * Ownership leases: "actor X runs on node N until T". Each actor (technician, order, SOS
 * incident) may run on exactly one node at a time; its node renews the lease while it runs,
 * and a lease that is not renewed expires so another node can claim it after a crash.
 * A deadline fires only on the lease holder, which is what makes it fire once.
 * One interface, one file per backend (in-process, Redis).
 */

/** See the module comment. Every method is atomic with respect to every other node. */
export interface Leases {
  /** Takes `key` for `owner` for `ttlMs` if free or expired, or renews it if `owner` already holds it. */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends `key` by `ttlMs` only if `owner` still holds it; false means the lease was lost. */
  renew(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Hands `key` from `owner` straight to `to` for `ttlMs` if `owner` holds it, so no third
   * node can take it in between (a device moved between live nodes); false if it did not.
   */
  transfer(key: string, owner: string, to: string, ttlMs: number): Promise<boolean>;
  /** Gives `key` up if `owner` holds it (a graceful hand-over); false if it did not. */
  release(key: string, owner: string): Promise<boolean>;
  /** The current holder of `key`, or null when free or expired. */
  holder(key: string): Promise<string | null>;
  /** Releases connections (not the leases: they expire by themselves). */
  close(): Promise<void>;
}

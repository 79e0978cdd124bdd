/**
 * Revocations of customer tracking links (`DELETE /v1/orders/:id/share`): for each order
 * whose links were revoked, when. A link of that order made at or before that moment is
 * dead (`410`); a link made later lives. One interface, one file per backend: the node's
 * own `DATA_DIR` (one node) and a Redis hash every node reads (`REDIS_URL`), chosen in
 * app.ts. A revocation is forgotten once every link it killed has expired anyway (the
 * longest a link lives after the revocation), so both stay small.
 */

/** The revocation state cannot be read or written now (Redis unreachable): answer `unavailable`. */
export class RevocationsUnavailable extends Error {
  constructor(reason: string) {
    super(`link revocations unavailable: ${reason}`);
    this.name = 'RevocationsUnavailable';
  }
}

/** See the module comment. */
export interface ShareRevocations {
  /**
   * When the links of `order` were last revoked, or undefined: the shared answer, read
   * where every node writes. Rejects with `RevocationsUnavailable` when it cannot be known
   * (a node that never read the shared state, with Redis unreachable).
   */
  revokedAt(order: string): Promise<number | undefined>;
  /**
   * What this node has learned so far (no I/O): every revocation it made or heard of. Never
   * later than `revokedAt`, so a link it calls revoked is revoked.
   */
  known(order: string): number | undefined;
  /**
   * Revokes every link of `order` made up to `at`; resolves with the order's revocation time
   * (the later of `at` and an earlier one) once that is durable where every node reads it.
   * Rejects with `RevocationsUnavailable` when it cannot be made durable now.
   */
  revoke(order: string, at: number): Promise<number>;
  /**
   * Calls `fn` with each revocation this node learns of from elsewhere (another node's, or
   * one it missed while disconnected), after `known` includes it.
   */
  onRevoked(fn: (order: string, at: number) => void): void;
  /** Waits for writes in flight and releases connections (shutdown). */
  close(): Promise<void>;
}

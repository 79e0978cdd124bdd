/**
 * Customer tracking links of orders (PROTOCOL.md, "Customer tracking link"): making one,
 * revoking an order's links, and deciding what a presented token gets. Tokens are signed
 * (share-token.ts), revocations durable and, with several nodes, shared
 * (shared/share-revocations*.ts), the state derived from the order and its technician's
 * live position (share-state.ts) and streamed by the hub.
 */
import type { Tracker } from '../actors/api.js';
import type { Clock } from '../clock.js';
import type { Outcome } from '../outcome.js';
import { ErrorCode } from '../protocol.js';
import { RevocationsUnavailable, type ShareRevocations } from '../shared/share-revocations.js';
import type { ShareHub } from './share-hub.js';
import type { ShareClaims, ShareTokens } from './share-token.js';

/**
 * What a presented token gets before its order is looked at: unknown (404), dead (410),
 * `unavailable` (503: whether it was revoked cannot be known now) or its claims.
 */
export type TokenVerdict =
  | { kind: 'unknown' }
  | { kind: 'gone' }
  | { kind: 'unavailable'; msg: string }
  | { kind: 'ok'; claims: ShareClaims };

export interface ShareLinksDeps {
  tracker: Pick<Tracker, 'getOrder'>;
  tokens: ShareTokens;
  revocations: ShareRevocations;
  hub: ShareHub;
  clock: Clock;
  /** How long a link lives at most (SHARE_LINK_HOURS). */
  linkMs: number;
}

/** See the module comment. */
export class ShareLinks {
  constructor(private readonly d: ShareLinksDeps) {
    // Revocations made on other nodes end this node's streams of their links too.
    d.revocations.onRevoked((order, at) => d.hub.revoke(order, at));
  }

  /** A new link of order `id`: `not_found` for an unknown order, `conflict` for a finished one. */
  async create(id: string): Promise<Outcome<{ token: string; expiresAt: number }>> {
    const o = await this.d.tracker.getOrder(id);
    if (!o.ok) return o;
    if (o.value.state === 'completed' || o.value.state === 'cancelled') {
      return { ok: false, code: ErrorCode.conflict, msg: `order is ${o.value.state}` };
    }
    // After the order's last revocation, even within the same millisecond (or behind this
    // node's clock): a link made after a DELETE lives. Unknown now: what this node knows.
    const last = await this.d.revocations.revokedAt(id).catch(() => this.d.revocations.known(id));
    const now = this.d.clock.now();
    const iat = last === undefined ? now : Math.max(now, last + 1);
    const exp = iat + this.d.linkMs;
    return { ok: true, value: { token: this.d.tokens.sign({ order: id, iat, exp }), expiresAt: exp } };
  }

  /**
   * Revokes every link of order `id` made so far, durably (on every node with Redis), and
   * ends their streams on this node (other nodes hear of it). `not_found` when the order
   * is unknown, `unavailable` when the revocation cannot be made durable now.
   */
  async revoke(id: string): Promise<Outcome<{ order: string; revokedAt: number }>> {
    const o = await this.d.tracker.getOrder(id);
    if (!o.ok) return o;
    let at: number;
    try {
      at = await this.d.revocations.revoke(id, this.d.clock.now());
    } catch (err) {
      if (!(err instanceof RevocationsUnavailable)) throw err;
      return { ok: false, code: ErrorCode.unavailable, msg: `${err.message}; the links were not revoked, retry` };
    }
    this.d.hub.revoke(id, at);
    return { ok: true, value: { order: id, revokedAt: at } };
  }

  /** Checks a token's MAC, revocation and expiry (the order's own state is the hub's to judge). */
  async check(token: string): Promise<TokenVerdict> {
    const claims = this.d.tokens.verify(token);
    if (claims === null) return { kind: 'unknown' };
    if (this.d.clock.now() >= claims.exp) return { kind: 'gone' };
    let revokedAt: number | undefined;
    try {
      revokedAt = await this.d.revocations.revokedAt(claims.order);
    } catch (err) {
      if (!(err instanceof RevocationsUnavailable)) throw err;
      return { kind: 'unavailable', msg: err.message };
    }
    if (revokedAt !== undefined && claims.iat <= revokedAt) return { kind: 'gone' };
    return { kind: 'ok', claims };
  }
}

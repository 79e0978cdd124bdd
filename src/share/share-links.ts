/**
 * Customer tracking links of orders (PROTOCOL.md, "Customer tracking link"): making one,
 * revoking an order's links, and deciding what a presented token gets. Tokens are signed
 * (share-token.ts), revocations durable (share-store.ts), the state derived from the order
 * and its technician's live position (share-state.ts) and streamed by the hub.
 */
import type { Tracker } from '../actors/api.js';
import type { Clock } from '../clock.js';
import type { Outcome } from '../outcome.js';
import { ErrorCode } from '../protocol.js';
import type { ShareHub } from './share-hub.js';
import type { ShareStore } from './share-store.js';
import type { ShareClaims, ShareTokens } from './share-token.js';

/** What a presented token gets before its order is looked at: unknown (404), dead (410) or its claims. */
export type TokenVerdict = { kind: 'unknown' } | { kind: 'gone' } | { kind: 'ok'; claims: ShareClaims };

export interface ShareLinksDeps {
  tracker: Pick<Tracker, 'getOrder'>;
  tokens: ShareTokens;
  store: ShareStore;
  hub: ShareHub;
  clock: Clock;
  /** How long a link lives at most (SHARE_LINK_HOURS). */
  linkMs: number;
}

/** See the module comment. */
export class ShareLinks {
  constructor(private readonly d: ShareLinksDeps) {}

  /** A new link of order `id`: `not_found` for an unknown order, `conflict` for a finished one. */
  async create(id: string): Promise<Outcome<{ token: string; expiresAt: number }>> {
    const o = await this.d.tracker.getOrder(id);
    if (!o.ok) return o;
    if (o.value.state === 'completed' || o.value.state === 'cancelled') {
      return { ok: false, code: ErrorCode.conflict, msg: `order is ${o.value.state}` };
    }
    const iat = this.d.store.issueTime(id, this.d.clock.now());
    const exp = iat + this.d.linkMs;
    return { ok: true, value: { token: this.d.tokens.sign({ order: id, iat, exp }), expiresAt: exp } };
  }

  /**
   * Revokes every link of order `id` made so far, durably, and ends their streams on this
   * node. `not_found` when the order is unknown.
   */
  async revoke(id: string): Promise<Outcome<{ order: string; revokedAt: number }>> {
    const o = await this.d.tracker.getOrder(id);
    if (!o.ok) return o;
    const now = this.d.clock.now();
    await this.d.store.revoke(id, now);
    this.d.hub.revoke(id);
    return { ok: true, value: { order: id, revokedAt: now } };
  }

  /** Checks a token's MAC, revocation and expiry (the order's own state is the hub's to judge). */
  check(token: string): TokenVerdict {
    const claims = this.d.tokens.verify(token);
    if (claims === null) return { kind: 'unknown' };
    if (this.d.store.isRevoked(claims.order, claims.iat) || this.d.clock.now() >= claims.exp) return { kind: 'gone' };
    return { kind: 'ok', claims };
  }
}

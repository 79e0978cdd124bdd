/**
 * Customer tracking link tokens: `<order>.<iat>.<exp>.<mac>` where `<order>` is the order
 * id in base64url, `iat` and `exp` are milliseconds in base 36, and `<mac>` is the
 * base64url HMAC-SHA256 of the rest under a key derived from the node secret
 * (TRACKER_JWT_SECRET). Unguessable and tamper-evident without storing anything: changing
 * any character breaks the MAC. Every node with the same secret reads the same tokens. A
 * link token is not a JWT, so every `/v1` route refuses it (401); a JWT is not a link token.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a link token says: which order, when it was made, when it dies at the latest. */
export interface ShareClaims {
  readonly order: string;
  readonly iat: number;
  readonly exp: number;
}

/** Longest token accepted (an order id is at most 128 characters). */
export const SHARE_TOKEN_MAX_LENGTH = 400;
const TOKEN_CHARS = /^[A-Za-z0-9_.-]+$/;
const MS = /^[0-9a-z]{1,12}$/;

/** Signs and checks link tokens with a key derived from `secret`. */
export class ShareTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    // A key of its own: a link MAC can never be replayed as a JWT signature or the other way.
    this.key = createHmac('sha256', secret).update('fieldtrack customer tracking link v1').digest();
  }

  sign(claims: ShareClaims): string {
    const body = `${Buffer.from(claims.order, 'utf8').toString('base64url')}.${claims.iat.toString(36)}.${claims.exp.toString(36)}`;
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The claims of `token`, or null when it is malformed or its MAC does not match. */
  verify(token: string): ShareClaims | null {
    if (token.length > SHARE_TOKEN_MAX_LENGTH || !TOKEN_CHARS.test(token)) return null;
    const parts = token.split('.');
    if (parts.length !== 4) return null;
    const [order64, iat36, exp36, mac64] = parts as [string, string, string, string];
    if (!MS.test(iat36) || !MS.test(exp36)) return null;
    const given = Buffer.from(mac64, 'base64url');
    const expected = this.mac(`${order64}.${iat36}.${exp36}`);
    // Canonical base64url only: a MAC spelled another way is a different token.
    if (given.length !== expected.length || given.toString('base64url') !== mac64) return null;
    if (!timingSafeEqual(given, expected)) return null;
    const order = Buffer.from(order64, 'base64url').toString('utf8');
    if (Buffer.from(order, 'utf8').toString('base64url') !== order64) return null;
    return { order, iat: Number.parseInt(iat36, 36), exp: Number.parseInt(exp36, 36) };
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }
}

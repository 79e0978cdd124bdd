/**
 * Token checks for every `/v1` request: HS256 JWTs (jwt-hs256.ts), taken from
 * `Authorization: Bearer` or the `token` query parameter (for WebSocket clients that
 * cannot set headers). Failures say why in protocol terms but never echo the token.
 */
import { type Clock, systemClock } from '../clock.js';
import { isValidId } from '../protocol/checks.js';
import { Role } from '../protocol.js';
import { verifyHs256 } from './jwt-hs256.js';

/** A verified caller. */
export interface Principal {
  sub: string;
  role: Role;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

/** Why a request was refused: 401 for the token itself, 403 for a valid token of the wrong role. */
export type AuthFailure =
  | {
      status: 401;
      reason: 'missing' | 'malformed' | 'expired' | 'bad_signature' | 'invalid_claims' | 'lifetime_too_long';
      msg: string;
    }
  | { status: 403; reason: 'wrong_role'; msg: string };

export type AuthResult = { ok: true; principal: Principal } | ({ ok: false } & AuthFailure);

const roles = new Set<string>(Object.values(Role));

/** Picks the token from the Authorization header, else from `?token=`; undefined when neither. */
export function extractToken(authorization: string, query: string): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  if (authorization !== '') return ''; // a header that is not a Bearer token counts as malformed
  const token = new URLSearchParams(query).get('token');
  return token ?? undefined;
}

/**
 * Verifies tokens signed with one HS256 secret. A token may live at most `maxLifetimeSec`:
 * a leaked token whose `exp` is years ahead would otherwise never stop working.
 */
export class TokenVerifier {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly maxLifetimeSec: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  /**
   * Checks `token` and that its role is one of `allowed`. Synchronous, so that a WebSocket
   * upgrade can be finished inside uWS's upgrade handler (see jwt-hs256.ts).
   */
  verify(token: string | undefined, allowed: readonly Role[]): AuthResult {
    if (token === undefined) return { ok: false, status: 401, reason: 'missing', msg: 'no token given' };
    if (token.split('.').length !== 3) {
      return { ok: false, status: 401, reason: 'malformed', msg: 'token is not a JWT' };
    }
    const checked = verifyHs256(token, this.key, this.clock.now());
    if (!checked.ok) return { ok: false, status: 401, reason: checked.reason, msg: checked.msg };
    const payload: Record<string, unknown> = checked.payload;
    const { sub, role, exp, iat } = payload;
    const lifetime = this.lifetimeProblem(exp as number, iat);
    if (lifetime !== null) return { ok: false, status: 401, reason: 'lifetime_too_long', msg: lifetime };
    if (typeof sub !== 'string' || !isValidId(sub)) {
      return { ok: false, status: 401, reason: 'invalid_claims', msg: 'claim sub must be an id' };
    }
    if (typeof role !== 'string' || !roles.has(role)) {
      return { ok: false, status: 401, reason: 'invalid_claims', msg: 'claim role must be device, safety or dispatch' };
    }
    if (!allowed.includes(role as Role)) {
      return { ok: false, status: 403, reason: 'wrong_role', msg: `role ${role} may not use this endpoint` };
    }
    return { ok: true, principal: { sub, role: role as Role, expiresAt: (exp as number) * 1000 } };
  }

  /**
   * Why the token lives too long, or null. Its life counts from `iat`, or from now when
   * it has none; an `iat` in the future counts as now, so it cannot stretch the limit.
   */
  private lifetimeProblem(exp: number, iat: unknown): string | null {
    const now = this.clock.now() / 1000;
    const from = typeof iat === 'number' ? Math.min(iat, now) : now;
    if (exp - from <= this.maxLifetimeSec) return null;
    const since = typeof iat === 'number' ? 'after its iat' : 'from now (it has no iat)';
    return `token lifetime too long: exp is more than ${this.maxLifetimeSec} s ${since}`;
  }
}

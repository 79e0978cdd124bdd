/**
 * Synchronous verification of an HS256 JWT's signature and registered claims.
 *
 * Why not `jose`'s jwtVerify: it is asynchronous (WebCrypto), and a WebSocket upgrade that
 * waits for it has to be finished later with `res.cork(() => res.upgrade(…))`. In the uWS
 * build we run, that path sometimes shuts the new socket down right after `open`, without
 * a close frame (uNetworking/uWebSockets#1928, fixed upstream by #1929): `cork()` then
 * reads the HTTP response's state from memory that already holds the WebSocket. Upgrades
 * made inside the upgrade handler are safe, so the token is checked there, synchronously.
 *
 * Parsing and its errors are still `jose`'s (decodeProtectedHeader, base64url, decodeJwt); only the
 * HMAC is computed here, with node:crypto. The checks and their order follow jwtVerify
 * with `algorithms: ['HS256']` and `requiredClaims: ['exp', 'sub']`: header, algorithm,
 * signature, then claims. A property test holds this to jwtVerify's verdicts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { base64url, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';

export type JwtFailure = { reason: 'malformed' | 'expired' | 'bad_signature' | 'invalid_claims'; msg: string };
export type JwtResult = { ok: true; payload: JWTPayload } | ({ ok: false } & JwtFailure);

const MALFORMED: JwtResult = { ok: false, reason: 'malformed', msg: 'token is malformed' };

/** Checks `token` against `key` at `nowMs`; the claims exp and sub are required. */
export function verifyHs256(token: string, key: Uint8Array, nowMs: number): JwtResult {
  const parts = token.split('.');
  if (parts.length !== 3) return MALFORMED;
  const [head, body, signature] = parts as [string, string, string];
  let alg: unknown;
  try {
    const header = decodeProtectedHeader(token);
    // jwtVerify refuses every `crit` extension it is not told about; we are told about none.
    if (header.crit !== undefined) return MALFORMED;
    alg = header.alg;
  } catch {
    return MALFORMED;
  }
  if (alg !== 'HS256') return { ok: false, reason: 'malformed', msg: 'only HS256 tokens are accepted' };
  let given: Uint8Array;
  try {
    given = base64url.decode(signature);
  } catch {
    return MALFORMED;
  }
  const expected = createHmac('sha256', key).update(`${head}.${body}`).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad_signature', msg: 'bad signature' };
  }
  let payload: JWTPayload;
  try {
    payload = decodeJwt(token);
  } catch {
    return MALFORMED;
  }
  return checkClaims(payload, Math.floor(nowMs / 1000));
}

/** jwtVerify's claim checks for our options, in its order. */
function checkClaims(payload: JWTPayload, now: number): JwtResult {
  for (const claim of ['sub', 'exp']) {
    if (!Object.hasOwn(payload, claim)) return invalid(`missing required "${claim}" claim`);
  }
  for (const claim of ['iat', 'nbf'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number')
      return invalid(`"${claim}" claim must be a number`);
  }
  if (payload.nbf !== undefined && payload.nbf > now) return invalid('"nbf" claim timestamp check failed');
  if (typeof payload.exp !== 'number') return invalid('"exp" claim must be a number');
  if (payload.exp <= now) return { ok: false, reason: 'expired', msg: 'token has expired' };
  return { ok: true, payload };
}

function invalid(msg: string): JwtResult {
  return { ok: false, reason: 'invalid_claims', msg };
}

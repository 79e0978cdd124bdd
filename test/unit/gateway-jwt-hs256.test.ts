/**
 * The synchronous HS256 check against jose's jwtVerify, the reference: for tokens signed
 * right, with another key or algorithm, tampered with, or carrying odd claims, both give
 * the same verdict (accepted, or refused for the same reason).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { base64url, errors, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { type JwtFailure, verifyHs256 } from '../../src/gateway/jwt-hs256.js';

const KEY = new TextEncoder().encode('a-test-secret-of-sufficient-length-0000000');
const OTHER_KEY = new TextEncoder().encode('another-secret-of-sufficient-length-000000');
const NOW_MS = 1_790_000_000_500;
const NOW = Math.floor(NOW_MS / 1000);

type Verdict = 'ok' | JwtFailure['reason'];

/** jose's verdict with the options the server used before: HS256 only, exp and sub required. */
async function joseVerdict(token: string): Promise<Verdict> {
  try {
    await jwtVerify(token, KEY, {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(NOW_MS),
    });
    return 'ok';
  } catch (err) {
    if (err instanceof errors.JWTExpired) return 'expired';
    if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
    if (err instanceof errors.JWTClaimValidationFailed) return 'invalid_claims';
    return 'malformed';
  }
}

function ourVerdict(token: string): Verdict {
  const result = verifyHs256(token, KEY, NOW_MS);
  return result.ok ? 'ok' : result.reason;
}

/** A claim value that may be missing, of the wrong type, or a time around now. */
const timeClaim = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -120, max: 120 }).map((d) => NOW + d),
  fc.constantFrom('soon', null, NOW + 0.5, NOW - 0.5),
);
const claims = fc.record({
  sub: fc.oneof(fc.constant(undefined), fc.constantFrom('tech-1', '', 7)),
  role: fc.constantFrom('device', 'safety'),
  exp: timeClaim,
  nbf: timeClaim,
  iat: timeClaim,
});

/** Signs `c` (undefined claims left out) with `alg` and `key`, then applies `tamper`. */
async function sign(
  c: Record<string, unknown>,
  alg: 'HS256' | 'HS384' | 'none',
  key: Uint8Array,
  extraHeader: Record<string, unknown>,
): Promise<string> {
  const payload = Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
  if (alg === 'none') return new UnsecuredJWT(payload).encode();
  return new SignJWT(payload).setProtectedHeader({ alg, ...extraHeader }).sign(key);
}

const tampers: Record<string, (t: string) => string> = {
  none: (t) => t,
  flipSignature: (t) => t.slice(0, -2) + (t.at(-2) === 'A' ? 'B' : 'A') + t.at(-1),
  cutSignature: (t) => t.slice(0, -4),
  badSignatureChars: (t) => `${t.slice(0, -3)}*!*`,
  swapPayload: (t) => {
    const [h, , s] = t.split('.');
    return `${h}.${base64url.encode(JSON.stringify({ sub: 'tech-2', exp: NOW + 60 }))}.${s}`;
  },
  payloadNotJson: (t) => {
    const [h] = t.split('.');
    return `${h}.${base64url.encode('not json')}.x`;
  },
  headerNotJson: (t) => `${base64url.encode('{')}.${t.split('.').slice(1).join('.')}`,
  extraPart: (t) => `${t}.x`,
};

describe('verifyHs256', () => {
  it('gives the verdict jose gives, for signed, forged, tampered and odd tokens', async () => {
    await fc.assert(
      fc.asyncProperty(
        claims,
        fc.constantFrom<'HS256' | 'HS384' | 'none'>('HS256', 'HS256', 'HS256', 'HS384', 'none'),
        fc.boolean(),
        fc.constantFrom({}, { typ: 'JWT' }, { crit: ['exp'], exp: 1 }),
        fc.constantFrom(...Object.keys(tampers)),
        async (c, alg, rightKey, header, tamper) => {
          let token: string;
          try {
            token = tampers[tamper]!(await sign(c, alg, rightKey ? KEY : OTHER_KEY, header));
          } catch {
            return; // jose refuses to sign some combinations (crit it does not know): nothing to compare
          }
          assert.equal(ourVerdict(token), await joseVerdict(token), `token ${token}`);
        },
      ),
      { numRuns: 600 },
    );
  });

  it('accepts a good token and returns its claims', async () => {
    const token = await sign({ sub: 'tech-1', role: 'device', exp: NOW + 60 }, 'HS256', KEY, {});
    const result = verifyHs256(token, KEY, NOW_MS);
    assert.ok(result.ok);
    assert.equal(result.payload.sub, 'tech-1');
    assert.equal(result.payload.role, 'device');
  });

  it('refuses a token that expires this very second, as jose does', async () => {
    const token = await sign({ sub: 'tech-1', exp: NOW }, 'HS256', KEY, {});
    assert.equal(ourVerdict(token), 'expired');
    assert.equal(await joseVerdict(token), 'expired');
  });
});

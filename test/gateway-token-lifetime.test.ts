/**
 * The maximum token lifetime (TOKEN_MAX_LIFETIME_SEC, default 30 days) on the real server:
 * tokens whose exp lies further than that after iat, or after now without iat, get 401
 * with a clear message, on WebSocket upgrades and HTTP alike.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { ServerProcess, TEST_SECRET } from './support/server-process.js';
import { attempt, closeAll } from './support/upgrade.js';

const key = new TextEncoder().encode(TEST_SECRET);
const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);

function sign(claims: { exp: number; iat?: number }, role = 'device', sub = 'tech-life'): Promise<string> {
  const jwt = new SignJWT({ role, ...(claims.iat === undefined ? {} : { iat: claims.iat }) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(claims.exp);
  return jwt.sign(key);
}

/** Upgrade status and, when refused, the JSON body (an accepted socket is closed at once). */
async function upgrade(url: string, bearer: string): Promise<{ status: number; body: string }> {
  const { status, body, ws } = await attempt(url, bearer);
  await closeAll([ws]);
  return { status, body };
}

describe('maximum token lifetime (default 30 days)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });
  const device = () => `${server.wsUrl}/v1/device`;

  it('accepts tokens within 30 days, with and without iat', async () => {
    assert.equal((await upgrade(device(), await sign({ iat: now(), exp: now() + 29 * DAY }))).status, 101);
    assert.equal((await upgrade(device(), await sign({ exp: now() + 29 * DAY }))).status, 101);
    assert.equal((await upgrade(device(), await sign({ iat: now() - 10 * DAY, exp: now() + 19 * DAY }))).status, 101);
  });

  it('refuses exp centuries ahead with 401 and says why', async () => {
    const refused = await upgrade(device(), await sign({ iat: now(), exp: now() + 300 * 365 * DAY }));
    assert.equal(refused.status, 401);
    assert.match(JSON.parse(refused.body).msg, /token lifetime too long: exp is more than 2592000 s after its iat/);
  });

  it('counts from now when there is no iat', async () => {
    const refused = await upgrade(device(), await sign({ exp: now() + 31 * DAY }));
    assert.equal(refused.status, 401);
    assert.match(JSON.parse(refused.body).msg, /from now \(it has no iat\)/);
  });

  it('counts from iat: an old token still valid for an hour is refused when it was issued 31 days before', async () => {
    const refused = await upgrade(device(), await sign({ iat: now() - 31 * DAY, exp: now() + 3600 }));
    assert.equal(refused.status, 401);
  });

  it('an iat in the future does not stretch the limit', async () => {
    const later = now() + 100 * 365 * DAY;
    assert.equal((await upgrade(device(), await sign({ iat: later, exp: later + 3600 }))).status, 401);
  });

  it('applies to HTTP calls too', async () => {
    const bearer = await sign({ iat: now(), exp: now() + 40 * DAY }, 'safety', 'op-life');
    const res = await server.http('GET', '/v1/alerts?state=open', { token: bearer });
    assert.equal(res.status, 401);
    assert.match((res.body as { msg: string }).msg, /token lifetime too long/);
    const ok = await sign({ iat: now(), exp: now() + 3600 }, 'safety', 'op-life');
    assert.equal((await server.http('GET', '/v1/alerts?state=open', { token: ok })).status, 200);
  });
});

describe('maximum token lifetime, configured', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { TOKEN_MAX_LIFETIME_SEC: '3600' } });
  });
  after(async () => {
    await server.stop();
  });

  it('follows TOKEN_MAX_LIFETIME_SEC', async () => {
    const url = `${server.wsUrl}/v1/device`;
    assert.equal((await upgrade(url, await sign({ iat: now(), exp: now() + 3000 }))).status, 101);
    const refused = await upgrade(url, await sign({ iat: now(), exp: now() + 7200 }));
    assert.equal(refused.status, 401);
    assert.match(JSON.parse(refused.body).msg, /more than 3600 s/);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import { TEST_SECRET } from '../support/server-process.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'token.js');
const run = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });

describe('token command', () => {
  it('signs a token the server accepts, with role, sub and expiry', async () => {
    const out = run(['safety', 'op-7', '120'], { TRACKER_JWT_SECRET: TEST_SECRET });
    assert.equal(out.status, 0, out.stderr);
    const { payload } = await jwtVerify(out.stdout.trim(), new TextEncoder().encode(TEST_SECRET));
    assert.equal(payload.sub, 'op-7');
    assert.equal(payload.role, 'safety');
    const ttl = (payload.exp ?? 0) - Math.floor(Date.now() / 1000);
    assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
  });

  it('stamps iat, and refuses a ttl longer than TOKEN_MAX_LIFETIME_SEC', async () => {
    const out = run(['device', 'tech-7', '600'], { TRACKER_JWT_SECRET: TEST_SECRET });
    const { payload } = await jwtVerify(out.stdout.trim(), new TextEncoder().encode(TEST_SECRET));
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 600);
    const tooLong = run(['device', 'tech-7', '7200'], {
      TRACKER_JWT_SECRET: TEST_SECRET,
      TOKEN_MAX_LIFETIME_SEC: '3600',
    });
    assert.equal(tooLong.status, 2);
    assert.match(tooLong.stderr, /longer than TOKEN_MAX_LIFETIME_SEC \(3600 s\)/);
  });

  it('refuses a bad role or a missing secret', () => {
    assert.equal(run(['admin', 'x'], { TRACKER_JWT_SECRET: TEST_SECRET }).status, 2);
    const noSecret = run(['device', 'tech-1'], {});
    assert.equal(noSecret.status, 2);
    assert.match(noSecret.stderr, /TRACKER_JWT_SECRET is required/);
  });
});

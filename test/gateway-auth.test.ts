/** Every authentication case of PROTOCOL.md against the real server: refused before any upgrade. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import WebSocket from 'ws';
import { DeviceClient, SafetyClient } from '../src/client/index.js';
import { ServerProcess, TEST_SECRET, token } from './support/server-process.js';

/** Opens a raw upgrade and reports the HTTP status (101 when it succeeded). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', (err) => {
      if (!/closed before the connection/.test(err.message)) reject(err);
    });
  });
}

const key = new TextEncoder().encode(TEST_SECRET);
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe('authentication', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  const device = () => `${server.wsUrl}/v1/device`;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('accepts a device token in the Authorization header and in ?token=', async () => {
    assert.equal(await upgradeStatus(device(), bearer(await token('tech-1', 'device'))), 101);
    assert.equal(await upgradeStatus(`${device()}?token=${await token('tech-1', 'device')}`), 101);
    assert.equal(await upgradeStatus(`${server.wsUrl}/v1/safety`, bearer(await token('op-1', 'safety'))), 101);
  });

  it('answers 401 to a missing token', async () => {
    assert.equal(await upgradeStatus(device()), 401);
  });

  it('answers 401 to a malformed token or header', async () => {
    assert.equal(await upgradeStatus(device(), bearer('not-a-jwt')), 401);
    assert.equal(await upgradeStatus(device(), bearer('a.b.c')), 401);
    assert.equal(await upgradeStatus(device(), { authorization: `Basic ${await token('t', 'device')}` }), 401);
  });

  it('answers 401 to an expired token', async () => {
    assert.equal(await upgradeStatus(device(), bearer(await token('tech-1', 'device', { exp: 1_000_000 }))), 401);
  });

  it('answers 401 to a bad signature', async () => {
    const forged = await token('tech-1', 'device', { secret: 'another-secret-of-sufficient-length-000000' });
    assert.equal(await upgradeStatus(device(), bearer(forged)), 401);
  });

  it('answers 401 to alg none, to another algorithm and to a token without exp', async () => {
    const none = new UnsecuredJWT({ role: 'device' }).setSubject('tech-1').setExpirationTime(inAnHour()).encode();
    assert.equal(await upgradeStatus(device(), bearer(none)), 401);
    const hs512 = await new SignJWT({ role: 'device' })
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('tech-1')
      .setExpirationTime(inAnHour())
      .sign(key);
    assert.equal(await upgradeStatus(device(), bearer(hs512)), 401);
    const noExp = await new SignJWT({ role: 'device' }).setProtectedHeader({ alg: 'HS256' }).setSubject('t').sign(key);
    assert.equal(await upgradeStatus(device(), bearer(noExp)), 401);
  });

  it('answers 401 to a token without sub or with an unknown role', async () => {
    const noSub = await new SignJWT({ role: 'device' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(inAnHour())
      .sign(key);
    assert.equal(await upgradeStatus(device(), bearer(noSub)), 401);
    assert.equal(await upgradeStatus(device(), bearer(await token('tech-1', 'admin'))), 401);
  });

  it('answers 403 to a valid token of the wrong role', async () => {
    assert.equal(await upgradeStatus(device(), bearer(await token('op-1', 'safety'))), 403);
    assert.equal(await upgradeStatus(device(), bearer(await token('d-1', 'dispatch'))), 403);
    assert.equal(await upgradeStatus(`${server.wsUrl}/v1/safety`, bearer(await token('tech-1', 'device'))), 403);
  });

  it('refuses the wrong roles on HTTP routes with a JSON body', async () => {
    const asDevice = await server.http('GET', '/v1/alerts', { role: 'device' });
    assert.equal(asDevice.status, 403);
    assert.deepEqual(Object.keys(asDevice.body as object).sort(), ['code', 'msg']);
    assert.equal((asDevice.body as { code: string }).code, 'forbidden');
    assert.equal((await server.http('GET', '/v1/alerts')).status, 401);
    assert.equal((await server.http('GET', '/v1/alerts', { token: 'x.y.z' })).status, 401);
    const order = { technician: 't-1', lat: 1, lon: 1, scheduledAt: Date.now(), durationMin: 30 };
    assert.equal((await server.http('PUT', '/v1/orders/o-auth', { role: 'safety', body: order })).status, 403);
    assert.equal((await server.http('PUT', '/v1/orders/o-auth', { role: 'device', body: order })).status, 403);
    assert.equal((await server.http('GET', '/v1/technicians/t-1', { role: 'device', sub: 't-1' })).status, 403);
  });

  it('never logs a token', async () => {
    const secretToken = await token('tech-log', 'device', { exp: 1_000_000 });
    await upgradeStatus(device(), bearer(secretToken));
    await upgradeStatus(`${device()}?token=${secretToken}`);
    await server.waitForLog((l) => l.msg === 'upgrade refused' && l.reason === 'expired');
    const signature = secretToken.split('.')[2] ?? '';
    assert.ok(signature.length > 10);
    assert.ok(!JSON.stringify(server.logs).includes(signature));
  });

  it('closes an open connection with 4001 when its token expires', async () => {
    const client = new DeviceClient({
      url: server.wsUrl,
      token: await token('tech-exp', 'device', { exp: Math.floor(Date.now() / 1000) + 2 }),
    });
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    await client.connect();
    assert.equal(await closed, 4001);
  });

  it('a safety token cannot speak the device protocol on its own endpoint', async () => {
    const safety = new SafetyClient({ url: server.wsUrl, token: await token('op-1', 'safety') });
    await safety.connect();
    const reply = await safety.request({ t: 'ping', ts: Date.now(), lat: 1, lon: 1 } as never);
    assert.equal(reply.t, 'err');
    assert.equal(reply.t === 'err' && reply.code, 'bad_request');
    await safety.close();
  });
});

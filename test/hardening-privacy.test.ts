/**
 * Privacy on the real server: no position, SOS note or token appears in the logs at the
 * default level; a technician's position is readable only by the safety and dispatch
 * roles; track queries never reach past the retention window.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from './support/eventually.js';
import { ServerProcess, token } from './support/server-process.js';

const DAY = 24 * 60 * 60 * 1000;

describe('privacy', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { LOG_LEVEL: 'info', RETENTION_DAYS: '1' } });
  });
  after(async () => {
    await server.stop();
  });

  it('logs no position, SOS note or token at info level through a whole session', async () => {
    const deviceToken = await token('tech-priv', 'device');
    const d = await server.device('tech-priv');
    await d.ping({ ts: Date.now(), lat: 41.3874123, lon: 2.1686456, acc: 5 });
    await d.request({ t: 'batch', pts: [[Date.now() - 1000, 41.3875987, 2.1687321]] } as never);
    const order = {
      technician: 'tech-priv',
      lat: 41.3901234,
      lon: 2.1701234,
      scheduledAt: Date.now(),
      durationMin: 30,
    };
    assert.equal((await server.http('PUT', '/v1/orders/o-priv', { role: 'dispatch', body: order })).status, 200);
    await d.request({ t: 'checkin', order: 'o-priv', ts: Date.now(), lat: 41.3901299, lon: 2.1701299 } as never);
    await d.request({ t: 'sos', ts: Date.now(), lat: 41.3877777, lon: 2.1688888, note: 'secret-note-xyz' } as never);
    // Refused messages are logged too; their content must not be.
    await d.request({ t: 'ping', ts: Date.now(), lat: 95.1234567, lon: 2.1699999 } as never);
    await d.close();
    await server.http('GET', '/v1/technicians/tech-priv', { token: `${deviceToken}x` });
    await server.waitForLog((l) => l.msg === 'connection closed' && l.sub === 'tech-priv');
    const text = JSON.stringify(server.logs);
    for (const secret of [
      '3874123',
      '2.1686456',
      '3875987',
      '3901234',
      '3901299',
      '3877777',
      '2.1688888',
      '95.1234567',
    ]) {
      assert.ok(!text.includes(secret), `position ${secret} must not be logged`);
    }
    assert.ok(!text.includes('secret-note-xyz'), 'the SOS note must not be logged');
    for (const part of deviceToken.split('.')) assert.ok(!text.includes(part), 'no part of a token may be logged');
    assert.ok(
      server.logs.some((l) => l.sub === 'tech-priv'),
      'the session was logged at all',
    );
  });

  it('shows a live position only to the safety and dispatch roles', async () => {
    const d = await server.device('tech-roles');
    await d.ping({ ts: Date.now(), lat: 10, lon: 10 });
    for (const path of ['/v1/technicians/tech-roles', '/v1/technicians/tech-roles/track', '/v1/nearby?lat=10&lon=10']) {
      assert.equal((await server.http('GET', path, { role: 'device', sub: 'tech-roles' })).status, 403, path);
      assert.equal((await server.http('GET', path, { role: 'device', sub: 'other' })).status, 403, path);
      assert.equal((await server.http('GET', path)).status, 401, path);
      assert.equal((await server.http('GET', path, { role: 'safety' })).status, 200, path);
      assert.equal((await server.http('GET', path, { role: 'dispatch' })).status, 200, path);
    }
    await d.close();
  });

  it('never returns track points older than the retention window', async () => {
    const d = await server.device('tech-old');
    const now = Date.now();
    const old = now - 2 * DAY;
    assert.equal((await d.request({ t: 'batch', pts: [[old, 1, 1]] } as never)).t, 'ack');
    assert.equal((await d.ping({ ts: now, lat: 1.5, lon: 1.5 })).t, 'ack');
    await d.close();
    const path = `/v1/technicians/tech-old/track?from=${now - 3 * DAY}&to=${now + 1000}`;
    const res = await eventually(
      'the recent point in the archive',
      async () => {
        const r = await server.http('GET', path, { role: 'safety' });
        return ((r.body as { points: unknown[] }).points ?? []).length > 0 ? r : undefined;
      },
      30_000,
    );
    const points = (res.body as { points: number[][] }).points;
    assert.deepEqual(
      points.map((p) => p[0]),
      [now],
      'only the point inside RETENTION_DAYS=1',
    );
    const onlyOld = await server.http('GET', `/v1/technicians/tech-old/track?from=${old - 1}&to=${old + 1}`, {
      role: 'safety',
    });
    assert.deepEqual((onlyOld.body as { points: unknown[] }).points, []);
  });
});

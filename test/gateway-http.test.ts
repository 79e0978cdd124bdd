/** The HTTP routes of PROTOCOL.md and the operations endpoints, against the real server. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView, TechnicianView } from '../src/client/index.js';
import { ServerProcess } from './support/server-process.js';

describe('HTTP API', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { MAX_HTTP_BODY_BYTES: '2048' } });
  });
  after(async () => {
    await server.stop();
  });

  const order = (overrides: Record<string, unknown> = {}) => ({
    technician: 'tech-h1',
    lat: 52.52,
    lon: 13.405,
    scheduledAt: Date.now() + 3_600_000,
    durationMin: 45,
    ...overrides,
  });

  it('creates, reads and cancels an order', async () => {
    const put = await server.http('PUT', '/v1/orders/o-h1', { role: 'dispatch', body: order({ radius: 80 }) });
    assert.equal(put.status, 200);
    const created = put.body as OrderView;
    assert.equal(created.id, 'o-h1');
    assert.equal(created.technician, 'tech-h1');
    assert.equal(created.state, 'assigned');
    assert.equal(created.radius, 80);
    assert.equal(created.timeline[0]?.state, 'assigned');

    const got = await server.http('GET', '/v1/orders/o-h1', { role: 'dispatch' });
    assert.equal(got.status, 200);
    assert.deepEqual(
      Object.keys(got.body as object)
        .filter((k) => k !== 'polygon')
        .sort(),
      ['durationMin', 'id', 'lat', 'lon', 'radius', 'scheduledAt', 'state', 'technician', 'timeline'],
    );
    assert.equal((await server.http('GET', '/v1/orders/o-h1', { role: 'safety' })).status, 200);

    const del = await server.http('DELETE', '/v1/orders/o-h1', { role: 'dispatch' });
    assert.equal(del.status, 200);
    assert.equal((del.body as OrderView).state, 'cancelled');
    const states = ((await server.http('GET', '/v1/orders/o-h1', { role: 'dispatch' })).body as OrderView).timeline.map(
      (e) => e.state,
    );
    assert.deepEqual(states, ['assigned', 'cancelled']);
  });

  it('defaults the geofence radius to 50 m', async () => {
    const put = await server.http('PUT', '/v1/orders/o-h2', { role: 'dispatch', body: order() });
    assert.equal((put.body as OrderView).radius, 50);
  });

  it('answers 400 with {code, msg} to invalid bodies and ids', async () => {
    for (const body of [order({ lat: 200 }), order({ technician: '' }), order({ durationMin: -1 }), '{not json', [1]]) {
      const res = await server.http('PUT', '/v1/orders/o-h3', { role: 'dispatch', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((res.body as { code: string }).code, 'bad_request');
      assert.equal(typeof (res.body as { msg: string }).msg, 'string');
    }
    const badId = await server.http('PUT', `/v1/orders/${'x'.repeat(200)}`, { role: 'dispatch', body: order() });
    assert.equal(badId.status, 400);
  });

  it('answers 413 to a body over the limit', async () => {
    const res = await server.http('PUT', '/v1/orders/o-h4', {
      role: 'dispatch',
      body: order({ pad: 'x'.repeat(4000) }),
    });
    assert.equal(res.status, 413);
  });

  it('answers 404 to unknown orders, technicians and routes', async () => {
    for (const [method, path] of [
      ['GET', '/v1/orders/nope'],
      ['DELETE', '/v1/orders/nope'],
      ['GET', '/v1/technicians/nobody'],
      ['GET', '/v1/nothing-here'],
    ] as const) {
      const res = await server.http(method, path, { role: method === 'DELETE' ? 'dispatch' : 'safety' });
      assert.equal(res.status, 404, path);
      assert.equal((res.body as { code: string }).code, 'not_found');
    }
  });

  it('shows a technician after a ping, with online state and active order', async () => {
    await server.http('PUT', '/v1/orders/o-h5', { role: 'dispatch', body: order({ technician: 'tech-h5' }) });
    const d = await server.device('tech-h5');
    assert.equal((await d.depart('o-h5')).t, 'ack', 'an order becomes active when the technician departs');
    const ts = Date.now();
    assert.equal((await d.ping({ ts, lat: 52.5, lon: 13.4, acc: 12, spd: 3 })).t, 'ack');
    const res = await server.http('GET', '/v1/technicians/tech-h5', { role: 'dispatch' });
    assert.equal(res.status, 200);
    const tech = res.body as TechnicianView;
    assert.deepEqual(
      { id: tech.id, lat: tech.lat, lon: tech.lon, ts: tech.ts, acc: tech.acc, spd: tech.spd, online: tech.online },
      { id: 'tech-h5', lat: 52.5, lon: 13.4, ts, acc: 12, spd: 3, online: true },
    );
    assert.equal(tech.activeOrder, 'o-h5');
    await d.close();
  });

  it('returns the archived track in time order', async () => {
    const d = await server.device('tech-h6');
    const t0 = Date.now() - 60_000;
    assert.equal(
      (
        await d.batch([
          [t0 + 20_000, 1.002, 2],
          [t0, 1, 2, 5, 1, 90],
          [t0 + 10_000, 1.001, 2],
        ])
      ).t,
      'ack',
    );
    let points: unknown[] = [];
    for (let i = 0; i < 100 && points.length < 3; i++) {
      const res = await server.http('GET', `/v1/technicians/tech-h6/track?from=${t0}&to=${t0 + 30_000}`, {
        role: 'safety',
      });
      assert.equal(res.status, 200);
      points = (res.body as { points: unknown[] }).points;
      if (points.length < 3) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(points, [
      [t0, 1, 2, 5, 1, 90],
      [t0 + 10_000, 1.001, 2, null, null, null],
      [t0 + 20_000, 1.002, 2, null, null, null],
    ]);
    await d.close();
  });

  it('validates track, alerts and nearby queries', async () => {
    const q = (path: string) => server.http('GET', path, { role: 'safety' });
    assert.equal((await q('/v1/technicians/t/track?from=abc')).status, 400);
    assert.equal((await q('/v1/technicians/t/track?from=20&to=10')).status, 400);
    assert.equal((await q('/v1/alerts?state=bogus')).status, 400);
    assert.equal((await q('/v1/nearby?lat=1')).status, 400);
    assert.equal((await q('/v1/nearby?lat=1&lon=2&radius=-5')).status, 400);
    assert.equal((await q('/v1/nearby?lat=91&lon=2')).status, 400);
    const alerts = await q('/v1/alerts?state=open');
    assert.equal(alerts.status, 200);
    assert.ok(Array.isArray((alerts.body as { alerts: unknown[] }).alerts));
  });

  it('finds online technicians nearby, nearest first', async () => {
    const far = await server.device('tech-h7');
    const near = await server.device('tech-h8');
    await far.ping({ ts: Date.now(), lat: 40.001, lon: -3.7 });
    await near.ping({ ts: Date.now(), lat: 40.0001, lon: -3.7 });
    const res = await server.http('GET', '/v1/nearby?lat=40&lon=-3.7&radius=1000', { role: 'safety' });
    assert.equal(res.status, 200);
    const found = (res.body as { technicians: Array<{ id: string; dist: number }> }).technicians;
    assert.deepEqual(
      found.map((t) => t.id),
      ['tech-h8', 'tech-h7'],
    );
    assert.ok(Math.abs((found[0]?.dist ?? 0) - 11.1) < 0.5);
    await far.close();
    await near.close();
  });

  it('serves /healthz, /readyz and /metrics without a token', async () => {
    assert.equal((await server.http('GET', '/healthz')).status, 200);
    const ready = await server.http('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal((ready.body as { ok: boolean }).ok, true);
    const metrics = await server.http('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
    for (const name of [
      'fieldtrack_connections',
      'fieldtrack_messages_total',
      'fieldtrack_ack_latency_seconds',
      'fieldtrack_alerts_raised_total',
      'fieldtrack_archive_spool_rows',
      'fieldtrack_archive_rows_total',
      'fieldtrack_errors_total',
    ]) {
      assert.match(metrics.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });
});

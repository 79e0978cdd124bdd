/**
 * Erasing one technician's data on request (privacy) on the real server: after pings, a
 * completed order and a resolved SOS, `DELETE /v1/technicians/:id` removes the live
 * record, the nearby entry, the finished order and alert, and every archived row, and a
 * kill -9 + restart on the same DATA_DIR does not bring any of it back. Refusals: the
 * device still connected, an unresolved SOS (409), the safety role (403), unknown (404).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';

const HOME = PLACES.berlin;

describe('DELETE /v1/technicians/:id', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  const get = (path: string, role = 'dispatch') => server.http('GET', path, { role });
  const nearbyIds = async () =>
    (
      (await get(`/v1/nearby?lat=${HOME.lat}&lon=${HOME.lon}&radius=1000`)).body as { technicians: { id: string }[] }
    ).technicians.map((t) => t.id);
  const trackLen = async (tech: string) => {
    const res = await get(`/v1/technicians/${tech}/track`);
    return res.status === 200 ? (res.body as { points: unknown[] }).points.length : -1;
  };

  it('erases live state, the archive and the journal, and stays erased after kill -9', async () => {
    const tech = 'tech-erase';
    const other = 'tech-keep';
    const keeper = await server.device(other);
    assert.equal((await keeper.ping({ ts: Date.now(), lat: HOME.lat + 0.001, lon: HOME.lon })).t, 'ack');

    const device = await server.device(tech);
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) {
      assert.equal((await device.ping({ ts: t0 + i * 1000, lat: HOME.lat + i * 1e-4, lon: HOME.lon })).t, 'ack');
    }
    const order = { technician: tech, ...HOME, scheduledAt: Date.now(), durationMin: 30 };
    assert.equal((await server.http('PUT', '/v1/orders/o-erase', { role: 'dispatch', body: order })).status, 200);
    assert.equal((await device.depart('o-erase')).t, 'ack');
    assert.equal((await device.checkin({ order: 'o-erase', ts: Date.now(), ...HOME })).t, 'ack');
    assert.equal((await device.start('o-erase')).t, 'ack');
    assert.equal((await device.complete('o-erase')).t, 'ack');
    const sos = await device.sos({ ts: Date.now(), ...HOME, note: 'ok now' });
    assert.equal(sos.t, 'ack');
    const incident = String(sos.incident);
    const safety = await server.safety('op-erase');
    assert.equal((await safety.resolve(incident, 'false alarm')).t, 'ack');
    await safety.close();

    await eventually(
      'the fixes archived',
      // Three pings, the check-in's fix and the SOS's fix: every fix is a position.
      async () => {
        const n = await trackLen(tech);
        return n === 5 ? n : undefined;
      },
      60_000,
    );
    await eventually(
      'the order archived',
      async () => {
        const r = await get('/v1/orders/o-erase/timeline');
        return r.status === 200 && (r.body as { timeline: unknown[] }).timeline.length === 5 ? r : undefined;
      },
      60_000,
    );
    assert.ok((await nearbyIds()).includes(tech));

    // Connected: its next ping would record it again, so the erase is refused.
    const connected = await server.http('DELETE', `/v1/technicians/${tech}`, { role: 'dispatch' });
    assert.equal(connected.status, 409);
    assert.equal((connected.body as { code: string }).code, 'conflict');
    assert.equal((await get(`/v1/technicians/${tech}`)).status, 200);

    await device.close();
    await eventually(
      'the device seen offline',
      async () => {
        const r = await get(`/v1/technicians/${tech}`);
        return (r.body as { online?: boolean }).online === false ? r : undefined;
      },
      60_000,
    );
    const forbidden = await server.http('DELETE', `/v1/technicians/${tech}`, { role: 'safety' });
    assert.equal(forbidden.status, 403);

    const erased = await server.http('DELETE', `/v1/technicians/${tech}`, { role: 'dispatch' });
    assert.equal(erased.status, 200, erased.text);
    assert.deepEqual(erased.body, {
      id: tech,
      erased: { technician: true, orders: ['o-erase'], alerts: [incident], archive: true },
    });

    const checkGone = async (s: ServerProcess) => {
      assert.equal((await s.http('GET', `/v1/technicians/${tech}`, { role: 'dispatch' })).status, 404);
      assert.equal((await s.http('GET', '/v1/orders/o-erase', { role: 'dispatch' })).status, 404);
      assert.equal((await s.http('GET', '/v1/orders/o-erase/timeline', { role: 'dispatch' })).status, 404);
      const alerts = (await s.http('GET', '/v1/alerts', { role: 'safety' })).body as { alerts: Alert[] };
      assert.equal(alerts.alerts.filter((a) => a.tech === tech).length, 0);
      const track = await s.http('GET', `/v1/technicians/${tech}/track?from=0`, { role: 'dispatch' });
      assert.equal(track.status, 404, 'no live record and no archived point');
      const near = (await s.http('GET', `/v1/nearby?lat=${HOME.lat}&lon=${HOME.lon}&radius=1000`, { role: 'dispatch' }))
        .body as { technicians: { id: string }[] };
      assert.deepEqual(
        near.technicians.map((t) => t.id),
        s === server ? [other] : [],
      );
    };
    await checkGone(server);
    // Erasing twice: nothing is left to find.
    assert.equal((await server.http('DELETE', `/v1/technicians/${tech}`, { role: 'dispatch' })).status, 404);
    // The other technician is untouched.
    assert.equal((await get(`/v1/technicians/${other}`)).status, 200);
    assert.equal(await trackLen(other), 1);
    await keeper.close();

    await server.crash();
    const restarted = await ServerProcess.start({ dataDir: server.dataDir });
    try {
      await checkGone(restarted);
      assert.equal((await restarted.http('GET', `/v1/technicians/${other}`, { role: 'dispatch' })).status, 200);
    } finally {
      await restarted.stop();
    }
    server = await ServerProcess.start();
  });

  it('is refused with 409 while an SOS of the technician is unresolved', async () => {
    const tech = 'tech-sos';
    const device = await server.device(tech);
    assert.equal((await device.ping({ ts: Date.now(), ...HOME })).t, 'ack');
    const sos = await device.sos({ ts: Date.now(), ...HOME });
    assert.equal(sos.t, 'ack');
    await device.close();
    await eventually(
      'the device seen offline',
      async () => {
        const r = await get(`/v1/technicians/${tech}`);
        return (r.body as { online?: boolean }).online === false ? r : undefined;
      },
      60_000,
    );
    const res = await server.http('DELETE', `/v1/technicians/${tech}`, { role: 'dispatch' });
    assert.equal(res.status, 409);
    const body = res.body as { code: string; alerts: string[]; orders: string[] };
    assert.equal(body.code, 'conflict');
    assert.deepEqual(body.alerts, [String(sos.incident)]);
    assert.deepEqual(body.orders, []);
    const open = (await get('/v1/alerts?state=open', 'safety')).body as { alerts: Alert[] };
    assert.ok(
      open.alerts.some((a) => a.id === String(sos.incident)),
      'the SOS is still there',
    );
    assert.equal((await get(`/v1/technicians/${tech}`)).status, 200);
  });

  it('answers 404 for an unknown technician and 400 for a malformed id', async () => {
    assert.equal((await server.http('DELETE', '/v1/technicians/nobody-here', { role: 'dispatch' })).status, 404);
    assert.equal((await server.http('DELETE', '/v1/technicians/bad%20id', { role: 'dispatch' })).status, 400);
  });
});

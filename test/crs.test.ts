/**
 * Coordinate systems on the real server (PROTOCOL.md, `crs`): a customer geocoded by AMap
 * (GCJ-02) and a phone reporting GPS (WGS-84) meet in WGS-84, so an honest check-in at the
 * door is accepted and one 300 m away is refused; given without its `crs`, the same
 * customer is hundreds of metres off and the honest check-in is refused (what the issue
 * describes). Queries answer in the `?crs=` asked for.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { distanceMeters, fromWgs84 } from '../src/geofence/index.js';
import type { Alert, NearbyTechnician, OrderView, TechnicianView, TrackPoint } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';

/** The customer's door in Shanghai as GPS has it, and as AMap (GCJ-02) and Baidu (BD-09) geocode it. */
const DOOR = PLACES.shanghai;
const DOOR_GCJ = fromWgs84('gcj02', DOOR.lat, DOOR.lon);
const DOOR_BD = fromWgs84('bd09', DOOR.lat, DOOR.lon);
/** 300 m north of the door (1 degree of latitude is about 111.2 km). */
const AWAY = { lat: DOOR.lat + 300 / 111_195, lon: DOOR.lon };

describe('coordinate systems (crs)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { ARCHIVE_BATCH_MS: '100' } });
  });
  after(async () => {
    await server.stop();
  });

  const putOrder = (id: string, tech: string, body: Record<string, unknown>, query = '') =>
    server.http('PUT', `/v1/orders/${id}${query}`, {
      role: 'dispatch',
      body: { technician: tech, scheduledAt: Date.now() + 3_600_000, durationMin: 60, ...body },
    });

  it('the GCJ-02 offset here is far more than the 50 m check-in radius', () => {
    assert.ok(distanceMeters(DOOR.lat, DOOR.lon, DOOR_GCJ.lat, DOOR_GCJ.lon) > 300);
  });

  it('a customer given in GCJ-02: a WGS-84 phone at the door checks in, one 300 m away is refused', async () => {
    for (const [order, crs, place] of [
      ['crs-o1', 'gcj02', DOOR_GCJ],
      ['crs-o2', 'gcj02', DOOR_GCJ],
      ['crs-o3', 'bd09', DOOR_BD],
    ] as const) {
      const put = await putOrder(order, 'crs-t1', { ...place, crs });
      assert.equal(put.status, 200, JSON.stringify(put.body));
    }
    const phone = await server.device('crs-t1');
    try {
      assert.equal((await phone.depart('crs-o1')).t, 'ack');
      const atDoor = await phone.checkin({ order: 'crs-o1', ts: Date.now(), ...DOOR, acc: 5 });
      assert.equal(atDoor.t, 'ack', JSON.stringify(atDoor));
      assert.ok((atDoor.dist as number) < 1, `dist ${atDoor.dist}`);

      assert.equal((await phone.depart('crs-o2')).t, 'ack');
      const away = await phone.checkin({ order: 'crs-o2', ts: Date.now(), ...AWAY, acc: 5 });
      assert.equal(away.t, 'err');
      assert.equal(away.code, 'outside_geofence');
      assert.ok(Math.abs((away.dist as number) - 300) < 2, `dist ${away.dist}`);

      // Baidu's BD-09 as well.
      assert.equal((await phone.depart('crs-o3')).t, 'ack');
      const bd = await phone.checkin({ order: 'crs-o3', ts: Date.now(), ...DOOR });
      assert.equal(bd.t, 'ack', JSON.stringify(bd));
    } finally {
      await phone.close();
    }
  });

  it('the same GCJ-02 customer given without crs is taken as WGS-84, and the honest check-in is refused', async () => {
    assert.equal((await putOrder('crs-o4', 'crs-t2', { ...DOOR_GCJ })).status, 200);
    const phone = await server.device('crs-t2');
    try {
      assert.equal((await phone.depart('crs-o4')).t, 'ack');
      const atDoor = await phone.checkin({ order: 'crs-o4', ts: Date.now(), ...DOOR, acc: 5 });
      assert.equal(atDoor.code, 'outside_geofence');
      assert.ok((atDoor.dist as number) > 300);
    } finally {
      await phone.close();
    }
  });

  it('a phone reporting GCJ-02 (an AMap location SDK) checks in at a WGS-84 customer', async () => {
    assert.equal((await putOrder('crs-o5', 'crs-t3', { ...DOOR })).status, 200);
    const phone = await server.device('crs-t3');
    try {
      assert.equal((await phone.depart('crs-o5')).t, 'ack');
      const ping = await phone.ping({ ts: Date.now() - 1000, ...DOOR_GCJ, crs: 'gcj02' });
      assert.equal(ping.t, 'ack');
      const at = await phone.checkin({ order: 'crs-o5', ts: Date.now(), ...DOOR_GCJ, crs: 'gcj02' });
      assert.equal(at.t, 'ack', JSON.stringify(at));
      const unknown = await phone.ping({ ts: Date.now(), ...DOOR, crs: 'mars' as 'wgs84' });
      assert.equal(unknown.t, 'err');
      assert.equal(unknown.code, 'bad_request');
      assert.match(unknown.msg as string, /crs/);
    } finally {
      await phone.close();
    }
  });

  it('queries answer in the crs asked for, and store WGS-84', async () => {
    const near = (p: { lat?: number; lon?: number }, q: { lat: number; lon: number }) =>
      distanceMeters(p.lat!, p.lon!, q.lat, q.lon) < 0.01;

    // The order: stored in WGS-84, shown in each system; PUT answers in its body's system.
    const put = await putOrder('crs-o6', 'crs-t4', { ...DOOR_GCJ, crs: 'gcj02' });
    assert.ok(near(put.body as OrderView, DOOR_GCJ));
    const order = async (q: string) =>
      (await server.http('GET', `/v1/orders/crs-o6${q}`, { role: 'dispatch' })).body as OrderView;
    assert.ok(near(await order(''), DOOR), 'stored in WGS-84');
    assert.ok(near(await order('?crs=wgs84'), DOOR));
    assert.ok(near(await order('?crs=gcj02'), DOOR_GCJ));
    assert.ok(near(await order('?crs=bd09'), DOOR_BD));

    // The technician, its track and nearby search, from a WGS-84 phone at the door.
    const phone = await server.device('crs-t4');
    try {
      const ts = Date.now() - 2000;
      assert.equal((await phone.ping({ ts, ...DOOR })).t, 'ack');
      const tech = async (q: string) =>
        (await server.http('GET', `/v1/technicians/crs-t4${q}`, { role: 'safety' })).body as TechnicianView;
      assert.ok(near(await tech(''), DOOR));
      assert.ok(near(await tech('?crs=gcj02'), DOOR_GCJ));
      assert.ok(near(await tech('?crs=bd09'), DOOR_BD));
      const points = await eventually('the ping in the track', async () => {
        const res = await server.http('GET', '/v1/technicians/crs-t4/track?crs=gcj02', { role: 'safety' });
        const p = (res.body as { points: TrackPoint[] }).points;
        return p.length > 0 ? p : undefined;
      });
      assert.ok(near({ lat: points[0]![1], lon: points[0]![2] }, DOOR_GCJ));

      // A nearby search from the customer as AMap has it, answered in GCJ-02.
      const found = await server.http('GET', `/v1/nearby?lat=${DOOR_GCJ.lat}&lon=${DOOR_GCJ.lon}&radius=50&crs=gcj02`, {
        role: 'safety',
      });
      const t = (found.body as { technicians: NearbyTechnician[] }).technicians.find((x) => x.id === 'crs-t4');
      assert.ok(t, JSON.stringify(found.body));
      assert.ok(t.dist < 1);
      assert.ok(near(t, DOOR_GCJ));

      // An SOS's alert in each system.
      assert.equal((await phone.sos({ ts: Date.now(), ...DOOR })).t, 'ack');
      const alerts = async (q: string) =>
        ((await server.http('GET', `/v1/alerts${q}`, { role: 'safety' })).body as { alerts: Alert[] }).alerts.find(
          (a) => a.tech === 'crs-t4' && a.kind === 'sos',
        )!;
      assert.ok(near(await alerts(''), DOOR));
      assert.ok(near(await alerts('?crs=bd09'), DOOR_BD));
    } finally {
      await phone.close();
    }

    for (const path of ['/v1/orders/crs-o6?crs=wgs', '/v1/technicians/crs-t4?crs=GCJ02', '/v1/alerts?crs=']) {
      const res = await server.http('GET', path, { role: 'dispatch' });
      assert.equal(res.status, 400, path);
      assert.equal((res.body as { code: string }).code, 'bad_request');
    }
    const badBody = await putOrder('crs-o7', 'crs-t4', { ...DOOR, crs: 'cgcs2000' });
    assert.equal(badBody.status, 400);
  });
});

/**
 * Technician actors through the Tracker: position filtering (null island, duplicates,
 * late and out-of-order points, batches), queries (technician view, track, nearby,
 * online), passivation and re-activation keeping state, and crash restart keeping the
 * last committed state.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { BatchPoint } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { Collector, type Harness, harness, ok } from '../support/memory-archive.js';

const SEC = 1000;
const MIN = 60 * SEC;
const A = PLACES.paris;
const north = (m: number) => ({ lat: A.lat + m / 111_194.93, lon: A.lon });

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.dispose();
});

const ping = (tech: string, ts: number, where: { lat: number; lon: number }, acc?: number) =>
  h.tracker.onDeviceMessage(tech, { t: 'ping', seq: 0, ts, ...where, ...(acc !== undefined ? { acc } : {}) });
const batch = (tech: string, pts: BatchPoint[]) => h.tracker.onDeviceMessage(tech, { t: 'batch', seq: 0, pts });
const stored = (tech: string) => h.archive.pings.filter((p) => p.tech === tech).map((p) => p.ts);

describe('position filtering', () => {
  test('a ping becomes the live position and is archived', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A, 12));
    const v = ok(await h.tracker.getTechnician('t1'));
    assert.deepEqual(v, { id: 't1', lat: A.lat, lon: A.lon, ts: t, acc: 12, online: false });
    assert.deepEqual(stored('t1'), [t]);
  });

  test('(0, 0) is acked but neither archived nor used', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    assert.deepEqual(ok(await ping('t1', t + 1000, { lat: 0, lon: 0 })), {});
    assert.deepEqual(stored('t1'), [t]);
    assert.equal(ok(await h.tracker.getTechnician('t1')).ts, t);
  });

  test('a duplicate ping is acked and not stored twice', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    ok(await ping('t1', t, A));
    assert.deepEqual(stored('t1'), [t]);
  });

  test('a late ping is archived but never moves the live position back', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    ok(await ping('t1', t - 10_000, north(100)));
    assert.deepEqual(stored('t1'), [t, t - 10_000]);
    const v = ok(await h.tracker.getTechnician('t1'));
    assert.equal(v.ts, t);
    assert.equal(v.lat, A.lat);
    ok(await ping('t1', t - 10_000, north(100)));
    assert.equal(stored('t1').length, 2, 'the late point is recognised as a duplicate too');
  });

  test('a poor-accuracy ping is archived and shown, but decides nothing', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A, 900));
    assert.deepEqual(stored('t1'), [t]);
    assert.equal(ok(await h.tracker.getTechnician('t1')).acc, 900);
  });

  test('batch: out of order, duplicates inside and against earlier points, n counts accepted points', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    const pts: BatchPoint[] = [
      [t - 3000, north(30).lat, A.lon, 5],
      [t - 1000, north(10).lat, A.lon],
      [t - 2000, north(20).lat, A.lon],
      [t - 1000, north(10).lat, A.lon],
      [t, A.lat, A.lon],
      [t - 500, 0, 0],
    ];
    assert.deepEqual(ok(await batch('t1', pts)), { n: 5 });
    assert.deepEqual(stored('t1').sort(), [t - 3000, t - 2000, t - 1000, t]);
    assert.equal(ok(await h.tracker.getTechnician('t1')).ts, t, 'older points do not move the live position');
    // The same batch sent again (its ack was lost): accepted, nothing stored twice.
    assert.deepEqual(ok(await batch('t1', pts)), { n: 5 });
    assert.equal(stored('t1').length, 4);
    const track = ok(await h.tracker.getTrack('t1', t - 10_000, t));
    assert.deepEqual(
      track.map((p) => p[0]),
      [t - 3000, t - 2000, t - 1000, t],
    );
    assert.equal(track[0]?.[3], 5);
    assert.equal(track[1]?.[3], null);
  });

  test('batch newer than the live position moves it forward, raising nothing', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    ok(
      await batch('t1', [
        [t + 2000, north(50_000).lat, A.lon],
        [t + 1000, A.lat, A.lon],
      ]),
    );
    const v = ok(await h.tracker.getTechnician('t1'));
    assert.equal(v.ts, t + 2000);
    await h.tracker.settle();
    assert.deepEqual(await h.tracker.listAlerts(), [], '50 km in 2 s from a backlog is not judged');
  });

  test('a batch is refused whole when the spool is full', async () => {
    const t = h.clock.now();
    h.archive.full = true;
    const out = await batch('t1', [[t, A.lat, A.lon]]);
    assert.equal(!out.ok && out.code, 'unavailable');
    h.archive.full = false;
    assert.deepEqual(ok(await batch('t1', [[t, A.lat, A.lon]])), { n: 1 });
    assert.deepEqual(stored('t1'), [t]);
  });
});

describe('queries', () => {
  test('unknown technician: not_found for the view and the track', async () => {
    assert.equal((await h.tracker.getTechnician('ghost')).ok, false);
    const out = await h.tracker.getTrack('ghost', 0, Date.now());
    assert.equal(!out.ok && out.code, 'not_found');
  });

  test('online while a device link is attached; a stale detach does not unplug the new link', async () => {
    const first = new Collector();
    const second = new Collector();
    h.tracker.attachDevice('t1', first as never);
    ok(await ping('t1', h.clock.now(), A));
    assert.equal(ok(await h.tracker.getTechnician('t1')).online, true);
    h.tracker.attachDevice('t1', second as never);
    h.tracker.detachDevice('t1', first as never);
    assert.equal(ok(await h.tracker.getTechnician('t1')).online, true);
    h.tracker.detachDevice('t1', second as never);
    assert.equal(ok(await h.tracker.getTechnician('t1')).online, false);
  });

  test('nearby: online technicians within the radius, nearest first', async () => {
    const t = h.clock.now();
    for (const [id, m] of [
      ['far', 5000],
      ['mid', 300],
      ['near', 100],
      ['offline-near', 50],
    ] as const) {
      ok(await ping(id, t, north(m)));
      if (id !== 'offline-near') h.tracker.attachDevice(id, new Collector() as never);
    }
    h.tracker.attachDevice('never-pinged', new Collector() as never);
    const got = await h.tracker.nearby(A.lat, A.lon, 1000);
    assert.deepEqual(
      got.map((n) => n.id),
      ['near', 'mid'],
    );
    assert.ok(Math.abs((got[0]?.dist ?? 0) - 100) < 0.5);
    assert.equal(got[0]?.ts, t);
  });

  test('readiness names the archive and the journal', async () => {
    const r = await h.tracker.readiness();
    assert.equal(r.archive?.ok, true);
    assert.equal(r.journal?.ok, true);
    h.archive.full = true;
    assert.equal((await h.tracker.readiness()).archive?.ok, false);
  });
});

describe('passivation', () => {
  test('an idle technician without an active order is stopped and comes back with the same state', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A, 7));
    ok(await ping('t1', t - 5000, north(10)));
    assert.equal(h.tracker.techs.isLive('t1'), true);
    const before = ok(await h.tracker.getTechnician('t1'));
    await h.advance(10 * MIN - 1);
    assert.equal(h.tracker.techs.isLive('t1'), true, 'not before PASSIVATE_AFTER_MS');
    await h.advance(4 * MIN);
    assert.equal(h.tracker.techs.isLive('t1'), false);
    assert.deepEqual(ok(await h.tracker.getTechnician('t1')), before, 'state kept while passive');
    // Re-activated by the next message, with its state: the duplicate window survived.
    ok(await ping('t1', t - 5000, north(10)));
    assert.equal(h.tracker.techs.isLive('t1'), true);
    assert.equal(stored('t1').length, 2);
    ok(await ping('t1', h.clock.now(), north(20)));
    assert.equal(ok(await h.tracker.getTechnician('t1')).ts, h.clock.now());
  });

  test('a technician with an active order stays in memory and keeps watching deadlines', async () => {
    const t = h.clock.now();
    ok(await h.tracker.putOrder('o1', { technician: 't1', ...A, scheduledAt: t + 99 * MIN, durationMin: 10 }));
    ok(await ping('t1', t, A));
    ok(await h.tracker.onDeviceMessage('t1', { t: 'depart', seq: 1, order: 'o1' }));
    for (let i = 0; i < 8; i++) {
      await h.advance(4 * MIN);
      ok(await ping('t1', h.clock.now(), A));
    }
    await h.advance(30 * MIN);
    assert.equal(h.tracker.techs.isLive('t1'), true);
    assert.deepEqual(
      (await h.tracker.listAlerts()).map((a) => a.kind),
      ['offline'],
    );
  });

  test('a passivated technician is woken by its order, not forgotten', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A));
    await h.advance(15 * MIN);
    assert.equal(h.tracker.techs.isLive('t1'), false);
    ok(await h.tracker.putOrder('o1', { technician: 't1', ...A, scheduledAt: t + 99 * MIN, durationMin: 10 }));
    ok(await h.tracker.onDeviceMessage('t1', { t: 'depart', seq: 1, order: 'o1' }));
    await h.tracker.settle();
    const v = ok(await h.tracker.getTechnician('t1'));
    assert.equal(v.activeOrder, 'o1');
    assert.equal(v.ts, t);
  });
});

describe('crash restart', () => {
  test('an exception in the handler answers internal; the actor restarts from its last committed state', async () => {
    const t = h.clock.now();
    ok(await ping('t1', t, A, 3));
    ok(await ping('t1', t + 1000, north(10), 4));
    h.archive.failNext = 1;
    const out = await ping('t1', t + 2000, north(20));
    assert.equal(!out.ok && out.code, 'internal');
    assert.equal(h.tracker.techs.crashes, 1);
    const v = ok(await h.tracker.getTechnician('t1'));
    assert.equal(v.ts, t + 1000);
    assert.equal(v.acc, 4);
    // Messages after the crash are served by the restarted actor, with the state intact.
    ok(await ping('t1', t + 1000, north(10)));
    assert.equal(stored('t1').length, 2, 'duplicate still recognised after restart');
    ok(await ping('t1', t + 2000, north(20)));
    assert.equal(ok(await h.tracker.getTechnician('t1')).ts, t + 2000);
  });

  test('an order actor crash mid-transition keeps the previous state', async () => {
    const t = h.clock.now();
    ok(await h.tracker.putOrder('o1', { technician: 't1', ...A, scheduledAt: t + 60 * MIN, durationMin: 10 }));
    h.archive.failNext = 1;
    const out = await h.tracker.onDeviceMessage('t1', { t: 'depart', seq: 1, order: 'o1' });
    assert.equal(!out.ok && out.code, 'internal');
    assert.equal(h.tracker.orders.crashes, 1);
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'assigned');
    ok(await h.tracker.onDeviceMessage('t1', { t: 'depart', seq: 2, order: 'o1' }));
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'departed');
    assert.deepEqual(
      (await h.archive.orderEvents('o1')).map((e) => e.state),
      ['assigned', 'departed'],
    );
  });

  test('a crash while raising a deadline alert is retried: the alert is raised once, a moment later', async () => {
    const t = h.clock.now();
    ok(await h.tracker.putOrder('o1', { technician: 't1', ...A, scheduledAt: t, durationMin: 10 }));
    ok(await h.tracker.onDeviceMessage('t1', { t: 'depart', seq: 1, order: 'o1' }));
    await h.advance(15 * MIN - 1);
    h.archive.failNext = 1;
    await h.advance(1);
    const lateArrivals = async () => (await h.tracker.listAlerts()).filter((a) => a.kind === 'late_arrival');
    assert.equal(h.tracker.orders.crashes, 1);
    assert.deepEqual(await lateArrivals(), []);
    await h.advance(SEC);
    assert.equal((await lateArrivals()).length, 1);
    await h.advance(MIN);
    assert.equal((await lateArrivals()).length, 1);
  });
});

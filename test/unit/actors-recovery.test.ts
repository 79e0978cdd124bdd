/**
 * Recovery after an abrupt stop (no close(): queued positions are not flushed, nothing
 * is drained), with a new tracker on the same DATA_DIR and a later clock: open SOS, open
 * alerts, orders in progress and pending deadlines are back, and a deadline that passed
 * meanwhile fires right after the restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SafetyPush } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { Collector, type Harness, harnessesPerTest, ok } from '../support/memory-archive.js';

const SEC = 1000;
const MIN = 60 * SEC;
const CUSTOMER = PLACES.paris;

const { fresh, keep } = harnessesPerTest();
async function restart(h: Harness, downMs: number): Promise<Harness> {
  await h.tracker.crash();
  const next = await h.restart(h.clock.now() + downMs);
  keep(next);
  await next.tracker.settle();
  return next;
}

test('open SOS comes back and keeps climbing; a rung that passed while down fires at once', async () => {
  const h = await fresh();
  const id = ok(await h.tracker.onDeviceMessage('tech-1', { t: 'sos', seq: 1, ts: h.clock.now(), ...CUSTOMER }))
    .incident as string;
  await h.advance(70 * SEC);
  const before = (await h.tracker.listAlerts()).find((a) => a.id === id);
  assert.equal(before?.level, 2);

  // Down for 5 minutes: level 3 (at 5 min) passed meanwhile.
  const h2 = await restart(h, 5 * MIN);
  const console = new Collector<SafetyPush>();
  h2.tracker.attachSafety('op', console);
  const back = (await h2.tracker.listAlerts()).find((a) => a.id === id);
  assert.equal(back?.state, 'open');
  assert.equal(back?.level, 3, 'escalated right after restart');
  assert.equal(console.got[0]?.t, 'snapshot');
  assert.deepEqual(console.got[0]?.t === 'snapshot' && console.got[0].alerts.map((a) => a.id), [id]);
  // The SLA deadline is still pending and fires on time.
  await h2.advance(15 * MIN - 70 * SEC - 5 * MIN - 1);
  assert.equal((await h2.tracker.listAlerts()).find((a) => a.id === id)?.detail?.slaBreached, undefined);
  await h2.advance(1);
  assert.equal((await h2.tracker.listAlerts()).find((a) => a.id === id)?.detail?.slaBreached, true);
  // The operator can still act on it after the restart, and the technician hears it.
  const phone = new Collector();
  h2.tracker.attachDevice('tech-1', phone as never);
  ok(await h2.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id }));
  assert.deepEqual(phone.got, [{ t: 'sos_status', incident: id, state: 'acknowledged' }]);
});

test('orders in progress, open alerts and pending deadlines come back', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  // o1: in progress (arrived), o2: assigned with a late_departure pending at t0+45min, o3: alert already raised.
  ok(await h.tracker.putOrder('o1', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0, durationMin: 30 }));
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'ping', seq: 1, ts: t0, ...CUSTOMER }));
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'depart', seq: 2, order: 'o1' }));
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'checkin', seq: 3, order: 'o1', ts: t0, ...CUSTOMER }));
  ok(
    await h.tracker.putOrder('o2', { technician: 'tech-2', ...CUSTOMER, scheduledAt: t0 + 30 * MIN, durationMin: 30 }),
  );
  ok(
    await h.tracker.putOrder('o3', { technician: 'tech-3', ...CUSTOMER, scheduledAt: t0 - 20 * MIN, durationMin: 30 }),
  );
  await h.tracker.settle();
  const open = await h.tracker.listAlerts('open');
  assert.deepEqual(open.map((a) => `${a.kind}:${a.order}`).sort(), ['late_arrival:o3', 'late_departure:o3']);
  await h.advance(MIN);

  const h2 = await restart(h, 2 * MIN);
  const o1 = ok(await h2.tracker.getOrder('o1'));
  assert.equal(o1.state, 'arrived');
  assert.deepEqual(
    o1.timeline.map((e) => e.state),
    ['assigned', 'departed', 'arrived'],
  );
  assert.deepEqual(
    (await h2.tracker.listAlerts('open')).map((a) => a.id).sort(),
    open.map((a) => a.id).sort(),
    'the same alerts, not raised again',
  );
  assert.equal(ok(await h2.tracker.getTechnician('tech-1')).activeOrder, 'o1');
  const pos = ok(await h2.tracker.getTechnician('tech-1'));
  assert.equal(pos.lat, CUSTOMER.lat, 'last position flushed before the crash is back');
  // The technician carries on where they were.
  ok(await h2.tracker.onDeviceMessage('tech-1', { t: 'start', seq: 4, order: 'o1' }));
  // o2's late_departure is still pending: at t0 + 45 min.
  const now = h2.clock.now();
  await h2.advance(t0 + 45 * MIN - now - 1);
  assert.equal((await h2.tracker.listAlerts()).filter((a) => a.order === 'o2').length, 0);
  await h2.advance(1);
  assert.deepEqual(
    (await h2.tracker.listAlerts())
      .filter((a) => a.order === 'o2')
      .map((a) => a.kind)
      .sort(),
    ['late_arrival', 'late_departure'],
  );
});

test('a deadline that passed while the process was down fires right after restart', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  ok(
    await h.tracker.putOrder('o1', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0 + 10 * MIN, durationMin: 30 }),
  );
  const h2 = await restart(h, 60 * MIN);
  const kinds = (await h2.tracker.listAlerts('open')).map((a) => a.kind).sort();
  assert.deepEqual(kinds, ['late_arrival', 'late_departure']);
  // Fired, not still armed: letting the restored timers run raises nothing more.
  await h2.advance(10 * MIN);
  assert.equal((await h2.tracker.listAlerts()).length, 2);
  // Once only, even across another restart.
  const h3 = await restart(h2, MIN);
  assert.equal((await h3.tracker.listAlerts()).length, 2);
});

test('an acked change is never lost; coalesced positions lose at most the last flush window', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'ping', seq: 1, ts: t0, ...CUSTOMER }));
  await h.advance(2 * SEC); // the test journal flushes positions every second
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'ping', seq: 2, ts: t0 + 2 * SEC, lat: 48.86, lon: 2.36 }));
  ok(await h.tracker.putOrder('o9', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0 + 99 * MIN, durationMin: 5 }));
  const h2 = await restart(h, 0);
  assert.equal(ok(await h2.tracker.getOrder('o9')).state, 'assigned');
  const t = ok(await h2.tracker.getTechnician('tech-1'));
  assert.ok(t.ts === t0 || t.ts === t0 + 2 * SEC, `position ${t.ts} is one that was sent`);
});

test('offline after a restart counts the silence from the restart, not from before it', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  ok(
    await h.tracker.putOrder('o1', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0 + 60 * MIN, durationMin: 30 }),
  );
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'ping', seq: 1, ts: t0, ...CUSTOMER }));
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'depart', seq: 2, order: 'o1' }));
  await h.advance(2 * SEC);
  const h2 = await restart(h, 10 * MIN);
  assert.deepEqual(await h2.tracker.listAlerts(), []);
  await h2.advance(5 * MIN - 1);
  assert.deepEqual(await h2.tracker.listAlerts(), []);
  await h2.advance(1);
  assert.deepEqual(
    (await h2.tracker.listAlerts()).map((a) => a.kind),
    ['offline'],
  );
});

test('close() then restart: the same state, nothing raised twice', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  ok(
    await h.tracker.putOrder('o1', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0 - 30 * MIN, durationMin: 30 }),
  );
  await h.tracker.settle();
  const before = await h.tracker.listAlerts();
  assert.equal(before.length, 2);
  await h.tracker.close();
  const h2 = await h.restart(t0 + MIN);
  keep(h2);
  await h2.tracker.settle();
  assert.deepEqual(await h2.tracker.listAlerts(), before);
});

test('finished orders and resolved alerts leave live state after the retention time, also across a restart', async () => {
  const h = await fresh();
  const t0 = h.clock.now();
  ok(
    await h.tracker.putOrder('done', { technician: 'tech-1', ...CUSTOMER, scheduledAt: t0 + 60 * MIN, durationMin: 5 }),
  );
  ok(
    await h.tracker.putOrder('live', {
      technician: 'tech-2',
      ...CUSTOMER,
      scheduledAt: t0 + 48 * 60 * MIN,
      durationMin: 5,
    }),
  );
  ok(await h.tracker.cancelOrder('done'));
  const sos = ok(await h.tracker.onDeviceMessage('tech-3', { t: 'sos', seq: 1, ts: t0, ...CUSTOMER }))
    .incident as string;
  const other = ok(await h.tracker.onDeviceMessage('tech-4', { t: 'sos', seq: 1, ts: t0, ...CUSTOMER }))
    .incident as string;
  ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 1, id: sos }));
  await h.advance(23 * 60 * MIN);
  assert.equal((await h.tracker.getOrder('done')).ok, true, 'still there within the retention time');
  await h.advance(2 * 60 * MIN);
  assert.equal((await h.tracker.getOrder('done')).ok, false);
  assert.equal(ok(await h.tracker.getOrder('live')).state, 'assigned');
  assert.deepEqual(
    (await h.tracker.listAlerts()).map((a) => a.id),
    [other],
    'the resolved SOS is gone, the open one stays',
  );
  const h2 = await restart(h, MIN);
  assert.equal((await h2.tracker.getOrder('done')).ok, false);
  assert.equal(ok(await h2.tracker.getOrder('live')).state, 'assigned');
  assert.deepEqual(
    (await h2.tracker.listAlerts()).map((a) => a.id),
    [other],
  );
});

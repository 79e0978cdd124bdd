/**
 * Erasing a technician's data through the Tracker (privacy), on the actors harness:
 * refusals (device connected, an open order) change nothing; an erase removes the live
 * record, finished orders, resolved alerts and archived rows of that technician only,
 * and a crash + restart on the same DATA_DIR (journal replay) does not bring them back,
 * whether its last position had been journaled or was still waiting for the flush.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLACES } from '../support/fixtures.js';
import { Collector, harnessesPerTest, ok } from '../support/memory-archive.js';

const SITE = PLACES.lyon;
const { fresh, keep } = harnessesPerTest();

const refusedWith = (out: { ok: boolean; code?: string }, code: string) => {
  assert.equal(out.ok, false);
  assert.equal(out.code, code);
};

test('refused while the device is connected or an order is open; nothing changes', async () => {
  const h = await fresh();
  const phone = new Collector();
  h.tracker.attachDevice('tech-1', phone as never);
  ok(await h.tracker.onDeviceMessage('tech-1', { t: 'ping', seq: 1, ts: h.clock.now(), ...SITE }));
  ok(
    await h.tracker.putOrder('o1', {
      technician: 'tech-1',
      ...SITE,
      scheduledAt: h.clock.now() + 3_600_000,
      durationMin: 30,
    }),
  );
  refusedWith(await h.tracker.eraseTechnician('tech-1'), 'conflict');
  h.tracker.detachDevice('tech-1', phone as never);

  const open = await h.tracker.eraseTechnician('tech-1');
  refusedWith(open, 'conflict');
  assert.deepEqual(!open.ok && open.extras, { orders: ['o1'], alerts: [] });
  assert.equal(ok(await h.tracker.getTechnician('tech-1')).lat, SITE.lat);
  assert.equal(ok(await h.tracker.getOrder('o1')).state, 'assigned');

  ok(await h.tracker.cancelOrder('o1'));
  const erased = ok(await h.tracker.eraseTechnician('tech-1'));
  assert.deepEqual(erased, {
    id: 'tech-1',
    erased: { technician: true, orders: ['o1'], alerts: [], archive: true },
  });
  refusedWith(await h.tracker.getOrder('o1'), 'not_found');
  refusedWith(await h.tracker.eraseTechnician('tech-1'), 'not_found');
});

test('erases only that technician, and a restart after a crash does not bring it back', async () => {
  const h = await fresh();
  for (const tech of ['tech-gone', 'tech-stays']) {
    ok(await h.tracker.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: h.clock.now(), ...SITE }));
  }
  // The first positions are journaled by the coalesced flush (1 s in the harness)...
  await h.advance(2000);
  // ...the newest one of tech-gone only waits for the next flush.
  ok(await h.tracker.onDeviceMessage('tech-gone', { t: 'ping', seq: 2, ts: h.clock.now(), ...SITE }));
  const sos = ok(await h.tracker.onDeviceMessage('tech-gone', { t: 'sos', seq: 3, ts: h.clock.now(), ...SITE }));
  const incident = sos.incident as string;
  refusedWith(await h.tracker.eraseTechnician('tech-gone'), 'conflict');
  ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 1, id: incident }));

  const erased = ok(await h.tracker.eraseTechnician('tech-gone'));
  assert.deepEqual(erased.erased.alerts, [incident]);
  refusedWith(await h.tracker.getTechnician('tech-gone'), 'not_found');
  assert.equal((await h.tracker.listAlerts()).length, 0);
  assert.equal(h.archive.pings.filter((p) => p.tech === 'tech-gone').length, 0);
  assert.equal(h.archive.alertEvents.filter((a) => a.tech === 'tech-gone').length, 0);
  assert.equal(h.archive.pings.filter((p) => p.tech === 'tech-stays').length, 1);
  assert.deepEqual(
    (await h.tracker.nearby(SITE.lat, SITE.lon, 100)).map((t) => t.id),
    [],
    'neither had a device attached',
  );

  await h.tracker.crash();
  const h2 = await h.restart(h.clock.now() + 1000);
  keep(h2);
  await h2.tracker.settle();
  refusedWith(await h2.tracker.getTechnician('tech-gone'), 'not_found');
  assert.equal((await h2.tracker.listAlerts()).length, 0);
  assert.equal(ok(await h2.tracker.getTechnician('tech-stays')).lat, SITE.lat);
  refusedWith(await h2.tracker.eraseTechnician('tech-gone'), 'not_found');
});

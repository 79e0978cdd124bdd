/**
 * Every non-SOS alert kind through the Tracker with a ManualClock: raised exactly once at
 * the right moment, not raised when its condition clears first, pushed to consoles, and
 * handled by operators (ack, resolve, conflict, idempotence).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Alert, AlertKind, OrderInput, SafetyPush } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { Collector, connectedHarness, type DeviceCollector, type Harness, ok } from '../support/memory-archive.js';

const MIN = 60_000;
const CUSTOMER = PLACES.paris;
const north = (m: number) => ({ lat: CUSTOMER.lat + m / 111_194.93, lon: CUSTOMER.lon });

let h: Harness;
let consoleLink: Collector<SafetyPush>;
let phone: DeviceCollector;
beforeEach(async () => {
  ({ h, consoleLink, phone } = await connectedHarness());
});
afterEach(async () => {
  await h.dispose();
});

const T0 = () => h.clock.now();
function order(extra: Partial<OrderInput> = {}): OrderInput {
  return { technician: 'tech-1', ...CUSTOMER, radius: 50, scheduledAt: T0() + 30 * MIN, durationMin: 60, ...extra };
}
const dev = (msg: Parameters<Harness['tracker']['onDeviceMessage']>[1]) => h.tracker.onDeviceMessage('tech-1', msg);
const ping = (where: { lat: number; lon: number }, extra: { acc?: number; ts?: number } = {}) =>
  dev({
    t: 'ping',
    seq: 0,
    ts: extra.ts ?? h.clock.now(),
    ...where,
    ...(extra.acc !== undefined ? { acc: extra.acc } : {}),
  });

async function alertsOf(kind: AlertKind): Promise<Alert[]> {
  return (await h.tracker.listAlerts()).filter((a) => a.kind === kind);
}
/** Alert pushes seen by the console for `kind` that were new alerts (first sight of an id). */
function raisedPushes(kind: AlertKind): Alert[] {
  const seen = new Set<string>();
  const out: Alert[] = [];
  for (const m of consoleLink.got) {
    if (m.t === 'alert' && m.alert.kind === kind && !seen.has(m.alert.id)) {
      seen.add(m.alert.id);
      out.push(m.alert);
    }
  }
  return out;
}

describe('late_departure', () => {
  test('fires once, LATE_DEPARTURE_MS after scheduledAt, with a notice to the technician', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    await h.advance(30 * MIN + 15 * MIN - 1);
    assert.equal((await alertsOf('late_departure')).length, 0);
    await h.advance(1);
    const [a] = await alertsOf('late_departure');
    assert.ok(a);
    assert.equal(a.order, 'o1');
    assert.equal(a.level, 1);
    assert.equal(a.state, 'open');
    assert.equal(a.ts, T0());
    assert.deepEqual(phone.got, [
      { t: 'notice', kind: 'late_departure', order: 'o1', msg: phone.got[0] && (phone.got[0] as { msg: string }).msg },
    ]);
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('late_departure')).length, 1);
    assert.equal(raisedPushes('late_departure').length, 1);
    assert.equal(h.archive.alertEvents.filter((e) => e.kind === 'late_departure').length, 1);
  });

  test('does not fire when the technician departs in time', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    await h.advance(44 * MIN);
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('late_departure')).length, 0);
    assert.equal(phone.got.length, 0);
  });

  test('does not fire for a cancelled order', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await h.tracker.cancelOrder('o1'));
    await h.advance(120 * MIN);
    assert.equal((await h.tracker.listAlerts()).length, 0);
  });
});

describe('late_arrival', () => {
  test('fires once at scheduledAt + LATE_ARRIVAL_MS when not arrived', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    await h.advance(45 * MIN - 1);
    assert.equal((await alertsOf('late_arrival')).length, 0);
    await h.advance(1);
    assert.equal((await alertsOf('late_arrival')).length, 1);
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('late_arrival')).length, 1);
  });

  test('does not fire when the technician checks in in time', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    await h.advance(40 * MIN);
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...CUSTOMER }));
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('late_arrival')).length, 0);
  });

  test('is predicted early from a ping too far away to make it', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    // 45 minutes at 8.3 m/s is about 22.4 km: 10 km is reachable, 30 km is not.
    ok(await ping(north(10_000)));
    await h.tracker.settle();
    assert.equal((await alertsOf('late_arrival')).length, 0);
    await h.advance(1000);
    ok(await ping(north(30_000)));
    await h.tracker.settle();
    const [a] = await alertsOf('late_arrival');
    assert.ok(a);
    assert.equal(a.detail?.predicted, true);
    assert.equal(a.ts, T0());
    // Predicted once; the deadline later does not raise it a second time.
    await h.advance(1000);
    ok(await ping(north(29_000)));
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('late_arrival')).length, 1);
  });

  test('pings that arrive in time never reach the order: its actor stays passivated', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0() + 120 * MIN })));
    await h.advance(15 * MIN);
    assert.equal(h.tracker.orders.isLive('o1'), false, 'an assigned order with nothing to do is passivated');
    for (let k = 0; k < 20; k++) {
      ok(await ping(north(1000 + k)));
      await h.advance(1000);
    }
    await h.tracker.settle();
    assert.equal(h.tracker.orders.isLive('o1'), false, 'twenty pings in time woke nothing');
    // One that cannot make it is the order's business again: predicted, raised, and then no more.
    ok(await ping(north(60_000)));
    await h.tracker.settle();
    assert.equal((await alertsOf('late_arrival')).length, 1);
    const [a] = await alertsOf('late_arrival');
    assert.equal(a?.lat, north(60_000).lat, 'placed at the fix that predicted it');
    await h.advance(15 * MIN);
    assert.equal(h.tracker.orders.isLive('o1'), false);
    ok(await ping(north(61_000)));
    await h.tracker.settle();
    assert.equal(h.tracker.orders.isLive('o1'), false, 'after the prediction fired, later pings do not wake it');
  });

  test('an inaccurate ping predicts nothing', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await ping(north(30_000), { acc: 1000 }));
    await h.tracker.settle();
    assert.equal((await alertsOf('late_arrival')).length, 0);
  });
});

describe('overtime', () => {
  test('fires once when in_service longer than durationMin * OVERTIME_FACTOR', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0(), durationMin: 60 })));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: T0(), ...CUSTOMER }));
    ok(await dev({ t: 'start', seq: 3, order: 'o1' }));
    ok(await ping(CUSTOMER));
    // Keep pinging so that offline stays quiet: only overtime is under test.
    for (let i = 0; i < 89; i++) {
      await h.advance(MIN);
      ok(await ping(CUSTOMER));
    }
    await h.advance(MIN - 1);
    assert.equal((await alertsOf('overtime')).length, 0);
    await h.advance(1);
    assert.equal((await alertsOf('overtime')).length, 1);
    ok(await ping(CUSTOMER));
    await h.advance(MIN);
    assert.equal((await alertsOf('overtime')).length, 1);
    assert.deepEqual(
      (await h.tracker.listAlerts()).map((a) => a.kind),
      ['overtime'],
    );
  });

  test('does not fire when completed in time', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0(), durationMin: 10 })));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: T0(), ...CUSTOMER }));
    ok(await dev({ t: 'start', seq: 3, order: 'o1' }));
    await h.advance(14 * MIN);
    ok(await dev({ t: 'complete', seq: 4, order: 'o1' }));
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('overtime')).length, 0);
  });
});

describe('offline', () => {
  async function departed() {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await ping(north(1000)));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    await h.tracker.settle();
  }

  test('fires once after OFFLINE_MS without a ping, and a ping marks it cleared', async () => {
    await departed();
    await h.advance(5 * MIN - 1);
    assert.equal((await alertsOf('offline')).length, 0);
    await h.advance(1);
    const [a] = await alertsOf('offline');
    assert.ok(a);
    assert.equal(a.order, 'o1');
    await h.advance(20 * MIN);
    assert.equal((await alertsOf('offline')).length, 1);
    ok(await ping(north(900)));
    await h.tracker.settle();
    const [b] = await alertsOf('offline');
    assert.equal(b?.state, 'open', 'not auto-resolved: the operator decides');
    assert.equal(b?.detail?.clearedAt, h.clock.now());
    // A new silence is a new cause: a second alert.
    await h.advance(5 * MIN);
    assert.equal((await alertsOf('offline')).length, 2);
  });

  test('a batch (the backlog of a phone that was out of coverage) also ends the silence', async () => {
    await departed();
    await h.advance(6 * MIN);
    assert.equal((await alertsOf('offline')).length, 1);
    const t = h.clock.now();
    ok(await dev({ t: 'batch', seq: 5, pts: [[t - 60_000, north(800).lat, CUSTOMER.lon]] }));
    await h.tracker.settle();
    assert.equal((await alertsOf('offline'))[0]?.detail?.clearedAt, t);
    await h.advance(4 * MIN);
    assert.equal((await alertsOf('offline')).length, 1, 'the silence restarted at the batch');
  });

  test('does not fire while pings keep coming', async () => {
    await departed();
    for (let i = 0; i < 10; i++) {
      await h.advance(4 * MIN);
      ok(await ping(north(900 - i * 50)));
    }
    assert.equal((await alertsOf('offline')).length, 0);
  });

  test('an assigned order alone does not count as active', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0() + 10 * 60 * MIN })));
    ok(await ping(north(1000)));
    await h.advance(60 * MIN);
    assert.equal((await alertsOf('offline')).length, 0);
  });

  test('does not fire once the order is completed', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0() })));
    ok(await ping(CUSTOMER));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: T0(), ...CUSTOMER }));
    ok(await dev({ t: 'start', seq: 3, order: 'o1' }));
    await h.advance(4 * MIN);
    ok(await dev({ t: 'complete', seq: 4, order: 'o1' }));
    await h.advance(30 * MIN);
    assert.equal((await alertsOf('offline')).length, 0);
  });
});

describe('geofence_exit', () => {
  async function inService() {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0(), durationMin: 600 })));
    ok(await ping(CUSTOMER));
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: T0(), ...CUSTOMER }));
    ok(await dev({ t: 'start', seq: 3, order: 'o1' }));
    await h.tracker.settle();
  }

  test('fires on the second clearly-outside fix, once per exit', async () => {
    await inService();
    await h.advance(10_000);
    ok(await ping(north(200)));
    await h.tracker.settle();
    assert.equal((await alertsOf('geofence_exit')).length, 0);
    await h.advance(10_000);
    ok(await ping(north(210)));
    await h.tracker.settle();
    assert.equal((await alertsOf('geofence_exit')).length, 1);
    await h.advance(10_000);
    ok(await ping(north(220)));
    await h.tracker.settle();
    assert.equal((await alertsOf('geofence_exit')).length, 1);
    // Back inside re-arms; leaving again is a new exit.
    await h.advance(10_000);
    ok(await ping(CUSTOMER));
    await h.advance(10_000);
    ok(await ping(north(200)));
    await h.advance(10_000);
    ok(await ping(north(200.5)));
    await h.tracker.settle();
    assert.equal((await alertsOf('geofence_exit')).length, 2);
  });

  test('fires after the dwell time outside with a single fix', async () => {
    await inService();
    await h.advance(10_000);
    ok(await ping(north(200)));
    await h.advance(2 * MIN - 1);
    assert.equal((await alertsOf('geofence_exit')).length, 0);
    await h.advance(1);
    assert.equal((await alertsOf('geofence_exit')).length, 1);
  });

  test('does not fire when the technician comes back before a second fix or the dwell', async () => {
    await inService();
    await h.advance(10_000);
    ok(await ping(north(200)));
    await h.advance(30_000);
    ok(await ping(north(5)));
    await h.advance(10 * MIN);
    assert.equal((await alertsOf('geofence_exit')).length, 0);
  });

  test('inaccurate fixes never decide an exit', async () => {
    await inService();
    for (let i = 0; i < 3; i++) {
      await h.advance(10_000);
      ok(await ping(north(2000), { acc: 500 }));
    }
    await h.advance(10 * MIN);
    assert.equal((await alertsOf('geofence_exit')).length, 0);
  });

  test('not watched before in_service', async () => {
    ok(await h.tracker.putOrder('o1', order({ scheduledAt: T0() + 60 * MIN })));
    ok(await ping(north(200)));
    await h.advance(10_000);
    ok(await ping(north(300)));
    await h.advance(3 * MIN);
    assert.equal((await alertsOf('geofence_exit')).length, 0);
  });
});

describe('implausible_move', () => {
  test('fires once when two live pings imply more than IMPLAUSIBLE_SPEED_MPS', async () => {
    ok(await ping(CUSTOMER));
    await h.advance(10_000);
    ok(await ping(north(500))); // 50 m/s: plausible
    await h.tracker.settle();
    assert.equal((await alertsOf('implausible_move')).length, 0);
    await h.advance(10_000);
    ok(await ping(north(1500))); // 100 m/s
    await h.tracker.settle();
    const [a] = await alertsOf('implausible_move');
    assert.ok(a);
    assert.equal(a.detail?.speed, 100);
    await h.advance(10_000);
    ok(await ping(north(5000)));
    await h.tracker.settle();
    assert.equal((await alertsOf('implausible_move')).length, 1, 'one alert while unresolved');
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 1, id: a.id }));
    await h.advance(10_000);
    ok(await ping(north(10_000)));
    await h.tracker.settle();
    assert.equal((await alertsOf('implausible_move')).length, 2);
  });

  test('inaccurate and late fixes never raise it', async () => {
    ok(await ping(CUSTOMER));
    await h.advance(10_000);
    ok(await ping(north(5000), { acc: 1000 }));
    // A late point far away: archived, not compared.
    ok(await ping(north(50_000), { ts: h.clock.now() - 5000 }));
    await h.tracker.settle();
    assert.equal((await alertsOf('implausible_move')).length, 0);
  });
});

describe('operators', () => {
  async function anAlert(): Promise<Alert> {
    ok(await h.tracker.putOrder('o1', order()));
    await h.advance(45 * MIN);
    const [a] = await alertsOf('late_departure');
    assert.ok(a);
    return a;
  }

  test('ack, ack again (idempotent), resolve, then ack is a conflict', async () => {
    const a = await anAlert();
    const pushesBefore = consoleLink.got.length;
    ok(await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id: a.id }));
    ok(await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 2, id: a.id }));
    assert.equal(consoleLink.got.length, pushesBefore + 1, 'the second ack changed nothing');
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 3, id: a.id, note: 'called them' }));
    const [r] = await alertsOf('late_departure');
    assert.equal(r?.state, 'resolved');
    assert.equal(r?.detail?.note, 'called them');
    const out = await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 4, id: a.id });
    assert.equal(!out.ok && out.code, 'conflict');
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 5, id: a.id }));
    assert.deepEqual(
      (await h.tracker.listAlerts('open')).map((x) => x.kind),
      ['late_arrival'],
    );
    assert.deepEqual(
      (await h.tracker.listAlerts('resolved')).map((x) => x.id),
      [a.id],
    );
  });

  test('unknown ids are not_found', async () => {
    const out = await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id: 'a-nope' });
    assert.equal(!out.ok && out.code, 'not_found');
  });

  test('ack refused with unavailable when the spool is full, nothing changes', async () => {
    const a = await anAlert();
    h.archive.full = true;
    const out = await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id: a.id });
    assert.equal(!out.ok && out.code, 'unavailable');
    assert.equal((await alertsOf('late_departure'))[0]?.state, 'open');
  });

  test('a console attached later gets the snapshot of unresolved alerts, then changes', async () => {
    const a = await anAlert();
    const late = new Collector<SafetyPush>();
    h.tracker.attachSafety('op2', late);
    assert.equal(late.got.length, 1);
    // late_arrival falls due at the same moment (both thresholds default to 15 minutes).
    const open = await h.tracker.listAlerts('open');
    assert.deepEqual(open.map((x) => x.kind).sort(), ['late_arrival', 'late_departure']);
    assert.deepEqual(late.got[0], { t: 'snapshot', alerts: open });
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 1, id: a.id }));
    assert.equal(late.got.length, 2);
    assert.equal(late.got[1]?.t === 'alert' && late.got[1].alert.state, 'resolved');
    const third = new Collector<SafetyPush>();
    h.tracker.attachSafety('op3', third);
    assert.deepEqual(third.got, [{ t: 'snapshot', alerts: await h.tracker.listAlerts('open') }]);
    assert.ok(third.got[0]?.t === 'snapshot' && third.got[0].alerts.every((x) => x.id !== a.id));
    h.tracker.detachSafety(late);
    ok(await h.tracker.putOrder('o2', order()));
    await h.advance(45 * MIN);
    assert.equal(late.got.length, 2, 'detached consoles hear nothing');
  });

  test('listAlerts is newest first', async () => {
    ok(await h.tracker.putOrder('o1', order()));
    ok(await h.tracker.putOrder('o2', order({ scheduledAt: T0() + 40 * MIN })));
    await h.advance(60 * MIN);
    const list = await h.tracker.listAlerts('open');
    assert.ok(list.length >= 2);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.ts >= list[i]!.ts);
    assert.equal(list[0]?.order, 'o2');
  });
});

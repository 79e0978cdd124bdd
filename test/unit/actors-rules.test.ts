/**
 * The pure rules of the actors, as tables: the order state machine (every state x
 * command), the SOS ladder, position classification and the duplicate window, the
 * order deadlines and the late-arrival prediction, and recovery from journal records.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { incidentDeadline } from '../../src/actors/incident-actor.js';
import { nextState, type OrderCommand } from '../../src/actors/order-machine.js';
import {
  deadlineOf,
  dueOrderAlerts,
  impliedSpeed,
  nextOrderDeadline,
  type OrderTimings,
  predictLateArrival,
} from '../../src/actors/order-rules.js';
import { classifyFix, hasTs, rememberTs } from '../../src/actors/position-filter.js';
import type { OrderRecord } from '../../src/actors/records.js';
import { recover } from '../../src/actors/recovery.js';
import { sosRung } from '../../src/actors/sos-ladder.js';
import { initialExitWatch } from '../../src/geofence/index.js';
import type { Alert, OrderState } from '../../src/protocol.js';

const MIN = 60_000;

describe('order state machine', () => {
  const table: Array<[OrderState, OrderCommand, OrderState | null]> = [
    ['assigned', 'depart', 'departed'],
    ['assigned', 'checkin', null],
    ['assigned', 'start', null],
    ['assigned', 'complete', null],
    ['assigned', 'cancel', 'cancelled'],
    ['departed', 'depart', null],
    ['departed', 'checkin', 'arrived'],
    ['departed', 'start', null],
    ['departed', 'complete', null],
    ['departed', 'cancel', 'cancelled'],
    ['arrived', 'depart', null],
    ['arrived', 'checkin', null],
    ['arrived', 'start', 'in_service'],
    ['arrived', 'complete', null],
    ['arrived', 'cancel', 'cancelled'],
    ['in_service', 'depart', null],
    ['in_service', 'checkin', null],
    ['in_service', 'start', null],
    ['in_service', 'complete', 'completed'],
    ['in_service', 'cancel', 'cancelled'],
    ['completed', 'depart', null],
    ['completed', 'checkin', null],
    ['completed', 'start', null],
    ['completed', 'complete', null],
    ['completed', 'cancel', null],
    ['cancelled', 'depart', null],
    ['cancelled', 'checkin', null],
    ['cancelled', 'start', null],
    ['cancelled', 'complete', null],
    ['cancelled', 'cancel', null],
  ];
  for (const [from, cmd, to] of table) {
    test(`${from} --${cmd}--> ${to ?? 'conflict'}`, () => {
      assert.equal(nextState(from, cmd), to);
    });
  }
});

describe('SOS ladder', () => {
  const t = { SOS_LEVEL2_MS: 60_000, SOS_LEVEL3_MS: 5 * MIN, SOS_SLA_MS: 15 * MIN };
  const fresh = { level: 1, slaBreached: false };
  const table: Array<[number, boolean, number, boolean, number | null]> = [
    // age, acknowledged, level, slaBreached, next (relative to raise)
    [0, false, 1, false, 60_000],
    [59_999, false, 1, false, 60_000],
    [60_000, false, 2, false, 5 * MIN],
    [5 * MIN - 1, false, 2, false, 5 * MIN],
    [5 * MIN, false, 3, false, 15 * MIN],
    [15 * MIN - 1, false, 3, false, 15 * MIN],
    [15 * MIN, false, 3, true, null],
    [99 * MIN, false, 3, true, null],
    [99 * MIN, true, 1, false, null],
  ];
  for (const [age, acked, level, sla, next] of table) {
    test(`age ${age} ms, acknowledged ${acked}: level ${level}, slaBreached ${sla}`, () => {
      const r = sosRung(1000, acked, fresh, 1000 + age, t);
      assert.deepEqual(r, { level, slaBreached: sla, next: next === null ? null : 1000 + next });
    });
  }
  test('an acknowledged incident keeps the rung it reached', () => {
    assert.deepEqual(sosRung(0, true, { level: 2, slaBreached: false }, 99 * MIN, t), {
      level: 2,
      slaBreached: false,
      next: null,
    });
  });
  test('never goes down', () => {
    assert.equal(sosRung(0, false, { level: 3, slaBreached: false }, 0, t).level, 3);
  });

  describe('when an incident next needs looking at', () => {
    const sos = (level: number, slaBreached: boolean, state: Alert['state'] = 'open'): Alert => ({
      id: 'sos-1',
      kind: 'sos',
      level,
      state,
      tech: 'tech-1',
      ts: 0,
      detail: slaBreached ? { slaBreached: true } : {},
    });
    const table: Array<[string, Alert, number, number | null]> = [
      ['on its rung: the next threshold', sos(2, false), 2 * MIN, 5 * MIN],
      ['on the last rung: never', sos(3, true), 20 * MIN, null],
      // A slow durable write applied level 3 after the SLA had passed: due now, not never.
      ['level 3 applied after the SLA passed: now', sos(3, false), 16 * MIN, 16 * MIN],
      ['two rungs behind: now', sos(1, false), 6 * MIN, 6 * MIN],
      ['acknowledged: never', sos(2, false, 'acknowledged'), 16 * MIN, null],
    ];
    for (const [name, alert, now, due] of table) {
      test(name, () => assert.equal(incidentDeadline(alert, now, t), due));
    }
  });
});

describe('position classification', () => {
  const pos = { ts: 1000, lat: 1, lon: 1, acc: null, spd: null };
  const table: Array<[string, Parameters<typeof classifyFix>, ReturnType<typeof classifyFix>]> = [
    ['first fix', [null, [], 5, 1, 1], 'live'],
    ['null island', [pos, [1000], 2000, 0, 0], 'ignore'],
    ['null island first', [null, [], 2000, 0, 0], 'ignore'],
    ['lat 0 alone is fine', [pos, [1000], 2000, 0, 1], 'live'],
    ['newer', [pos, [1000], 1001, 1, 1], 'live'],
    ['same ts as live', [pos, [1000], 1000, 2, 2], 'duplicate'],
    ['older, seen', [pos, [500, 1000], 500, 1, 1], 'duplicate'],
    ['older, unseen', [pos, [500, 1000], 700, 1, 1], 'late'],
  ];
  for (const [name, args, fate] of table) {
    test(name, () => assert.equal(classifyFix(...args), fate));
  }

  test('the window stays sorted, unique and bounded', () => {
    const w: number[] = [];
    for (const ts of [5, 1, 3, 3, 9, 7, 2]) rememberTs(w, ts, 5);
    assert.deepEqual(w, [2, 3, 5, 7, 9]);
    rememberTs(w, 10, 5);
    assert.deepEqual(w, [3, 5, 7, 9, 10]);
    assert.equal(hasTs(w, 7), true);
    assert.equal(hasTs(w, 2), false);
    rememberTs(w, 1, 5);
    assert.deepEqual(w, [3, 5, 7, 9, 10], 'older than the window: not kept');
  });
});

describe('order rules', () => {
  const t: OrderTimings = {
    LATE_DEPARTURE_MS: 15 * MIN,
    LATE_ARRIVAL_MS: 15 * MIN,
    OVERTIME_FACTOR: 1.5,
    TRAVEL_SPEED_MPS: 10,
  };
  const base: OrderRecord = {
    id: 'o',
    tech: 't',
    lat: 0.5,
    lon: 0.5,
    radius: 50,
    scheduledAt: 100 * MIN,
    durationMin: 60,
    state: 'assigned',
    timeline: [],
    inServiceAt: null,
    fired: [],
    watch: initialExitWatch,
    dwellAt: null,
  };
  const table: Array<[string, Partial<OrderRecord>, number | null, number | null, number | null]> = [
    // name, overrides, late_departure at, late_arrival at, overtime at
    ['assigned', {}, 115 * MIN, 115 * MIN, null],
    ['departed', { state: 'departed' }, null, 115 * MIN, null],
    ['arrived', { state: 'arrived' }, null, null, null],
    ['in_service', { state: 'in_service', inServiceAt: 120 * MIN }, null, null, 210 * MIN],
    ['completed', { state: 'completed', inServiceAt: 120 * MIN }, null, null, null],
  ];
  for (const [name, over, ld, la, ot] of table) {
    test(`deadlines when ${name}`, () => {
      const o = { ...base, ...over };
      assert.equal(deadlineOf(o, 'late_departure', t), ld);
      assert.equal(deadlineOf(o, 'late_arrival', t), la);
      assert.equal(deadlineOf(o, 'overtime', t), ot);
    });
  }
  test('due alerts skip fired ones and future ones; next deadline includes the dwell', () => {
    assert.deepEqual(dueOrderAlerts(base, 115 * MIN - 1, t), []);
    assert.deepEqual(dueOrderAlerts(base, 115 * MIN, t), ['late_departure', 'late_arrival']);
    assert.deepEqual(dueOrderAlerts({ ...base, fired: ['late_departure'] }, 200 * MIN, t), ['late_arrival']);
    assert.equal(nextOrderDeadline({ ...base, fired: ['late_departure', 'late_arrival'] }, t), null);
    assert.equal(nextOrderDeadline({ ...base, dwellAt: 7 }, t), 7);
  });
  test('late arrival prediction: reachable or not at TRAVEL_SPEED_MPS', () => {
    // 0.1 degree of latitude is about 11.1 km: 18.5 minutes at 10 m/s.
    // From 90 min: arrives at about 108.4 min, before the 115 min limit.
    const near = predictLateArrival({ ...base, lat: 0.6, lon: 0.5 }, 0.5, 0.5, 90 * MIN, t);
    assert.equal(near, null);
    // From 100 min: about 118.4 min, too late.
    const far = predictLateArrival({ ...base, lat: 0.6, lon: 0.5 }, 0.5, 0.5, 100 * MIN, t);
    assert.ok(far !== null && far.eta > 115 * MIN && Math.abs(far.dist - 11_119.5) < 1, JSON.stringify(far));
    assert.equal(predictLateArrival({ ...base, state: 'arrived' }, 10, 10, 0, t), null);
    assert.equal(predictLateArrival({ ...base, fired: ['late_arrival'] }, 10, 10, 0, t), null);
  });
  test('implied speed', () => {
    assert.equal(impliedSpeed({ ts: 0, lat: 0, lon: 0 }, { ts: 0, lat: 0, lon: 0 }), 0);
    assert.equal(impliedSpeed({ ts: 0, lat: 0, lon: 0 }, { ts: 0, lat: 1, lon: 0 }), Number.POSITIVE_INFINITY);
    const v = impliedSpeed({ ts: 0, lat: 0, lon: 0 }, { ts: 1000_000, lat: 1, lon: 0 });
    assert.ok(Math.abs(v - 111.19) < 0.01, String(v));
  });
});

describe('recovery from journal records', () => {
  const order: OrderRecord = {
    id: 'o1',
    tech: 't1',
    lat: 1,
    lon: 1,
    radius: 50,
    scheduledAt: 0,
    durationMin: 10,
    state: 'departed',
    timeline: [],
    inServiceAt: null,
    fired: [],
    watch: initialExitWatch,
    dwellAt: null,
  };
  test('last record per key, fired marks from alerts, technicians from orders and positions', () => {
    const r = recover(
      [
        { k: 'o', o: { ...order, state: 'assigned' } },
        { k: 'o', o: order },
        { k: 'p', id: 't1', pos: { ts: 5, lat: 1, lon: 2, acc: null, spd: null }, quietSince: 50 },
        { k: 'p', id: 't2', pos: { ts: 6, lat: 1, lon: 2, acc: null, spd: null }, quietSince: 500 },
        { k: 'a', a: { id: 'a1', kind: 'late_arrival', level: 1, state: 'open', tech: 't1', order: 'o1', ts: 9 } },
        { k: 'a', a: { id: 'a2', kind: 'sos', level: 2, state: 'open', tech: 't2', ts: 9 } },
        { k: 'a', a: { id: 'a3', kind: 'sos', level: 1, state: 'resolved', tech: 't2', ts: 9 } },
        { k: 'a', a: { id: 'a4', kind: 'offline', level: 1, state: 'open', tech: 't1', ts: 9 } },
      ],
      100,
    );
    assert.deepEqual(r.orders.get('o1')?.fired, ['late_arrival']);
    const t1 = r.techs.get('t1');
    assert.deepEqual(t1?.orders, [{ id: 'o1', state: 'departed', arrival: null, approach: true }]);
    assert.equal(t1?.quietSince, 100, 'silence counted from the restart');
    assert.equal(t1?.offlineAlert, 'a4');
    assert.deepEqual(t1?.recent, [5]);
    assert.equal(r.techs.get('t2')?.quietSince, 500);
    assert.deepEqual(
      r.incidents.map((a) => a.id),
      ['a2'],
    );
  });
});

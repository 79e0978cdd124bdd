/**
 * Orders through the Tracker: the state machine end to end, check-in against the
 * geofence, ownership (forbidden), unknown orders, the update policy, archive and
 * timeline records, and refusals when the archive spool is full.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { OrderInput } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { type Harness, harness, ok } from '../support/memory-archive.js';

const CUSTOMER = PLACES.paris;
/** A point `m` metres north of the customer (1 degree of latitude is about 111195 m on turf's sphere). */
const north = (m: number) => ({ lat: CUSTOMER.lat + m / 111_194.93, lon: CUSTOMER.lon });

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.dispose();
});

function order(tech = 'tech-1', extra: Partial<OrderInput> = {}): OrderInput {
  return {
    technician: tech,
    ...CUSTOMER,
    radius: 50,
    scheduledAt: h.clock.now() + 3_600_000,
    durationMin: 60,
    ...extra,
  };
}

async function put(id: string, input = order()) {
  return ok(await h.tracker.putOrder(id, input));
}

const dev = (tech: string, msg: Parameters<Harness['tracker']['onDeviceMessage']>[1]) =>
  h.tracker.onDeviceMessage(tech, msg);

async function toState(id: string, state: 'departed' | 'arrived' | 'in_service' | 'completed', tech = 'tech-1') {
  ok(await dev(tech, { t: 'depart', seq: 1, order: id }));
  if (state === 'departed') return;
  ok(await dev(tech, { t: 'checkin', seq: 2, order: id, ts: h.clock.now(), ...CUSTOMER }));
  if (state === 'arrived') return;
  ok(await dev(tech, { t: 'start', seq: 3, order: id }));
  if (state === 'in_service') return;
  ok(await dev(tech, { t: 'complete', seq: 4, order: id }));
}

describe('order state machine through the tracker', () => {
  test('happy path: every transition on the timeline and in the archive', async () => {
    const view = await put('o1');
    assert.equal(view.state, 'assigned');
    assert.equal(view.radius, 50);
    await toState('o1', 'completed');
    const got = ok(await h.tracker.getOrder('o1'));
    assert.deepEqual(
      got.timeline.map((e) => e.state),
      ['assigned', 'departed', 'arrived', 'in_service', 'completed'],
    );
    const arrived = got.timeline[2]!;
    assert.equal(arrived.lat, CUSTOMER.lat);
    assert.equal(arrived.lon, CUSTOMER.lon);
    assert.deepEqual(
      (await h.archive.orderEvents('o1')).map((e) => e.state),
      ['assigned', 'departed', 'arrived', 'in_service', 'completed'],
    );
  });

  const commands = ['depart', 'checkin', 'start', 'complete'] as const;
  const legal: Record<string, string> = {
    assigned: 'depart',
    departed: 'checkin',
    arrived: 'start',
    in_service: 'complete',
  };
  for (const from of ['assigned', 'departed', 'arrived', 'in_service', 'completed', 'cancelled'] as const) {
    for (const cmd of commands) {
      if (legal[from] === cmd) continue;
      test(`${cmd} from ${from} is a conflict and changes nothing`, async () => {
        await put('o1');
        if (from === 'cancelled') ok(await h.tracker.cancelOrder('o1'));
        else if (from !== 'assigned') await toState('o1', from);
        const before = ok(await h.tracker.getOrder('o1'));
        const msg =
          cmd === 'checkin'
            ? ({ t: 'checkin', seq: 9, order: 'o1', ts: h.clock.now(), ...CUSTOMER } as const)
            : ({ t: cmd, seq: 9, order: 'o1' } as const);
        const out = await dev('tech-1', msg);
        assert.equal(out.ok, false);
        assert.equal(!out.ok && out.code, 'conflict');
        assert.deepEqual(ok(await h.tracker.getOrder('o1')), before);
      });
    }
  }

  for (const from of ['assigned', 'departed', 'arrived', 'in_service'] as const) {
    test(`cancel from ${from}`, async () => {
      await put('o1');
      if (from !== 'assigned') await toState('o1', from);
      const view = ok(await h.tracker.cancelOrder('o1'));
      assert.equal(view.state, 'cancelled');
      assert.equal(view.timeline.at(-1)?.state, 'cancelled');
      // Idempotent: cancelling again answers the same order.
      assert.equal(ok(await h.tracker.cancelOrder('o1')).state, 'cancelled');
    });
  }

  test('cancel of a completed order is a conflict', async () => {
    await put('o1');
    await toState('o1', 'completed');
    const out = await h.tracker.cancelOrder('o1');
    assert.equal(!out.ok && out.code, 'conflict');
  });

  test('unknown orders are not_found for dispatch, and look like foreign ones to a device', async () => {
    await put('oB', order('bob'));
    const out = await dev('tech-1', { t: 'depart', seq: 1, order: 'nope' });
    const foreign = await dev('tech-1', { t: 'depart', seq: 1, order: 'oB' });
    assert.equal(!out.ok && out.code, 'forbidden');
    assert.equal(!foreign.ok && foreign.code, 'forbidden');
    assert.equal(!out.ok && out.msg.replace('nope', 'X'), !foreign.ok && foreign.msg.replace('oB', 'X'));
    assert.equal((await h.tracker.getOrder('nope')).ok, false);
    const c = await h.tracker.cancelOrder('nope');
    assert.equal(!c.ok && c.code, 'not_found');
  });

  test("two technicians cannot touch each other's orders", async () => {
    await put('oA', order('alice'));
    await put('oB', order('bob'));
    for (const [tech, id] of [
      ['alice', 'oB'],
      ['bob', 'oA'],
    ] as const) {
      const out = await dev(tech, { t: 'depart', seq: 1, order: id });
      assert.equal(!out.ok && out.code, 'forbidden');
    }
    await toState('oA', 'arrived', 'alice');
    const out = await dev('bob', { t: 'start', seq: 1, order: 'oA' });
    assert.equal(!out.ok && out.code, 'forbidden');
    assert.equal(ok(await h.tracker.getOrder('oA')).state, 'arrived');
    assert.equal(ok(await h.tracker.getOrder('oB')).state, 'assigned');
  });

  test('depart with a ts puts that time on the timeline', async () => {
    await put('o1');
    const ts = h.clock.now() - 30_000;
    ok(await dev('tech-1', { t: 'depart', seq: 1, order: 'o1', ts }));
    assert.equal(ok(await h.tracker.getOrder('o1')).timeline[1]?.ts, ts);
  });
});

describe('check-in geofence', () => {
  beforeEach(async () => {
    await put('o1');
    ok(await dev('tech-1', { t: 'depart', seq: 1, order: 'o1' }));
  });

  test('inside: acked with the distance', async () => {
    const out = ok(await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...north(20) }));
    assert.ok(typeof out.dist === 'number' && Math.abs(out.dist - 20) < 0.2, `dist ${out.dist}`);
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'arrived');
  });

  test('exactly on the edge counts as inside', async () => {
    const out = await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...north(50), acc: 0 });
    assert.equal(out.ok, true, JSON.stringify(out));
  });

  test('outside: outside_geofence with dist and radius, nothing changes', async () => {
    const out = await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...north(300) });
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.equal(out.code, 'outside_geofence');
    assert.equal(out.extras?.radius, 50);
    assert.ok(Math.abs((out.extras?.dist as number) - 300) < 0.5);
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'departed');
  });

  test('poor accuracy never checks in, even at the door', async () => {
    const out = await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...CUSTOMER, acc: 500 });
    assert.equal(!out.ok && out.code, 'outside_geofence');
    assert.equal(!out.ok && out.extras?.reason, 'poor_accuracy');
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'departed');
  });

  test('accuracy widens the fence at most by its radius', async () => {
    const near = await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...north(80), acc: 40 });
    assert.equal(near.ok, true);
  });
});

describe('order updates', () => {
  test('an assigned order may change technician; both technicians learn it', async () => {
    await put('o1', order('alice'));
    const v = await put('o1', order('bob', { durationMin: 30 }));
    assert.equal(v.technician, 'bob');
    assert.equal(v.durationMin, 30);
    assert.equal(v.timeline.length, 1);
    const out = await dev('alice', { t: 'depart', seq: 1, order: 'o1' });
    assert.equal(!out.ok && out.code, 'forbidden');
    ok(await dev('bob', { t: 'depart', seq: 1, order: 'o1' }));
    await h.tracker.settle();
    assert.equal(ok(await h.tracker.getTechnician('bob')).activeOrder, 'o1');
  });

  test('an active order keeps its state; its technician cannot change', async () => {
    await put('o1');
    await toState('o1', 'arrived');
    const v = await put('o1', order('tech-1', { durationMin: 90 }));
    assert.equal(v.state, 'arrived');
    assert.equal(v.durationMin, 90);
    const out = await h.tracker.putOrder('o1', order('someone-else'));
    assert.equal(!out.ok && out.code, 'conflict');
  });

  test('completed and cancelled orders cannot be updated', async () => {
    await put('o1');
    await toState('o1', 'completed');
    const out = await h.tracker.putOrder('o1', order());
    assert.equal(!out.ok && out.code, 'conflict');
    await put('o2');
    ok(await h.tracker.cancelOrder('o2'));
    const out2 = await h.tracker.putOrder('o2', order());
    assert.equal(!out2.ok && out2.code, 'conflict');
  });

  test('a bad polygon is a bad_request and creates nothing', async () => {
    const out = await h.tracker.putOrder('o1', order('tech-1', { polygon: [[2.35, 48.85]] }));
    assert.equal(!out.ok && out.code, 'bad_request');
    assert.equal((await h.tracker.getOrder('o1')).ok, false);
  });
});

describe('spool full', () => {
  test('transitions and pings are refused with unavailable and change nothing', async () => {
    await put('o1');
    h.archive.full = true;
    const out = await dev('tech-1', { t: 'depart', seq: 1, order: 'o1' });
    assert.equal(!out.ok && out.code, 'unavailable');
    assert.equal(ok(await h.tracker.getOrder('o1')).state, 'assigned');
    const p = await dev('tech-1', { t: 'ping', seq: 2, ts: h.clock.now(), ...CUSTOMER });
    assert.equal(!p.ok && p.code, 'unavailable');
    const c = await h.tracker.putOrder('o2', order());
    assert.equal(!c.ok && c.code, 'unavailable');
    assert.equal((await h.tracker.getOrder('o2')).ok, false);
    h.archive.full = false;
    ok(await dev('tech-1', { t: 'depart', seq: 3, order: 'o1' }));
  });
});

describe('order actors in memory', () => {
  test('an order not under way is stopped as soon as it is idle, and answers from its record after', async () => {
    await put('o1');
    await h.tracker.settle();
    assert.equal(h.tracker.orders.isLive('o1'), false, 'assigned: stopped right after its PUT');
    await toState('o1', 'departed');
    await h.tracker.settle();
    assert.equal(h.tracker.orders.isLive('o1'), true, 'under way: stays in memory');
    ok(await dev('tech-1', { t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...CUSTOMER }));
    ok(await dev('tech-1', { t: 'start', seq: 3, order: 'o1' }));
    ok(await dev('tech-1', { t: 'complete', seq: 4, order: 'o1' }));
    await h.tracker.settle();
    assert.equal(h.tracker.orders.isLive('o1'), false, 'completed: stopped again');
    const view = ok(await h.tracker.getOrder('o1'));
    assert.equal(view.state, 'completed');
    assert.deepEqual(
      view.timeline.map((e) => e.state),
      ['assigned', 'departed', 'arrived', 'in_service', 'completed'],
    );
  });
});

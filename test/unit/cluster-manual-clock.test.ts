/**
 * Lease, take-over and failover logic on a manual clock: three clustered nodes in one
 * process share the in-process twins of Redis (test/support/memory-cluster.ts), so the
 * lease's time to live, the sweeper, a forwarded request's timeout and the SOS ladder
 * run in milliseconds. What only real processes can show (kill -9, real Redis, the
 * measured failover time) stays in cluster-failover.test.ts and erase-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ClusteredTracker } from '../../src/cluster/clustered-tracker.js';
import type { Alert } from '../../src/protocol.js';
import { LEASE_TTL_MS } from '../../src/shared/leases.js';
import { FAILOVER_ENV, PLACES } from '../support/fixtures.js';
import { ok } from '../support/memory-archive.js';
import { MemoryCluster, RecordingConsole, RecordingDevice } from '../support/memory-cluster.js';

const ENV = FAILOVER_ENV;
const SITE = PLACES.paris;

let cluster: MemoryCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

async function runs(node: ClusteredTracker, tech: string, order?: string): Promise<boolean> {
  const t = await node.local.getTechnician(tech);
  return t.ok && (order === undefined || t.value.activeOrder === order);
}

describe('cluster on a manual clock', () => {
  it('a dead node keeps its technician until the lease runs out; then one node resumes the order and the SOS exactly once', async () => {
    cluster = await MemoryCluster.launch(3, ENV);
    const { clock } = cluster;
    const [a, b, c] = cluster.nodes as [ClusteredTracker, ClusteredTracker, ClusteredTracker];
    const tech = 'fo-tech';
    const consoleC = new RecordingConsole();
    c.attachSafety('op-c', consoleC);

    const onA = new RecordingDevice();
    a.attachDevice(tech, onA);
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: clock.now(), ...SITE }));
    await cluster.advanceUntil('A runs the technician', async () => {
      const seen = await c.getTechnician(tech);
      return seen.ok && seen.value.online;
    });
    ok(await c.putOrder('fo-order', { technician: tech, ...SITE, scheduledAt: clock.now(), durationMin: 30 }));
    ok(await a.onDeviceMessage(tech, { t: 'depart', seq: 2, order: 'fo-order' }));
    const sos = ok(await a.onDeviceMessage(tech, { t: 'sos', seq: 3, ts: clock.now(), ...SITE }));
    const incident = sos.incident as string;
    assert.ok(
      consoleC.alerts.some((x) => x.id === incident),
      'console on C sees the SOS',
    );

    await cluster.crash(a);
    const crashedAt = clock.now();
    const onB = new RecordingDevice();
    b.attachDevice(tech, onB);
    ok(await b.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: clock.now(), ...SITE }));
    // The lease is what keeps B out: not taken over while A's last renewal still holds.
    await cluster.advance(LEASE_TTL_MS - 3_000 - 500);
    assert.equal(await runs(b, tech, 'fo-order'), false, 'taken over before the lease could have run out');
    await cluster.advanceUntil('B runs the technician', () => runs(b, tech, 'fo-order'));
    assert.ok(clock.now() - crashedAt <= LEASE_TTL_MS + 1_000, 'taken over within a claim retry of the expiry');

    const order = ok(await c.getOrder('fo-order'));
    assert.equal(order.state, 'departed');
    const view = ok(await c.getTechnician(tech));
    assert.equal(view.online, true);

    const seen = consoleC.alerts;
    await cluster.advanceUntil('SOS level 3 on C', () => seen.some((x) => x.id === incident && x.level === 3));
    await cluster.advanceUntil('late_arrival on C', () =>
      seen.some((x) => x.kind === 'late_arrival' && x.order === 'fo-order'),
    );
    ok(await c.onSafetyMessage('op-c', { t: 'ack', seq: 1, id: incident }));
    await cluster.settle();
    assert.ok(
      onB.pushes.some((p) => p.t === 'sos_status' && p.state === 'acknowledged'),
      'device on B told acknowledged',
    );
    assert.ok(
      seen.some((x) => x.id === incident && x.state === 'acknowledged'),
      'ack seen on C',
    );

    // Exactly once, and nothing fires again later.
    await cluster.advance(120_000, 1_000);
    const rungs = seen.filter((x: Alert) => x.id === incident && x.state === 'open').map((x) => x.level);
    assert.deepEqual(rungs, [1, 2, 3]);
    assert.equal(seen.filter((x) => x.kind === 'late_arrival' && x.order === 'fo-order').length, 1);
  });

  it('an erase forwarded to a dead owner answers unavailable once its timeout passes, and succeeds once the lease ran out', async () => {
    cluster = await MemoryCluster.launch(2);
    const { clock, mirror } = cluster;
    const [a, b] = cluster.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'cl-erase';
    a.attachDevice(tech, new RecordingDevice());
    ok(await a.putOrder('cl-o1', { technician: tech, ...SITE, scheduledAt: clock.now(), durationMin: 30 }));
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: clock.now(), ...SITE }));
    ok(await a.onDeviceMessage(tech, { t: 'depart', seq: 2, order: 'cl-o1' }));
    ok(await a.onDeviceMessage(tech, { t: 'checkin', seq: 3, order: 'cl-o1', ts: clock.now(), ...SITE }));
    ok(await a.onDeviceMessage(tech, { t: 'start', seq: 4, order: 'cl-o1' }));
    ok(await a.onDeviceMessage(tech, { t: 'complete', seq: 5, order: 'cl-o1' }));
    await cluster.advanceUntil('the mirrored position', async () => (await mirror.load(tech)).position !== null);
    assert.equal(await mirror.techOf('cl-o1'), tech);

    await cluster.crash(a);
    // A died with the device attached: the shared index still has it.
    assert.deepEqual(
      (await b.nearby(SITE.lat, SITE.lon, 1000)).map((t) => t.id),
      [tech],
    );
    const first = b.eraseTechnician(tech);
    let answer: Awaited<typeof first> | undefined;
    void first.then((out) => (answer = out));
    await cluster.advanceUntil('the forwarded erase answers', () => answer !== undefined);
    assert.equal(answer?.ok, false);
    assert.equal(answer?.ok === false && answer.code, 'unavailable');

    await cluster.advance(LEASE_TTL_MS);
    const erased = ok(await b.eraseTechnician(tech));
    assert.equal(erased.id, tech);
    assert.equal(erased.erased.technician, true);
    assert.deepEqual(await b.nearby(SITE.lat, SITE.lon, 1000), []);
    assert.deepEqual(await mirror.load(tech), { orders: [], position: null });
    assert.equal(await mirror.techOf('cl-o1'), null);
    assert.deepEqual(await mirror.busy(), []);
    assert.equal((await b.getTechnician(tech)).ok, false);
  });
  it("an order of another node's technician is unavailable, not unknown, while its owner cannot be looked up", async () => {
    cluster = await MemoryCluster.launch(2, ENV);
    const { clock } = cluster;
    const [a, b] = cluster.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'ou-tech';
    a.attachDevice(tech, new RecordingDevice());
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: clock.now(), ...SITE }));
    await cluster.advanceUntil('A runs the technician', () => runs(a, tech));
    ok(await a.putOrder('ou-order', { technician: tech, ...SITE, scheduledAt: clock.now(), durationMin: 30 }));
    assert.equal(ok(await b.getOrder('ou-order')).state, 'assigned');
    cluster.ownersUnreadable = true;
    try {
      const during = await b.getOrder('ou-order');
      assert.equal(during.ok === false && during.code, 'unavailable', JSON.stringify(during));
      // A's own answer does not need the lookup.
      assert.equal(ok(await a.getOrder('ou-order')).state, 'assigned');
    } finally {
      cluster.ownersUnreadable = false;
    }
    assert.equal(ok(await b.getOrder('ou-order')).state, 'assigned');
    assert.equal((await b.getOrder('no-such-order')).ok === false, true);
  });
});

/**
 * A technician handed over between live nodes (its device moved) keeps its events ahead of
 * its new node's: the old node hands the lease over only once its event relay has put
 * every event it stored into the shared stream (src/cluster/takeover.ts). Two clustered
 * nodes on a manual clock (test/support/memory-cluster.ts); the old node's relay is a
 * stand-in whose flush the test holds and then lets finish.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { techLease } from '../../src/cluster/cluster-link.js';
import type { ClusteredTracker } from '../../src/cluster/clustered-tracker.js';
import type { EventRelayFlush } from '../../src/cluster/takeover.js';
import { LEASE_TTL_MS } from '../../src/shared/leases.js';
import { PLACES, QUIET_DEADLINES_ENV } from '../support/fixtures.js';
import { ok } from '../support/memory-archive.js';
import { MemoryCluster, RecordingDevice } from '../support/memory-cluster.js';

const SITE = PLACES.paris;

/** A relay whose flushes wait until `open` is called. */
class HeldRelay implements EventRelayFlush {
  calls = 0;
  private waiting: Array<(done: boolean) => void> = [];
  private opened = false;

  flush(): Promise<boolean> {
    this.calls++;
    if (this.opened) return Promise.resolve(true);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  open(): void {
    this.opened = true;
    for (const resolve of this.waiting.splice(0)) resolve(true);
  }
}

let cluster: MemoryCluster | undefined;
let relay = new HeldRelay();
afterEach(async () => {
  relay.open(); // a failed test must not leave a shutdown waiting on the flush
  await cluster?.destroy();
  cluster = undefined;
});

/** Whether `node` runs the technician of order `order` (the order is loaded there). */
async function runs(node: ClusteredTracker, order: string): Promise<boolean> {
  return (await node.local.getOrder(order)).ok;
}

describe('hand-over and the event relay', () => {
  it('the lease moves only after the old node flushed its relay', async () => {
    relay = new HeldRelay();
    cluster = await MemoryCluster.launch(2, QUIET_DEADLINES_ENV, (id) => (id === 'node-0' ? relay : null));
    const { clock, leases } = cluster;
    const [a, b] = cluster.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'ho-tech';

    a.attachDevice(tech, new RecordingDevice());
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: clock.now(), ...SITE }));
    await cluster.advanceUntil(
      'A runs the technician',
      async () => (await leases.holder(techLease(tech))) === 'node-0',
    );
    ok(
      await a.putOrder('ho-order', {
        technician: tech,
        ...SITE,
        scheduledAt: clock.now() + 3_600_000,
        durationMin: 30,
      }),
    );
    ok(await a.onDeviceMessage(tech, { t: 'depart', seq: 2, order: 'ho-order' }));

    // The device moves to B: B asks A to hand the technician over; A drops it and flushes.
    const movedAt = clock.now();
    b.attachDevice(tech, new RecordingDevice());
    ok(await b.onDeviceMessage(tech, { t: 'ping', seq: 3, ts: clock.now(), ...SITE }));
    await cluster.advance(1_000);
    assert.ok(relay.calls >= 1, 'the old node flushed its relay');
    assert.equal(await leases.holder(techLease(tech)), 'node-0', 'no hand-over while the flush is pending');
    assert.equal(await runs(b, 'ho-order'), false);

    relay.open();
    await cluster.advanceUntil('B runs the technician', () => runs(b, 'ho-order'), 5_000);
    assert.equal(await leases.holder(techLease(tech)), 'node-1');
    assert.ok(clock.now() - movedAt < LEASE_TTL_MS, 'handed over, not taken after the lease ran out');
    assert.equal(ok(await b.getOrder('ho-order')).state, 'departed');
  });
});

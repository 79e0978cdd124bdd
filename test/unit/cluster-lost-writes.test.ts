/**
 * A Redis failover that loses the last writes (Sentinel promotes a replica that had not
 * received them: the fault campaign, `npm run chaos -- --seed 23`, kills primaries 20 s
 * apart, faster than a restarted one resyncs), on a manual clock with the in-process twins
 * of Redis: the technician's lease and fence and the operator's ack of its SOS are gone
 * from shared storage, while the node that ran the technician still knows the SOS was
 * acknowledged. An acknowledged SOS must never escalate further, whichever node runs it
 * next.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { LEASE_RENEW_MS, techLease } from '../../src/cluster/cluster-link.js';
import type { ClusteredTracker } from '../../src/cluster/clustered-tracker.js';
import type { Outcome } from '../../src/outcome.js';
import { FAILOVER_ENV, PLACES } from '../support/fixtures.js';
import { ok } from '../support/memory-archive.js';
import { MemoryCluster, RecordingConsole, RecordingDevice } from '../support/memory-cluster.js';

const SITE = PLACES.paris;

let cluster: MemoryCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

/** Resolves `p` while the manual clock advances (it may wait on clock-driven retries). */
async function settled<T>(c: MemoryCluster, what: string, p: Promise<T>): Promise<T> {
  let out: { v: T } | undefined;
  void p.then((v) => {
    out = { v };
  });
  await c.advanceUntil(what, () => out !== undefined);
  return (out as { v: T }).v;
}

/** Node `node` runs `tech` (its lease and state) with an open SOS acknowledged there; the feed position before the ack. */
async function acknowledgedSos(
  c: MemoryCluster,
  node: ClusteredTracker,
  tech: string,
): Promise<{ incident: string; beforeAck: string }> {
  const sos = ok(
    await settled(
      c,
      'the SOS is acked',
      node.onDeviceMessage(tech, { t: 'sos', seq: 10, ts: c.clock.now(), ...SITE }) as Promise<
        Outcome<Record<string, unknown>>
      >,
    ),
  );
  const incident = sos.incident as string;
  await c.settle();
  const beforeAck = (await c.feed.snapshot()).position;
  await c.advance(2_000);
  ok(await node.onSafetyMessage('op-a', { t: 'ack', seq: 1, id: incident }));
  await c.settle();
  return { incident, beforeAck };
}

/**
 * Two nodes; `tech`'s device on A, its SOS acknowledged there, and time moved on until
 * shared storage's copy from before the ack (open, level 1) is overdue for level 2.
 */
async function overdueAcknowledgedSos(tech: string) {
  cluster = await MemoryCluster.launch(2, FAILOVER_ENV);
  const c = cluster;
  const [a, b] = c.nodes as [ClusteredTracker, ClusteredTracker];
  const consoleB = new RecordingConsole();
  b.attachSafety('op-b', consoleB);
  const onA = new RecordingDevice();
  a.attachDevice(tech, onA);
  ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: c.clock.now(), ...SITE }));
  const { incident, beforeAck } = await acknowledgedSos(c, a, tech);
  await c.advance(25_000, 500);
  return { c, a, b, onA, consoleB, incident, beforeAck };
}

/**
 * A failover lost A's lease of `tech` and the ack (the feed back at `beforeAck`); A's
 * connections come back, B's as `bReconnects` says; the device leaves A for B.
 */
function failoverThenDeviceMoves(
  c: MemoryCluster,
  tech: string,
  beforeAck: string,
  bReconnects: () => void,
  a: ClusteredTracker,
  onA: RecordingDevice,
  b: ClusteredTracker,
): void {
  c.leases.forget(techLease(tech));
  c.feed.rollback(beforeAck);
  c.reconnected(0);
  bReconnects();
  a.detachDevice(tech, onA);
  b.attachDevice(tech, new RecordingDevice());
}

/** Every version of `incident` a console saw escalated (open at level 2 or more). */
function escalations(console: RecordingConsole, incident: string): number[] {
  return console.alerts.filter((a) => a.id === incident && a.state === 'open' && a.level >= 2).map((a) => a.level);
}

describe('cluster after a redis failover that lost writes', () => {
  it('a node whose renewal comes back under a new token keeps running the technician and its ack', async () => {
    cluster = await MemoryCluster.launch(2, FAILOVER_ENV);
    const c = cluster;
    const [a, b] = c.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'lw-renew';
    const consoleB = new RecordingConsole();
    b.attachSafety('op-b', consoleB);

    // B runs the technician first, then its device moves to A: A holds the lease under
    // fencing token 2.
    const onB = new RecordingDevice();
    b.attachDevice(tech, onB);
    ok(await b.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: c.clock.now(), ...SITE }));
    await c.advanceUntil('B holds the lease', async () => (await c.leases.holder(techLease(tech))) !== null);
    b.detachDevice(tech, onB);
    const onA = new RecordingDevice();
    a.attachDevice(tech, onA);
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 2, ts: c.clock.now(), ...SITE }));
    const { incident, beforeAck } = await acknowledgedSos(c, a, tech);
    assert.ok(consoleB.alerts.some((x) => x.id === incident && x.state === 'acknowledged'));

    // The failover: the lease, its fence and the ack are gone from shared storage. A's next
    // renewal takes the lease again under a new token (1).
    c.leases.forget(techLease(tech));
    c.feed.rollback(beforeAck);
    assert.equal((await c.feed.snapshot()).alerts.find((x) => x.id === incident)?.state, 'open');

    await c.advance(60_000, 500);
    assert.deepEqual(escalations(consoleB, incident), [], 'the acknowledged SOS escalated again');
    const now = (await c.feed.snapshot()).alerts.find((x) => x.id === incident);
    assert.equal(now?.state, 'acknowledged', 'the feed has the ack again');
    assert.equal(await c.leases.holder(techLease(tech)), 'node-0', 'A, where the device is, runs the technician');
    assert.equal(onA.movedOn, 0, 'the device was sent away from the node that still runs its technician');
  });

  it('a node that loses the lease to another node hands its ack over before the next rung', async () => {
    cluster = await MemoryCluster.launch(2, FAILOVER_ENV);
    const c = cluster;
    const [a, b] = c.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'lw-lost';
    const consoleB = new RecordingConsole();
    b.attachSafety('op-b', consoleB);

    const onA = new RecordingDevice();
    a.attachDevice(tech, onA);
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: c.clock.now(), ...SITE }));
    const { incident, beforeAck } = await acknowledgedSos(c, a, tech);

    c.leases.forget(techLease(tech));
    c.feed.rollback(beforeAck);
    // Before A renews, a dispatcher's order on B makes B take the technician over from
    // what shared storage has: the SOS open, as it was before the ack.
    ok(
      await settled(
        c,
        'the order on B',
        b.putOrder('lw-o1', { technician: tech, ...SITE, scheduledAt: c.clock.now(), durationMin: 30 }),
      ),
    );
    assert.equal(await c.leases.holder(techLease(tech)), 'node-1');

    await c.advance(60_000, 500);
    assert.deepEqual(escalations(consoleB, incident), [], 'the acknowledged SOS escalated on B');
    const now = (await c.feed.snapshot()).alerts.find((x) => x.id === incident);
    assert.equal(now?.state, 'acknowledged', 'B has the ack A handed over');
  });

  it('right after a failover, a device that moves to another node does not take its technician from the stale copy', async () => {
    const { c, a, b, onA, consoleB, incident, beforeAck } = await overdueAcknowledgedSos('lw-moved');
    const tech = 'lw-moved';

    // The failover lost A's lease and the ack, and both nodes' connections come back. The
    // device gave up on A meanwhile and connects to B (the campaign's seed 23: B took the
    // technician over from the stale copy at once and escalated the acknowledged SOS).
    failoverThenDeviceMoves(c, tech, beforeAck, () => c.reconnected(1), a, onA, b);

    await c.advance(60_000, 500);
    assert.deepEqual(escalations(consoleB, incident), [], 'the acknowledged SOS escalated again');
    const now = (await c.feed.snapshot()).alerts.find((x) => x.id === incident);
    assert.equal(now?.state, 'acknowledged', 'the feed has the ack again');
    assert.equal(await c.leases.holder(techLease(tech)), 'node-1', 'the technician moved to its device on B');
  });

  it('a node whose other connections are back before the one that reports readiness still waits for the holder', async () => {
    const { c, a, b, onA, consoleB, incident, beforeAck } = await overdueAcknowledgedSos('lw-lagging');
    const tech = 'lw-lagging';
    // Campaign seed 26: B's lease connection answered the new primary while the connection
    // that reports readiness was still reconnecting; B took the technician over at once.
    failoverThenDeviceMoves(c, tech, beforeAck, () => c.stillReconnecting(1), a, onA, b);
    await c.advance(2_000, 200);
    assert.notEqual(await c.leases.holder(techLease(tech)), 'node-1', 'B took the technician over before it was back');
    c.reconnected(1);

    await c.advance(60_000, 500);
    assert.deepEqual(escalations(consoleB, incident), [], 'the acknowledged SOS escalated again');
    assert.equal((await c.feed.snapshot()).alerts.find((x) => x.id === incident)?.state, 'acknowledged');
    assert.equal(await c.leases.holder(techLease(tech)), 'node-1', 'the technician moved to its device on B');
  });

  it('a hand-over first writes what redis lost, so the next node does not run the older copy', async () => {
    const { c, a, b, onA, consoleB, incident, beforeAck } = await overdueAcknowledgedSos('lw-handover');
    const tech = 'lw-handover';

    // The promoted replica had A's lease but not the ack; before A notices anything, its
    // device moves to B, which asks A to hand the technician over.
    c.feed.rollback(beforeAck);
    a.detachDevice(tech, onA);
    b.attachDevice(tech, new RecordingDevice());
    await c.advanceUntil('B runs the technician', async () => (await c.leases.holder(techLease(tech))) === 'node-1');

    await c.advance(60_000, 500);
    assert.deepEqual(escalations(consoleB, incident), [], 'B escalated the acknowledged SOS from the older copy');
    assert.equal((await c.feed.snapshot()).alerts.find((x) => x.id === incident)?.state, 'acknowledged');
  });

  it('right after its redis came back, a node asked to ack an alert of a technician nobody holds lets the holder re-take it', async () => {
    cluster = await MemoryCluster.launch(2, FAILOVER_ENV);
    const c = cluster;
    const [a, b] = c.nodes as [ClusteredTracker, ClusteredTracker];
    const tech = 'lw-grace';
    a.attachDevice(tech, new RecordingDevice());
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: c.clock.now(), ...SITE }));
    const sos = ok(
      await settled(
        c,
        'the SOS is acked',
        a.onDeviceMessage(tech, { t: 'sos', seq: 2, ts: c.clock.now(), ...SITE }) as Promise<
          Outcome<Record<string, unknown>>
        >,
      ),
    );
    const incident = sos.incident as string;
    await c.settle();

    // A failover lost A's lease; B's connection to the new primary is back first.
    c.leases.forget(techLease(tech));
    c.reconnected(1);
    const early = await b.onSafetyMessage('op-b', { t: 'ack', seq: 1, id: incident });
    assert.equal(early.ok === false && early.code, 'unavailable', 'B took the technician over from shared storage');
    assert.equal(await c.leases.holder(techLease(tech)), null);

    // A's next renewal takes its lease again; the operator's retry on B reaches A.
    await c.advanceUntil('A holds the lease again', async () => (await c.leases.holder(techLease(tech))) === 'node-0');
    ok(await settled(c, 'the ack forwarded to A', b.onSafetyMessage('op-b', { t: 'ack', seq: 2, id: incident })));
    assert.equal(a.local.localAlert(incident)?.state, 'acknowledged');
    assert.equal(await c.leases.holder(techLease(tech)), 'node-0');
  });

  it('a node that starts right after a failover leaves a holder not yet back its two renewals', async () => {
    // One node, A, ran the technician; the failover lost its lease and the ack. A's leases
    // connection is not back yet when a new node C starts (on the new primary, its first
    // connection): C's sweeper must give A the same two renewals as after a reconnection,
    // or it takes the technician over from the stale copy and escalates the acknowledged SOS.
    cluster = await MemoryCluster.launch(1, FAILOVER_ENV);
    const c = cluster;
    const [a] = c.nodes as [ClusteredTracker];
    const tech = 'lw-newcomer';
    const onA = new RecordingDevice();
    a.attachDevice(tech, onA);
    ok(await a.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: c.clock.now(), ...SITE }));
    const { incident, beforeAck } = await acknowledgedSos(c, a, tech);
    await c.advance(25_000, 500);

    // Just after one of A's renewals, so that A's next one falls before C's first sweep.
    const calls = c.leaseCallsOf(0);
    await c.advanceUntil('A renews', () => c.leaseCallsOf(0) > calls, 10_000);
    c.leases.forget(techLease(tech));
    c.feed.rollback(beforeAck);
    c.reconnected(0);
    c.leasesUnreachable(0);
    const newcomer = await c.addNode();
    const consoleC = new RecordingConsole();
    newcomer.attachSafety('op-c', consoleC);
    // A's renewal one period later fails; its leases connection is back before the next.
    await c.advance(LEASE_RENEW_MS + 500, 100);
    c.leasesBack(0);

    await c.advance(60_000, 500);
    assert.equal(await c.leases.holder(techLease(tech)), 'node-0', 'the new node took the technician over');
    assert.deepEqual(escalations(consoleC, incident), [], 'the acknowledged SOS escalated on the new node');
    assert.equal((await c.feed.snapshot()).alerts.find((x) => x.id === incident)?.state, 'acknowledged');
  });
});

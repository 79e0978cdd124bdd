/**
 * Seed 27 of the chaos campaign, made deterministic: a new order is being stored on node A
 * (its journal write in flight) when A hands its technician over to node B. The hand-over
 * takes A's records before the order commits, so the order is not among them; it commits
 * on A afterwards and A acks it. Its state-mirror write then carries no token of A (the
 * lease is gone) and Redis refuses it as stale. The order must still reach B, which runs
 * the technician now, with no restart.
 *
 * Two clustered trackers in this process on one real redis-server (the real fencing
 * scripts, leases and node bus); A's archive is held so the order's write waits exactly
 * across the hand-over.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { techLease } from '../src/cluster/cluster-link.js';
import { ClusteredTracker } from '../src/cluster/clustered-tracker.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { redisSharedState, type SharedState } from '../src/shared/shared-state.js';
import type { ArchiveRecord } from '../src/telemetry/archive.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import { MemoryArchive, testConfig } from './support/memory-archive.js';
import { RecordingDevice } from './support/memory-cluster.js';
import { RedisServer } from './support/redis-server.js';

/** An archive whose writes can be held; counts the writes that reached it. */
class GatedArchive extends MemoryArchive {
  entered = 0;
  override async write(records: ArchiveRecord[]): Promise<void> {
    this.entered++;
    return super.write(records);
  }
}

const SITE = PLACES.paris;
const log = createLogger('silent');
let redis: RedisServer;
const dirs: string[] = [];
const nodes: ClusteredTracker[] = [];

before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  for (const n of nodes) await n.close();
  await redis.destroy();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function startNode(
  prefix: string,
  archive: MemoryArchive,
): Promise<{ node: ClusteredTracker; shared: SharedState }> {
  const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-race-'));
  dirs.push(dir);
  const shared = redisSharedState({ url: redis.url }, prefix, log);
  const node = await ClusteredTracker.start({
    config: testConfig(dir, QUIET_DEADLINES_ENV),
    clock: systemClock,
    log,
    metrics: new Metrics(),
    archive,
    journal: { positionFlushMs: 1000 },
    shared,
  });
  nodes.push(node);
  return { node, shared };
}

const order = (tech: string) => ({
  technician: tech,
  ...SITE,
  scheduledAt: Date.now() + 3_600_000,
  durationMin: 30,
});

describe('an order committed on a node while it hands its technician over', () => {
  it('reaches the node that runs the technician now, without a restart', async () => {
    const prefix = `race${randomBytes(4).toString('hex')}:`;
    const tech = 'race-tech';
    const archiveA = new GatedArchive();
    const a = await startNode(prefix, archiveA);
    const b = await startNode(prefix, new MemoryArchive());

    a.node.attachDevice(tech, new RecordingDevice());
    const first = await a.node.putOrder('race-first', order(tech));
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal(await a.shared.leases.holder(techLease(tech)), a.shared.nodeId);

    // A's next order waits in its write when B's device asks A for the technician.
    let release = (): void => {};
    archiveA.held = new Promise<void>((r) => {
      release = r;
    });
    const entered = archiveA.entered;
    const put = a.node.putOrder('race-order', order(tech));
    await eventually('the order is being stored on A', () => archiveA.entered > entered, 10_000, 5);

    b.node.attachDevice(tech, new RecordingDevice());
    await eventually(
      'B holds the technician',
      async () => (await b.shared.leases.holder(techLease(tech))) === b.shared.nodeId,
      30_000,
    );
    // The order commits on A after the hand-over took A's records: A acks it.
    release();
    archiveA.held = null;
    const acked = await put;
    assert.ok(acked.ok, JSON.stringify(acked));

    // It reaches B, which runs the technician: Redis refused A's write, and the refusal sent it on.
    const onB = await eventually(
      'the order on B',
      async () => {
        const r = await b.node.local.getOrder('race-order');
        return r.ok ? r.value : undefined;
      },
      30_000,
    );
    assert.equal(onB.technician, tech);
    assert.equal(onB.state, 'assigned');
  });
});

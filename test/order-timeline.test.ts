/**
 * The order timeline from the archive, so it outlives live state: `getOrderTimeline` answers from
 * order_events with every transition in time order, and still answers once the finished
 * order has left live state (24 h, then `GET /v1/orders/:id` is 404). On the real server:
 * the route's roles, 404 for an order without archived events, 400 for a malformed id.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ActorTracker, RETAIN_FINISHED_MS } from '../src/actors/tracker.js';
import { ManualClock } from '../src/clock.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { DeviceMessage, TimelineEntry } from '../src/protocol.js';
import { memorySharedState } from '../src/shared/shared-state.js';
import { openSpooledArchive } from '../src/telemetry/archive-factory.js';
import type { SpooledArchive } from '../src/telemetry/spooled-archive.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ok, testConfig } from './support/memory-archive.js';
import { ServerProcess } from './support/server-process.js';

const CUSTOMER = PLACES.paris;
const STATES = ['assigned', 'departed', 'arrived', 'in_service', 'completed'];

/** A tracker on a manual clock, archiving into the real embedded ClickHouse (chDB). */
interface ChdbHarness {
  clock: ManualClock;
  tracker: ActorTracker;
  archive: SpooledArchive;
  advance(ms: number): Promise<void>;
  dispose(): Promise<void>;
}

async function chdbHarness(): Promise<ChdbHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-timeline-'));
  const config = testConfig(dir, { ARCHIVE_BATCH_MS: '50' });
  const log = createLogger('silent');
  const metrics = new Metrics();
  const archive = await openSpooledArchive(config, log, metrics);
  const clock = new ManualClock();
  const tracker = await ActorTracker.start({
    config,
    clock,
    log,
    metrics,
    archive,
    journal: { positionFlushMs: 1000 },
    shared: memorySharedState(clock),
  });
  return {
    clock,
    tracker,
    archive,
    async advance(ms) {
      await tracker.settle();
      clock.advance(ms);
      await tracker.settle();
    },
    async dispose() {
      await tracker.close();
      await archive.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('order timeline from the archive (tracker on embedded ClickHouse)', () => {
  let h: ChdbHarness;
  beforeEach(async () => {
    h = await chdbHarness();
  });
  afterEach(async () => {
    await h.dispose();
  });

  test('a completed order keeps its archived timeline after leaving live state', async () => {
    const input = { technician: 'tech-1', ...CUSTOMER, radius: 50, scheduledAt: h.clock.now(), durationMin: 60 };
    ok(await h.tracker.putOrder('o1', input));
    const dev = (msg: DeviceMessage) => h.tracker.onDeviceMessage('tech-1', msg);
    ok(await dev({ t: 'depart', seq: 1, order: 'o1' }));
    await h.advance(60_000);
    ok(await dev({ t: 'checkin', seq: 2, order: 'o1', ts: h.clock.now(), ...CUSTOMER }));
    await h.advance(60_000);
    ok(await dev({ t: 'start', seq: 3, order: 'o1' }));
    await h.advance(60_000);
    ok(await dev({ t: 'complete', seq: 4, order: 'o1' }));
    const live = ok(await h.tracker.getOrder('o1')).timeline;

    // Read back from ClickHouse once the drainer has inserted all five transitions.
    const archived = await eventually('five archived transitions', async () => {
      const out = await h.tracker.getOrderTimeline('o1');
      return out.ok && out.value.timeline.length === 5 ? out.value : undefined;
    });
    assert.equal(archived.id, 'o1');
    assert.deepEqual(
      archived.timeline.map((e) => e.state),
      STATES,
    );
    assert.deepEqual(archived.timeline, live, 'the archive holds the same entries as live state');
    const ts = archived.timeline.map((e) => e.ts);
    assert.deepEqual(
      ts,
      [...ts].sort((a, b) => a - b),
    );
    const arrived = archived.timeline[2] as TimelineEntry;
    assert.equal(arrived.lat, CUSTOMER.lat);
    assert.equal(arrived.lon, CUSTOMER.lon);

    await h.advance(RETAIN_FINISHED_MS + 2 * 60 * 60 * 1000);
    const gone = await h.tracker.getOrder('o1');
    assert.equal(gone.ok, false);
    assert.equal(!gone.ok && gone.code, 'not_found');
    assert.deepEqual(ok(await h.tracker.getOrderTimeline('o1')), archived);
  });

  test('not_found for an order without archived events', async () => {
    const out = await h.tracker.getOrderTimeline('never');
    assert.equal(out.ok, false);
    assert.equal(!out.ok && out.code, 'not_found');
  });
});

describe('GET /v1/orders/:id/timeline', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  test('serves the archived transitions to dispatch and safety, not to devices', async () => {
    const order = { technician: 'tech-tl', ...CUSTOMER, scheduledAt: Date.now(), durationMin: 30 };
    assert.equal((await server.http('PUT', '/v1/orders/o-tl', { role: 'dispatch', body: order })).status, 200);
    const d = await server.device('tech-tl');
    assert.equal((await d.depart('o-tl')).t, 'ack');
    assert.equal((await d.checkin({ order: 'o-tl', ts: Date.now(), ...CUSTOMER })).t, 'ack');
    assert.equal((await d.start('o-tl')).t, 'ack');
    assert.equal((await d.complete('o-tl')).t, 'ack');
    await d.close();

    const res = await eventually(
      'five archived transitions',
      async () => {
        const r = await server.http('GET', '/v1/orders/o-tl/timeline', { role: 'safety' });
        return r.status === 200 && (r.body as { timeline: unknown[] }).timeline.length >= 5 ? r : undefined;
      },
      60_000,
    );
    const body = res.body as { id: string; timeline: TimelineEntry[] };
    assert.equal(body.id, 'o-tl');
    assert.deepEqual(
      body.timeline.map((e) => e.state),
      STATES,
    );
    assert.equal(body.timeline[2]?.lat, CUSTOMER.lat);
    const live = (await server.http('GET', '/v1/orders/o-tl', { role: 'dispatch' })).body as {
      timeline: TimelineEntry[];
    };
    assert.deepEqual(body.timeline, live.timeline);

    assert.equal((await server.http('GET', '/v1/orders/o-tl/timeline', { role: 'dispatch' })).status, 200);
    assert.equal((await server.http('GET', '/v1/orders/o-tl/timeline', { role: 'device' })).status, 403);
    assert.equal((await server.http('GET', '/v1/orders/o-tl/timeline')).status, 401);
    assert.equal((await server.http('GET', '/v1/orders/no-such/timeline', { role: 'dispatch' })).status, 404);
    assert.equal((await server.http('GET', '/v1/orders/bad%20id/timeline', { role: 'dispatch' })).status, 400);
  });
});

/**
 * The multi-node building blocks of events against a real redis-server
 * (src/events/event-stream-redis.ts, event-relay.ts, webhook-store-redis.ts):
 *
 * - the relay script is idempotent per node and local id; public ids are fixed width and
 *   ascend in stream order even when the relaying nodes' clocks disagree or one
 *   millisecond holds more than 10,000 events; `read` pages with `after` as on one node;
 * - a node's relay copies its log in order, goes on after a restart without repeating,
 *   survives a Redis outage (events stay in the local log, relayed once Redis is back) and
 *   `flush` says when everything is in;
 * - the delivering node's marks are fenced by its lease token: a node whose lease passed on
 *   cannot mark anything; nothing is marked for a deleted webhook; redelivery moves dead
 *   events back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { EventLog } from '../src/events/event-log.js';
import { EventRelay, relayNodeId } from '../src/events/event-relay.js';
import { RedisEventStream } from '../src/events/event-stream-redis.js';
import { DELIVERY_LEASE, RedisWebhookStore } from '../src/events/webhook-store-redis.js';
import { createLogger } from '../src/log.js';
import type { DispatchEvent } from '../src/protocol.js';
import { RedisLeases } from '../src/shared/leases-redis.js';
import { eventually } from './support/eventually.js';
import { tempDirs } from './support/fixtures.js';
import { RedisServer } from './support/redis-server.js';

const tempDir = tempDirs('events-shared');
const log = createLogger('silent');
let redis: RedisServer;
let n = 0;
before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  await redis.destroy();
});

/** A fresh key prefix per test, as each deployment (or test) has its own. */
const prefix = () => `t${n++}:`;

function ev(id: string, tech = 't-1'): DispatchEvent {
  return { id, type: 'technician.online', ts: 1, tech, data: { online: true } };
}

describe('the shared stream of events (real redis)', () => {
  it('relays idempotently; ids are fixed width and ascend across nodes whatever their clocks', async () => {
    const stream = new RedisEventStream({ url: redis.url, prefix: prefix() });
    try {
      const local = ['1767258000000-0000', '1767258000000-0001', '1767258000000-0002'];
      assert.equal(await stream.relay('n1', 5000, [ev(local[0] as string), ev(local[1] as string)]), 2);
      // The same batch again (a crash before the node learnt it landed) adds nothing; a longer one adds the rest.
      assert.equal(await stream.relay('n1', 5000, [ev(local[0] as string), ev(local[1] as string)]), 0);
      assert.equal(
        await stream.relay(
          'n1',
          5000,
          local.map((id) => ev(id)),
        ),
        1,
      );
      assert.equal(await stream.relayedUpTo('n1'), local[2]);
      // Another node with a clock behind: its event still comes after, with a larger id.
      assert.equal(await stream.relay('n2', 4000, [ev('0000000000001-0000', 't-2')]), 1);
      // A clock ahead: its millisecond.
      assert.equal(await stream.relay('n2', 6000, [ev('0000000000002-0000', 't-2')]), 1);
      const all = await stream.read(null, 100);
      assert.deepEqual(
        all.map((e) => e.id),
        ['0000000005000-0000', '0000000005000-0001', '0000000005000-0002', '0000000005000-0003', '0000000006000-0000'],
      );
      assert.deepEqual(
        all.map((e) => e.tech),
        ['t-1', 't-1', 't-1', 't-2', 't-2'],
      );
      assert.deepEqual(all[0], {
        id: '0000000005000-0000',
        type: 'technician.online',
        ts: 1,
        tech: 't-1',
        data: { online: true },
      });
      assert.deepEqual(
        (await stream.read('0000000005000-0001', 2)).map((e) => e.id),
        ['0000000005000-0002', '0000000005000-0003'],
      );
      assert.deepEqual(await stream.read('0000000006000-0000', 10), []);
      assert.equal(await stream.lastId(), '0000000006000-0000');

      // More than 10,000 events in one millisecond take the next millisecond, never a 5-digit sequence.
      const many = Array.from({ length: 10_001 }, (_, i) => ev(`0000000000003-${String(i).padStart(4, '0')}`));
      many[10_000] = ev('0000000000004-0000');
      assert.equal(await stream.relay('n3', 6000, many), 10_001);
      const tail = await stream.read('0000000006000-9998', 5);
      assert.deepEqual(
        tail.map((e) => e.id),
        ['0000000006000-9999', '0000000006001-0000', '0000000006001-0001'],
      );
    } finally {
      await stream.close();
    }
  });

  it("relays a node's log in order, resumes after a restart without repeats, waits out a redis outage", async () => {
    const dir = await tempDir();
    const p = prefix();
    const node = await relayNodeId(dir);
    assert.equal(await relayNodeId(dir), node, 'the relay id is kept in DATA_DIR');
    const stream = new RedisEventStream({ url: redis.url, prefix: p });
    stream.start();
    const told: string[] = [];
    stream.subscribe((e) => told.push(e.id));
    let events = await EventLog.open(dir, systemClock, log);
    let relay = new EventRelay(events, stream, node, systemClock, log, 3600_000);
    const draft = (i: number) => ({
      type: 'technician.online' as const,
      ts: i,
      tech: `t-${i}`,
      data: { online: true },
    });
    for (let i = 0; i < 3; i++) await events.append(draft(i));
    assert.equal(await relay.flush(10_000), true);
    assert.deepEqual(
      (await stream.read(null, 100)).map((e) => e.ts),
      [0, 1, 2],
    );
    await eventually('the follower told of each', () => told.length === 3);

    // A restart: a new relay on the same log and id relays only what is new.
    relay.stop();
    await events.close();
    events = await EventLog.open(dir, systemClock, log);
    for (let i = 3; i < 5; i++) await events.append(draft(i));
    relay = new EventRelay(events, stream, node, systemClock, log, 3600_000);
    assert.equal(await relay.flush(10_000), true);
    assert.deepEqual(
      (await stream.read(null, 100)).map((e) => e.ts),
      [0, 1, 2, 3, 4],
    );

    // Redis down: the event is stored locally at once; flush gives up after its timeout; the
    // relay sends it once Redis is back.
    await redis.stop();
    try {
      await events.append(draft(5));
      assert.equal(await relay.flush(300), false);
    } finally {
      await redis.start();
    }
    assert.equal(await relay.flush(20_000), true);
    const all = await stream.read(null, 100);
    assert.deepEqual(
      all.map((e) => e.ts),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      all.map((e) => e.id),
      [...all.map((e) => e.id)].sort(),
    );
    await eventually('the follower told of every event, in order', () => told.length === 6);
    assert.deepEqual(
      told,
      all.map((e) => e.id),
    );
    relay.stop();
    await events.close();
    await stream.close();
  });

  it('fences the marks of the delivering node by its lease token', async () => {
    const p = prefix();
    const store = new RedisWebhookStore(redis.url, p);
    const leases = new RedisLeases(redis.url, p);
    try {
      const hook = {
        id: 'wh_a',
        url: 'http://127.0.0.1:1/hook',
        events: ['*'],
        secret: 'a-secret-of-sixteen-chars',
        createdAt: 1,
        after: null,
      };
      await store.create(hook);
      const v1 = await store.version();
      const t1 = (await leases.acquire(DELIVERY_LEASE, 'node-1', 100)) as number;
      assert.equal(await store.delivered(t1, 'wh_a', '0000000005000-0000'), 'ok');
      assert.equal(
        await store.dead(t1, 'wh_a', {
          event: ev('0000000005000-0001'),
          attempts: 3,
          lastError: 'HTTP 500',
          deadAt: 9,
        }),
        'ok',
      );
      // The lease runs out and node 2 takes it: node 1's marks are refused from now on.
      await new Promise((r) => setTimeout(r, 150));
      const t2 = (await leases.acquire(DELIVERY_LEASE, 'node-2', 10_000)) as number;
      assert.ok(t2 > t1);
      assert.equal(await store.delivered(t1, 'wh_a', '0000000005000-0002'), 'stale');
      assert.equal(await store.compact(t1, 'wh_a', '0000000005000-0003'), 'stale');
      assert.equal(await store.delivered(t2, 'wh_a', '0000000005000-0003'), 'ok');

      let st = (await store.states()).get('wh_a');
      assert.deepEqual([...(st?.settled ?? [])].sort(), [
        '0000000005000-0000',
        '0000000005000-0001',
        '0000000005000-0003',
      ]);
      assert.deepEqual([...(st?.dead.keys() ?? [])], ['0000000005000-0001']);
      assert.equal((await store.deliveredCounts()).get('wh_a'), 2);

      // Redelivery (from any node) moves the dead event back and tells the deliverer by the version.
      assert.deepEqual(await store.requeue('wh_a'), ['0000000005000-0001']);
      assert.notEqual(await store.version(), v1);
      st = (await store.states()).get('wh_a');
      assert.equal(st?.dead.size, 0);
      assert.deepEqual([...(st?.requeued.keys() ?? [])], ['0000000005000-0001']);
      assert.equal(st?.settled.has('0000000005000-0001'), false);
      assert.equal(await store.requeue('wh_nope'), null);

      assert.equal(await store.compact(t2, 'wh_a', '0000000005000-0002'), 'ok');
      st = (await store.states()).get('wh_a');
      assert.equal(st?.below, '0000000005000-0002');
      assert.deepEqual([...(st?.settled ?? [])], ['0000000005000-0003']);

      // A deleted webhook: gone, and marks for it do nothing.
      assert.equal(await store.remove('wh_a'), true);
      assert.equal(await store.remove('wh_a'), false);
      assert.equal(await store.delivered(t2, 'wh_a', '0000000005000-0004'), 'gone');
      assert.equal((await store.states()).size, 0);
    } finally {
      await Promise.all([store.close(), leases.close()]);
    }
  });
});

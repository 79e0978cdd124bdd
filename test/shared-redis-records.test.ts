/**
 * What the Redis backends read back is checked by compiled schemas: a corrupt record
 * (not JSON, a wrong shape, a value out of range) is refused and reported, never handed
 * on, and the good records beside it still are. Against a real redis-server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Alert } from '../src/protocol.js';
import type { FeedEntry } from '../src/shared/alert-feed.js';
import { RedisAlertFeed } from '../src/shared/alert-feed-redis.js';
import { RedisNearbyIndex } from '../src/shared/nearby-index-redis.js';
import type { BusMessage } from '../src/shared/node-bus.js';
import { RedisNodeBus } from '../src/shared/node-bus-redis.js';
import { RedisStateMirror } from '../src/shared/state-mirror-redis.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;
let raw: Redis;
before(async () => {
  redis = await RedisServer.launch();
  raw = new Redis(redis.url);
});
after(async () => {
  raw.disconnect();
  await redis.destroy();
});

const prefix = () => `t${randomBytes(4).toString('hex')}:`;

/** Collects what the backend reports as corrupt. */
function reports(): { seen: [string, string][]; onCorrupt: (where: string, problem: string) => void } {
  const seen: [string, string][] = [];
  return { seen, onCorrupt: (where, problem) => seen.push([where, problem]) };
}

const alert: Alert = { id: 'a-1', kind: 'sos', level: 1, state: 'open', tech: 't1', ts: 1_700_000_000_000 };

describe('corrupt records in Redis are refused and reported', () => {
  it('alert feed: snapshot and tail skip alerts that fail the alert schema', async () => {
    const p = prefix();
    const r = reports();
    const feed = new RedisAlertFeed({ url: redis.url, prefix: p, maxLen: 1000, blockMs: 100, onCorrupt: r.onCorrupt });
    try {
      await feed.append(alert);
      await raw.hset(
        `${p}alerts:open`,
        'bad-json',
        '{not json',
        'bad-level',
        JSON.stringify({ ...alert, id: 'a-2', level: 'high' }),
      );
      const snap = await feed.snapshot();
      assert.deepEqual(snap.alerts, [alert]);
      assert.deepEqual(r.seen.map(([where]) => where).sort(), ['alert feed open alerts', 'alert feed open alerts']);
      assert.ok(r.seen.some(([, problem]) => /not JSON/.test(problem)));
      assert.ok(r.seen.some(([, problem]) => /field level/.test(problem)));

      const got: FeedEntry[] = [];
      const stop = feed.tail(snap.position, (e) => got.push(e));
      await raw.xadd(`${p}alerts:stream`, '*', 'a', JSON.stringify({ ...alert, id: 'a 3', state: 'acknowledged' }));
      await raw.xadd(`${p}alerts:stream`, '*', 'a', JSON.stringify({ ...alert, lat: 95 }));
      const good = { ...alert, state: 'acknowledged' as const };
      await feed.append(good);
      await eventually('the good change after the corrupt ones', () => got.length > 0);
      await stop();
      assert.deepEqual(
        got.map((e) => e.alert),
        [good],
      );
      const tailed = r.seen.filter(([where]) => where === 'alert feed stream').map(([, problem]) => problem);
      assert.equal(tailed.length, 2);
      assert.match(tailed[0]!, /field id/);
      assert.match(tailed[1]!, /field lat/);
    } finally {
      await feed.close();
    }
  });

  it('nearby index: a stored fix that is not lat,lon,ts in range leaves that technician out', async () => {
    const p = prefix();
    const r = reports();
    const index = new RedisNearbyIndex(redis.url, p, undefined, r.onCorrupt);
    try {
      index.put('t1', 52.5, 13.4, 1000);
      index.put('t2', 52.5, 13.4001, 1000);
      index.put('t3', 52.5, 13.4002, 1000);
      await eventually('both fixes stored', async () => (await raw.hlen(`${p}geo:fix`)) === 3);
      await raw.hset(`${p}geo:fix`, 't2', '52.5,13.4001');
      await raw.hset(`${p}geo:fix`, 't3', '52.5,13.4002,-7');
      const found = await index.search(52.5, 13.4, 1000);
      assert.deepEqual(
        found.map((t) => t.id),
        ['t1'],
      );
      assert.deepEqual(
        r.seen.map(([where]) => where),
        ['nearby index fix', 'nearby index fix'],
      );
    } finally {
      await index.close();
    }
  });

  it('state mirror: orders and positions that fail their schemas are not loaded', async () => {
    const p = prefix();
    const r = reports();
    const mirror = new RedisStateMirror(redis.url, p, undefined, r.onCorrupt);
    try {
      const order = {
        id: 'o1',
        tech: 't1',
        lat: 52.5,
        lon: 13.4,
        radius: 50,
        scheduledAt: 1000,
        durationMin: 60,
        state: 'assigned',
        timeline: [{ state: 'assigned', ts: 1000 }],
        inServiceAt: null,
        fired: [],
        watch: { outsideSince: null, outsideFixes: 0, fired: false },
        dwellAt: null,
      };
      mirror.putOrder('t1', 'o1', order);
      mirror.putOrder('t1', 'o2', { ...order, id: 'o2', state: 'teleported' });
      mirror.putOrder('t1', 'o3', { ...order, id: 'o3', watch: undefined });
      mirror.putPosition('t1', { pos: { ts: 1000, lat: 52.5, lon: 13.4, acc: null, spd: null }, quietSince: 900 });
      await mirror.flush();
      assert.deepEqual(await mirror.load('t1'), {
        orders: [order],
        position: { pos: { ts: 1000, lat: 52.5, lon: 13.4, acc: null, spd: null }, quietSince: 900 },
      });
      assert.deepEqual(r.seen.map(([where]) => where).sort(), ['state mirror order', 'state mirror order']);

      await raw.set(`${p}t:t1:p`, JSON.stringify({ pos: { ts: 1000, lat: 'north', lon: 13.4 }, quietSince: 0 }));
      assert.equal((await mirror.load('t1')).position, null);
      assert.ok(r.seen.some(([where, problem]) => where === 'state mirror position' && /field pos/.test(problem)));
    } finally {
      await mirror.close();
    }
  });

  it('node bus: an inbox entry that is not a bus envelope is dropped, the next one delivered', async () => {
    const p = prefix();
    const r = reports();
    const bus = new RedisNodeBus(redis.url, p, 'n1', undefined, r.onCorrupt);
    const got: BusMessage[] = [];
    bus.listen((m) => got.push(m));
    try {
      await raw.xadd(`${p}inbox:n1`, '*', 'm', 'not json');
      await raw.xadd(`${p}inbox:n1`, '*', 'm', JSON.stringify([1, 2]));
      await raw.xadd(`${p}inbox:n1`, '*', 'm', JSON.stringify({ t: 7 }));
      bus.send('n1', { t: 'release', tech: 't1' });
      await eventually('the good message', () => got.length > 0);
      assert.deepEqual(got, [{ t: 'release', tech: 't1' }]);
      assert.deepEqual(
        r.seen.map(([where]) => where),
        ['node bus inbox', 'node bus inbox', 'node bus inbox'],
      );
    } finally {
      await bus.close();
    }
  });
});

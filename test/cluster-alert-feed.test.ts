/**
 * The alert feed contract, run against both backends (in-process and a real redis-server),
 * plus what only Redis can show: two nodes' connections see one ordered feed, and a Redis
 * restart mid-stream loses nothing a tail had not yet read.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Alert } from '../src/protocol.js';
import type { AlertFeed, FeedEntry } from '../src/shared/alert-feed.js';
import { MemoryAlertFeed } from '../src/shared/alert-feed-memory.js';
import { RedisAlertFeed } from '../src/shared/alert-feed-redis.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

function alert(id: string, state: Alert['state'] = 'open', level = 1): Alert {
  return { id, kind: 'sos', level, state, tech: 't1', ts: 1_700_000_000_000 };
}

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  await redis.destroy();
});

const backends: [string, () => AlertFeed][] = [
  ['memory', () => new MemoryAlertFeed()],
  [
    'redis',
    () =>
      new RedisAlertFeed({
        url: redis.url,
        prefix: `t${randomBytes(4).toString('hex')}:`,
        maxLen: 10_000,
        blockMs: 200,
      }),
  ],
];

for (const [name, make] of backends) {
  describe(`alert feed contract: ${name}`, () => {
    it('snapshot holds only non-resolved alerts, at the position of the last change', async () => {
      const feed = make();
      await feed.append(alert('a1'));
      await feed.append(alert('a2'));
      const p3 = await feed.append(alert('a1', 'resolved'));
      const snap = await feed.snapshot();
      assert.deepEqual(
        snap.alerts.map((a) => a.id),
        ['a2'],
      );
      assert.equal(snap.position, p3);
      await feed.close();
    });

    it('snapshot then tail sees every change exactly once, in order', async () => {
      const feed = make();
      await feed.append(alert('b1'));
      const snap = await feed.snapshot();
      const seen: FeedEntry[] = [];
      const stop = feed.tail(snap.position, (e) => seen.push(e));
      for (let i = 2; i <= 50; i++) await feed.append(alert(`b${i}`));
      await eventually('49 changes', () => seen.length >= 49);
      assert.deepEqual(
        seen.map((e) => e.alert.id),
        Array.from({ length: 49 }, (_, i) => `b${i + 2}`),
      );
      assert.deepEqual(
        snap.alerts.map((a) => a.id),
        ['b1'],
      );
      await stop();
      await feed.close();
    });
  });
}

describe('alert feed across nodes (redis)', () => {
  it("a change appended by one node's connection reaches another node's tail in order", async () => {
    const prefix = `x${randomBytes(4).toString('hex')}:`;
    const nodeA = new RedisAlertFeed({ url: redis.url, prefix, maxLen: 10_000, blockMs: 200 });
    const nodeB = new RedisAlertFeed({ url: redis.url, prefix, maxLen: 10_000, blockMs: 200 });
    const seen: string[] = [];
    const stop = nodeB.tail((await nodeB.snapshot()).position, (e) => seen.push(`${e.alert.id}:${e.alert.state}`));
    await nodeA.append(alert('c1'));
    await nodeB.append(alert('c1', 'acknowledged'));
    await nodeA.append(alert('c1', 'resolved'));
    await eventually('3 changes', () => seen.length >= 3);
    assert.deepEqual(seen, ['c1:open', 'c1:acknowledged', 'c1:resolved']);
    assert.deepEqual((await nodeA.snapshot()).alerts, []);
    await stop();
    await nodeA.close();
    await nodeB.close();
  });

  it('a tail resumes after a Redis restart and misses no change', async () => {
    const prefix = `r${randomBytes(4).toString('hex')}:`;
    const writer = new RedisAlertFeed({ url: redis.url, prefix, maxLen: 10_000, blockMs: 200 });
    const reader = new RedisAlertFeed({
      url: redis.url,
      prefix,
      maxLen: 10_000,
      blockMs: 200,
    });
    const seen: string[] = [];
    const stop = reader.tail('0-0', (e) => seen.push(e.alert.id));
    for (let i = 0; i < 20; i++) await writer.append(alert(`d${i}`));
    await eventually('first 20', () => seen.length >= 20);
    await redis.kill();
    // Appends while Redis is down wait in ioredis' offline queue (maxRetriesPerRequest: null).
    const pending = Promise.all(Array.from({ length: 20 }, (_, i) => writer.append(alert(`d${20 + i}`))));
    await redis.start();
    await pending;
    await eventually('all 40 after restart', () => seen.length >= 40);
    assert.deepEqual(
      seen,
      Array.from({ length: 40 }, (_, i) => `d${i}`),
    );
    await stop();
    await reader.close();
    await writer.close();
  });
});

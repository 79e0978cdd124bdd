/**
 * The live-position index contract on both backends, nearby search across two nodes'
 * connections to one real redis-server, and the Redis commands one position costs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { NearbyIndex } from '../src/shared/nearby-index.js';
import { MemoryNearbyIndex } from '../src/shared/nearby-index-memory.js';
import { RedisNearbyIndex } from '../src/shared/nearby-index-redis.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  await redis.destroy();
});

// Around an SOS at Place de la Concorde: ~111 m per 0.001° of latitude.
const SOS = { lat: 48.8656, lon: 2.3212 };

const backends: [string, () => [NearbyIndex, NearbyIndex]][] = [
  [
    'memory',
    () => {
      const one = new MemoryNearbyIndex();
      return [one, one];
    },
  ],
  [
    'redis',
    () => {
      const prefix = `n${randomBytes(4).toString('hex')}:`;
      return [new RedisNearbyIndex(redis.url, prefix), new RedisNearbyIndex(redis.url, prefix)];
    },
  ],
];

/** Polls `idx` until a 1 km search around the SOS satisfies `cond` (writes are fire-and-forget). */
async function visible(
  idx: NearbyIndex,
  cond: (found: Awaited<ReturnType<NearbyIndex['search']>>) => boolean,
): Promise<void> {
  await eventually('the write visible in a search', async () => cond(await idx.search(SOS.lat, SOS.lon, 1000)));
}

for (const [name, make] of backends) {
  describe(`nearby index: ${name}`, () => {
    it('finds online technicians written by either node, nearest first, within the radius only', async () => {
      const [a, b] = make();
      a.put('t-far', SOS.lat + 0.02, SOS.lon, 1000); // ~2.2 km: outside 1 km
      a.put('t-near', SOS.lat + 0.001, SOS.lon, 1001); // ~111 m
      await visible(b, (found) => found.some((t) => t.ts === 1001));
      // The technician's device reconnected to the other node and moved closer.
      b.put('t-mid', SOS.lat + 0.005, SOS.lon, 1002); // ~556 m
      b.put('t-near', SOS.lat + 0.0005, SOS.lon, 1003);
      await visible(b, (found) => found.length === 2 && found[0]?.ts === 1003);
      const found = await b.search(SOS.lat, SOS.lon, 1000);
      assert.deepEqual(
        found.map((t) => [t.id, t.dist, t.ts]),
        [
          ['t-near', 55.6, 1003],
          ['t-mid', 556, 1002],
        ],
      );
      assert.equal(found[0]?.lat, SOS.lat + 0.0005, 'the exact fix is returned, not the GEO cell');
      b.remove('t-near');
      await visible(a, (found) => found.length === 1);
      assert.deepEqual(
        (await a.search(SOS.lat, SOS.lon, 1000)).map((t) => t.id),
        ['t-mid'],
        'an offline technician is no longer found',
      );
      await a.close();
      await b.close();
    });
  });
}

describe('nearby index cost (redis)', () => {
  it('one position costs exactly two commands (GEOADD, HSET), sent without waiting', async () => {
    const admin = new Redis(redis.url);
    const calls = async (): Promise<number> => {
      const info = await admin.info('commandstats');
      let total = 0;
      for (const m of info.matchAll(/^cmdstat_(geoadd|hset):calls=(\d+)/gm)) total += Number(m[2]);
      return total;
    };
    const idx = new RedisNearbyIndex(redis.url, `c${randomBytes(4).toString('hex')}:`);
    const before = await calls();
    for (let i = 0; i < 1000; i++) idx.put(`t${i % 50}`, SOS.lat + i * 1e-6, SOS.lon, i);
    await idx.close();
    assert.equal((await calls()) - before, 2000);
    await admin.quit();
  });
});

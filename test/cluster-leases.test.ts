/**
 * The ownership-lease contract, run against both backends (in-process with a manual clock,
 * and a real redis-server shared by two "nodes"' connections).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/clock.js';
import type { Leases } from '../src/shared/leases.js';
import { MemoryLeases } from '../src/shared/leases-memory.js';
import { RedisLeases } from '../src/shared/leases-redis.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  await redis.destroy();
});

/** Two nodes' views of one lease backend, and a way to let a lease of `ttlMs` run out. */
interface Setup {
  a: Leases;
  b: Leases;
  expire(key: string, ttlMs: number): Promise<void>;
}

const backends: [string, () => Setup][] = [
  [
    'memory',
    () => {
      const clock = new ManualClock();
      const shared = new MemoryLeases(clock);
      return {
        a: shared,
        b: shared,
        async expire(_key, ttlMs) {
          clock.advance(ttlMs + 1);
        },
      };
    },
  ],
  [
    'redis',
    () => {
      const prefix = `l${randomBytes(4).toString('hex')}:`;
      const a = new RedisLeases(redis.url, prefix);
      const b = new RedisLeases(redis.url, prefix);
      return {
        a,
        b,
        async expire(key) {
          // Redis keeps the expiry itself: poll until it has run out (no timing threshold).
          await eventually(`lease ${key} expired`, async () => (await a.holder(key)) === null, 20_000, 20);
        },
      };
    },
  ],
];

for (const [name, setup] of backends) {
  describe(`lease contract: ${name}`, () => {
    it('a holder hands a lease straight to another node; nobody else can transfer it', async () => {
      const { a, b } = setup();
      assert.notEqual(await a.acquire('tech:t9', 'node-a', 60_000), null);
      assert.equal(await b.transfer('tech:t9', 'node-b', 'node-c', 60_000), false, 'only the holder may transfer');
      assert.equal(await a.holder('tech:t9'), 'node-a');
      assert.equal(await a.transfer('tech:t9', 'node-a', 'node-b', 60_000), true);
      assert.equal(await b.holder('tech:t9'), 'node-b');
      assert.equal(await a.acquire('tech:t9', 'node-a', 60_000), null, 'the old holder lost it');
      assert.notEqual(await b.acquire('tech:t9', 'node-b', 60_000), null, 'the new holder renews by acquiring');
      await a.close();
      if (b !== a) await b.close();
    });

    it('one holder at a time; the holder renews, the other cannot take, renew or release it', async () => {
      const { a, b } = setup();
      assert.notEqual(await a.acquire('order:o1', 'node-a', 60_000), null);
      assert.equal(await b.acquire('order:o1', 'node-b', 60_000), null);
      assert.equal(await b.renew('order:o1', 'node-b', 60_000), false);
      assert.equal(await b.release('order:o1', 'node-b'), false);
      assert.equal(await a.holder('order:o1'), 'node-a');
      assert.notEqual(await a.acquire('order:o1', 'node-a', 60_000), null, 're-acquiring your own lease renews it');
      assert.equal(await a.renew('order:o1', 'node-a', 60_000), true);
      assert.equal(await a.release('order:o1', 'node-a'), true);
      assert.equal(await b.holder('order:o1'), null);
      assert.notEqual(await b.acquire('order:o1', 'node-b', 60_000), null, 'a released lease is free at once');
      await a.close();
      await b.close();
    });

    it('a lease that is not renewed expires and another node claims it; the old holder cannot renew it', async () => {
      const { a, b, expire } = setup();
      assert.notEqual(await a.acquire('tech:t1', 'node-a', 300), null);
      await expire('tech:t1', 300);
      assert.notEqual(await b.acquire('tech:t1', 'node-b', 60_000), null);
      assert.equal(await a.renew('tech:t1', 'node-a', 60_000), false, 'the lost lease is reported, not revived');
      assert.equal(await a.holder('tech:t1'), 'node-b');
      await a.close();
      await b.close();
    });

    it('issues a larger fencing token whenever the lease passes to another node, and only then', async () => {
      const { a, b, expire } = setup();
      const t1 = await a.acquire('tech:f1', 'node-a', 300);
      assert.ok(t1 !== null && t1 > 0);
      assert.equal(await a.acquire('tech:f1', 'node-a', 300), t1, 'renewing keeps the token');
      await expire('tech:f1', 300);
      assert.equal(await a.acquire('tech:f1', 'node-a', 300), t1, 'nobody held it in between: same token');
      await expire('tech:f1', 300);
      const t2 = await b.acquire('tech:f1', 'node-b', 60_000);
      assert.ok(t2 !== null && t2 > t1, `another node gets a larger token (${t1} -> ${t2})`);
      assert.equal(await a.acquire('tech:f1', 'node-a', 60_000), null, 'the old holder is refused');
      assert.equal(await b.transfer('tech:f1', 'node-b', 'node-a', 60_000), true);
      const t3 = await a.acquire('tech:f1', 'node-a', 60_000);
      assert.ok(t3 !== null && t3 > t2, `a transfer issues a new token (${t2} -> ${t3})`);
      await a.close();
      await b.close();
    });

    it('of many concurrent claims from two nodes, exactly one wins', async () => {
      const { a, b } = setup();
      const claims = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).acquire('sos:s1', `node-${i}`, 60_000)),
      );
      assert.equal(claims.filter((c) => c !== null).length, 1);
      const winner = claims.findIndex((c) => c !== null);
      assert.equal(await a.holder('sos:s1'), `node-${winner}`);
      await a.close();
      await b.close();
    });
  });
}

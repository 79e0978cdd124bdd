/**
 * A Redis primary that stalls (SIGSTOP) past the sentinel's down-after and then resumes:
 * the sentinel promotes the replica, but the old primary keeps answering as primary to the
 * connections it had until the sentinel turns it into a replica, 10-20 s later. A node
 * whose leases connection stayed on it and a node that connected since must not both hold
 * one technician's lease (both would run its SOS ladder: chaos seed 29 saw a rung pushed
 * twice). The leases connection follows `+switch-master` (redis-target.ts, `followFailover`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisLeases } from '../src/shared/leases-redis.js';
import type { RedisTarget } from '../src/shared/redis-target.js';
import { eventually } from './support/eventually.js';
import { SENTINEL_NAME, SentinelRedis } from './support/redis-sentinel.js';

let redis: SentinelRedis;
let target: RedisTarget;
const opened: RedisLeases[] = [];

before(async () => {
  redis = await SentinelRedis.launch();
  const [host, port] = redis.sentinels.split(':') as [string, string];
  target = { sentinels: [{ host, port: Number(port) }], name: SENTINEL_NAME };
});
after(async () => {
  for (const l of opened) await l.close();
  await redis?.destroy();
});

function leases(): RedisLeases {
  const l = new RedisLeases(target, 'split:', () => undefined);
  opened.push(l);
  return l;
}

describe('a stalled redis primary replaced under sentinel', () => {
  it('never lets a node on the old primary and a node on the new one hold the same lease', async () => {
    const stayed = leases();
    // Connected (and so attached to the old primary) before the stall.
    assert.notEqual(await stayed.acquire('warm-up', 'node-2', 10_000), null);
    const old = await redis.primary();
    old.pause();
    try {
      await eventually(
        'the sentinel names another primary',
        async () => (await redis.primaryPort()) !== old.port,
        30_000,
      );
    } finally {
      old.resume();
    }
    // The old primary answers again, still as primary, for several seconds; the nodes ask
    // a moment after the failover, as the sweeper and the renewals of seed 29 did.
    assert.equal(await redis.role(old), 'master');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await redis.role(old), 'master', 'the old primary still takes writes');
    const fresh = leases();
    const tokens: Array<number | null> = [];
    // Either may ask first; whichever does, the other must be refused.
    tokens.push(await stayed.acquire('tech:1', 'node-2', 10_000));
    tokens.push(await fresh.acquire('tech:1', 'node-1', 10_000));
    assert.equal(
      tokens.filter((t) => t !== null).length,
      1,
      `exactly one node holds the lease (tokens ${JSON.stringify(tokens)})`,
    );
    // And a renewal does not give it back to the other side either.
    const renewedByStayed = await stayed.renew('tech:1', 'node-2', 10_000);
    const renewedByFresh = await fresh.renew('tech:1', 'node-1', 10_000);
    assert.ok(!(renewedByStayed && renewedByFresh), 'both renewed the same lease');
  });
});

/**
 * What a ping costs in Redis on a real node in Redis mode, counted by the server itself
 * (`INFO commandstats` before and after N pings): exactly one GEOADD and one HSET per
 * accepted position (the live-position index), sent without the ping waiting for them;
 * everything else (lease renewals, mirrored positions, tails) does not grow with pings.
 * The figure is printed for the README.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import type { ServerProcess } from './support/server-process.js';

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(1, { RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' });
});
after(async () => {
  await cluster?.destroy();
});

/** Calls per command name, from `INFO commandstats`. */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

describe('redis commands per ping', () => {
  it('costs one GEOADD and one HSET per accepted ping, nothing else per ping', async (t) => {
    const [node] = cluster.nodes as [ServerProcess];
    const redis = new Redis(cluster.redis.url);
    try {
      const device = await node.device('cmd-tech');
      let ts = Date.now() - 600_000;
      let lat = 43.6;
      // A walk of 1 m per 100 ms: plausible, so no alert adds Redis writes of its own.
      const ping = () => {
        ts += 100;
        lat += 1e-5;
        return device.ping({ ts, lat, lon: 1.44 });
      };
      // Warm up: the node takes the technician over and indexes its first position.
      assert.equal((await ping()).t, 'ack');
      let ownHgets = 0;
      const indexed = async (): Promise<boolean> => {
        ownHgets++;
        return (await redis.hget('fieldtrack:geo:fix', 'cmd-tech'))?.endsWith(`,${ts}`) === true;
      };
      await eventually('technician indexed', indexed);

      const N = 1000;
      const before = await commandCalls(redis);
      ownHgets = 0;
      for (let i = 0; i < N; i += 50) {
        const replies = await Promise.all(Array.from({ length: 50 }, ping));
        for (const r of replies) assert.equal(r.t, 'ack');
      }
      // Fire-and-forget writes land shortly after the acks.
      await eventually('every position indexed', indexed);
      const after = await commandCalls(redis);
      // The INFO and HGET calls of this test are not the node's.
      const own = (name: string): number => (name === 'hget' ? ownHgets : 0);
      const delta = (name: string): number => (after.get(name) ?? 0) - (before.get(name) ?? 0) - own(name);
      let total = 0;
      const others: string[] = [];
      for (const name of after.keys()) {
        if (name === 'info') continue;
        total += delta(name);
        if (name !== 'geoadd' && name !== 'hset' && delta(name) > 0) others.push(`${name}=${delta(name)}`);
      }
      assert.equal(delta('geoadd'), N);
      assert.equal(delta('hset'), N);
      const rest = total - 2 * N;
      assert.ok(rest < N / 4, `commands that are not per ping grew with pings: ${others.join(' ')}`);
      t.diagnostic(
        `redis commands per ping: ${(total / N).toFixed(3)} (${N} pings: geoadd=${N} hset=${N}, other=${rest}: ${others.join(' ')})`,
      );
      await device.close();
    } finally {
      redis.disconnect();
    }
  });
});

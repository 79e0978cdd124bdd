/**
 * Fencing against a real redis-server: two "nodes" (their own connections, lease tables
 * and fencing tokens) share one Redis. Node A takes a technician's lease, node B takes it
 * after it ran out; from then on every alert-feed append and state-mirror write that A
 * makes, or had queued, is refused by the Redis scripts atomically and counted, and
 * reported with the record and token it carried, while B's go through. A node that re-takes a lease nobody held in between keeps writing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Alert } from '../src/protocol.js';
import { RedisAlertFeed } from '../src/shared/alert-feed-redis.js';
import { FenceTokens, type StaleRecord, type StaleWrite } from '../src/shared/fencing.js';
import { RedisLeases } from '../src/shared/leases-redis.js';
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

/** One node's view: its leases, tokens, feed and mirror, and the stale writes it was refused. */
function node(prefix: string, id: string) {
  const refused: StaleWrite[] = [];
  const fences = new FenceTokens((what) => refused.push(what));
  // What the cluster is told of each refusal: the record and the token the write carried.
  const records: StaleRecord[] = [];
  fences.onRefused = (r) => records.push(r);
  const leases = new RedisLeases(redis.url, prefix);
  const feed = new RedisAlertFeed({ url: redis.url, prefix, maxLen: 1000, fences });
  const mirror = new RedisStateMirror(redis.url, prefix, undefined, undefined, fences);
  return {
    refused,
    records,
    feed,
    mirror,
    async take(tech: string, ttlMs: number): Promise<number | null> {
      const token = await leases.acquire(`tech:${tech}`, id, ttlMs);
      if (token !== null) fences.set(tech, token);
      return token;
    },
    async close() {
      await Promise.all([leases.close(), feed.close(), mirror.close()]);
    },
  };
}

const sos = (id: string, level: number): Alert => ({
  id,
  kind: 'sos',
  level,
  state: 'open',
  tech: 'ft',
  ts: 1_700_000_000_000,
});

describe('fenced writes in redis', () => {
  it('refuses every write of a node whose lease passed to another, queued ones included', async () => {
    const prefix = `f${randomBytes(4).toString('hex')}:`;
    const a = node(prefix, 'node-a');
    const b = node(prefix, 'node-b');
    const ta = await a.take('ft', 300);
    assert.notEqual(ta, null);
    await a.feed.append(sos('s1', 1));
    a.mirror.putOrder('ft', 'o1', { id: 'o1', state: 'departed' });
    await a.mirror.flush();

    await eventually('lease ran out', async () => (await raw.get(`${prefix}lease:tech:ft`)) === null, 20_000, 20);
    const tb = await b.take('ft', 60_000);
    assert.ok(tb !== null && ta !== null && tb > ta);

    // A wakes up and writes what it had: a duplicate rung, an order, a position.
    await assert.rejects(a.feed.append(sos('s1', 2)), { name: 'StaleWriteError' });
    a.mirror.putOrder('ft', 'o1', { id: 'o1', state: 'arrived' });
    a.mirror.putPosition('ft', { pos: { ts: 1, lat: 1, lon: 1 }, quietSince: 1 });
    await a.mirror.flush();
    assert.deepEqual(a.refused.sort(), ['alert', 'order', 'position']);
    // Each refusal carries what it would have written, so the cluster can get it to the owner.
    const byKind = new Map(a.records.map((r) => [r.what, r]));
    assert.deepEqual(byKind.get('alert'), { what: 'alert', tech: 'ft', token: ta, alert: sos('s1', 2) });
    assert.deepEqual(byKind.get('order'), {
      what: 'order',
      tech: 'ft',
      token: ta,
      id: 'o1',
      value: { id: 'o1', state: 'arrived' },
    });
    assert.deepEqual(byKind.get('position'), { what: 'position', tech: 'ft', token: ta });

    // Nothing of it landed: B's view is what A wrote while it held the lease.
    const open = await b.feed.snapshot();
    assert.equal(open.alerts.find((x) => x.id === 's1')?.level, 1);
    assert.equal(await raw.xlen(`${prefix}alerts:stream`), 1);
    assert.equal(JSON.parse((await raw.hget(`${prefix}t:ft:o`, 'o1')) ?? '{}').state, 'departed');
    assert.equal(await raw.get(`${prefix}t:ft:p`), null);

    // B, the holder, writes.
    await b.feed.append(sos('s1', 2));
    b.mirror.putOrder('ft', 'o1', { id: 'o1', state: 'arrived' });
    await b.mirror.flush();
    assert.deepEqual(b.refused, []);
    assert.deepEqual(b.records, []);
    assert.equal((await b.feed.snapshot()).alerts.find((x) => x.id === 's1')?.level, 2);
    assert.equal(JSON.parse((await raw.hget(`${prefix}t:ft:o`, 'o1')) ?? '{}').state, 'arrived');
    await a.close();
    await b.close();
  });

  it('refuses a write with no token once a technician was ever leased, and lets the same holder resume after a lapse', async () => {
    const prefix = `f${randomBytes(4).toString('hex')}:`;
    const a = node(prefix, 'node-a');
    const never = node(prefix, 'node-n');
    // No lease was ever issued for this technician: a tokenless write passes (fresh technician).
    await never.feed.append(sos('s0', 1));
    const t = await a.take('ft', 300);
    assert.notEqual(t, null);
    await assert.rejects(never.feed.append(sos('s0', 2)), { name: 'StaleWriteError' });
    await eventually('lease ran out', async () => (await raw.get(`${prefix}lease:tech:ft`)) === null, 20_000, 20);
    // Nobody took it in between: A's queued writes still count once it has it again.
    assert.equal(await a.take('ft', 60_000), t);
    await a.feed.append(sos('s0', 2));
    assert.deepEqual(a.refused, []);
    await a.close();
    await never.close();
  });
});

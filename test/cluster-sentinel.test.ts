/**
 * Redis failover under two real fieldtrack nodes configured with REDIS_SENTINELS: a
 * primary, its replica and Debian's redis-sentinel on loopback. A device on node A streams
 * pings and has an open SOS and an order; the primary is killed with kill -9 while the pings
 * go on. The sentinel promotes the replica, both nodes follow it, and: the SOS ladder goes
 * on (level 2 once, on node B's console), an order change and a new SOS made after the
 * failover reach the other node, and every ping acked during it is in A's track.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, OrderView, TrackPoint } from '../src/protocol.js';
import { launchOnSentinel } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import type { SentinelRedis } from './support/redis-sentinel.js';
import type { ServerProcess } from './support/server-process.js';

const SITE = PLACES.milan;
let redis: SentinelRedis;
let nodes: ServerProcess[] = [];
let destroy = async (): Promise<void> => {};

before(async () => {
  ({ redis, nodes, destroy } = await launchOnSentinel(2, {
    SOS_LEVEL2_MS: '15000',
    SOS_LEVEL3_MS: '600000',
    SOS_SLA_MS: '900000',
  }));
});
after(() => destroy());

describe('redis primary killed under sentinel', () => {
  it('follows the new primary: the ladder goes on, later changes reach every node, acked pings stay', async () => {
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    const seen: Alert[] = [];
    const consoleB = await b.newSafety('op-b');
    consoleB.on('push', (m: { t: string; alert?: Alert }) => {
      if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
    });
    await consoleB.connect();
    const tech = 'sen-tech';
    const device = await a.device(tech);
    assert.equal((await device.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);
    const put = await b.http('PUT', '/v1/orders/sen-order', {
      role: 'dispatch',
      body: { technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    const sos = await device.sos({ ts: Date.now(), ...SITE });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const incident = (sos as unknown as { incident: string }).incident;
    await eventually('console on B sees the SOS', () => seen.some((x) => x.id === incident));

    // Pings keep coming while the primary dies and the replica takes over.
    const acked: number[] = [];
    let streaming = true;
    let ts = Date.now();
    const stream = (async () => {
      while (streaming) {
        ts = Math.max(ts + 1, Date.now());
        const reply = await device.ping({ ts, ...SITE });
        if (reply.t === 'ack') acked.push(ts);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const before = await redis.primaryPort();
    await (redis.servers.find((s) => s.port === before) as { kill(): Promise<void> }).kill();
    await eventually('sentinel promoted the replica', async () => (await redis.primaryPort()) !== before, 60_000, 200);

    // After the failover: an order change and a new technician's SOS reach the other node.
    const departed = await eventually(
      'depart served after the failover',
      async () => {
        const r = await device.depart('sen-order');
        return r.t === 'ack' ? r : undefined;
      },
      30_000,
      500,
    );
    assert.equal(departed.t, 'ack');
    await eventually('B sees the order departed', async () => {
      const r = await b.http('GET', '/v1/orders/sen-order', { role: 'dispatch' });
      return r.status === 200 && (r.body as OrderView).state === 'departed';
    });
    const other = await b.device('sen-tech-2');
    const sos2 = await other.sos({ ts: Date.now(), ...SITE });
    assert.equal(sos2.t, 'ack', JSON.stringify(sos2));
    const incident2 = (sos2 as unknown as { incident: string }).incident;
    await eventually('B sees the SOS sent after the failover', () => seen.some((x) => x.id === incident2));

    // The ladder of the SOS opened before the failover goes on, once.
    await eventually('first SOS reaches level 2', () => seen.some((x) => x.id === incident && x.level === 2), 60_000);
    streaming = false;
    await stream;
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(seen.filter((x) => x.id === incident && x.state === 'open' && x.level === 2).length, 1);

    await eventually('every acked ping in A’s track', async () => {
      const res = await a.http('GET', `/v1/technicians/${tech}/track?from=${acked[0]}&to=${acked.at(-1)}`, {
        role: 'dispatch',
      });
      if (res.status !== 200) return false;
      const got = new Set((res.body as { points: TrackPoint[] }).points.map((p) => p[0]));
      return acked.every((t) => got.has(t));
    });
    await Promise.all([consoleB.close(), device.close(), other.close()]);
  });
});

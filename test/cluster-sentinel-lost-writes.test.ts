/**
 * A Redis failover that loses acked writes, with real processes: two fieldtrack nodes on a
 * primary, its replica and Debian's redis-sentinel. Replication is held back (Redis
 * replicates asynchronously; here the replica's link stays up but receives nothing), then
 * node A acks an operator's ack of an SOS, a device's `depart` and a second technician's
 * SOS, all of which reach only the primary. The primary is killed; the sentinel promotes
 * the replica that lacks them. Node A writes them again (shared resync), and node A is then
 * killed with kill -9, so node B takes both technicians over from Redis alone: the
 * acknowledged SOS must not escalate, the order must be departed, and the second SOS must
 * climb its ladder on B.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, OrderView } from '../src/protocol.js';
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
  ({ redis, nodes, destroy } = await launchOnSentinel(
    2,
    {
      SOS_LEVEL2_MS: '15000',
      SOS_LEVEL3_MS: '600000',
      SOS_SLA_MS: '900000',
      OFFLINE_MS: '600000',
    },
    { holdableReplication: true },
  ));
});
after(() => destroy());

describe('redis failover to a replica that lacks the last acked writes', () => {
  it('loses no acked SOS ack, order change or alert', async () => {
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    const seen: Alert[] = [];
    const consoleB = await b.newSafety('op-b');
    consoleB.on('push', (m: { t: string; alert?: Alert; alerts?: Alert[] }) => {
      if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
      if (m.t === 'snapshot' && m.alerts !== undefined) seen.push(...m.alerts);
    });
    await consoleB.connect();

    const first = await a.device('lost-1');
    assert.equal((await first.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === 'lost-1', 30_000);
    const put = await b.http('PUT', '/v1/orders/lost-o1', {
      role: 'dispatch',
      body: { technician: 'lost-1', ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    const second = await a.device('lost-2');
    assert.equal((await second.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === 'lost-2', 30_000);
    const sos1 = await first.sos({ ts: Date.now(), ...SITE });
    assert.equal(sos1.t, 'ack', JSON.stringify(sos1));
    const incident1 = (sos1 as unknown as { incident: string }).incident;
    await eventually('B sees the first SOS', () => seen.some((x) => x.id === incident1));

    // From here the replica receives nothing: what follows is acked from the primary alone.
    const [primary, replica] = redis.servers as [(typeof redis.servers)[0], (typeof redis.servers)[0]];
    await eventually(
      'the replica has caught up',
      async () => (await redis.replicationOffset(replica)) >= (await redis.replicationOffset(primary)),
      10_000,
      100,
    );
    redis.holdReplication();
    const ack = await consoleB.ack(incident1);
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    assert.equal((await first.depart('lost-o1')).t, 'ack');
    const sos2 = await second.sos({ ts: Date.now(), ...SITE });
    assert.equal(sos2.t, 'ack', JSON.stringify(sos2));
    const incident2 = (sos2 as unknown as { incident: string }).incident;
    await eventually('B sees the second SOS', () => seen.some((x) => x.id === incident2));
    assert.ok(
      (await redis.replicationOffset(primary)) > (await redis.replicationOffset(replica)),
      'the replica lacks the writes acked since replication was held',
    );

    // The primary dies; the sentinel promotes the replica that lacks them.
    const resynced = a.waitForLog(
      (l) => l.msg === 'shared resync after a redis reconnection: what redis lacked was written again',
      60_000,
    );
    await primary.kill();
    await eventually('sentinel promoted the replica', async () => (await redis.primary()) === replica, 60_000, 200);
    const pass = await resynced;
    assert.ok((pass.alerts as number) >= 2, `A wrote both alerts again: ${JSON.stringify(pass)}`);

    // A dies too: B has nothing but Redis to take both technicians over from.
    await a.crash();
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === 'lost-1', 60_000);
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === 'lost-2', 60_000);
    await eventually(
      'the second SOS climbs to level 2 on B',
      () => seen.some((x) => x.id === incident2 && x.state === 'open' && x.level === 2),
      60_000,
    ).catch((err: Error) => {
      const about = (l: Record<string, unknown>) => l.tech === 'lost-2' || l.alert === incident2 || l.level === 40;
      throw new Error(
        `${err.message}\nB's console saw: ${JSON.stringify(seen.filter((x) => x.id === incident2))}\n` +
          `B's log: ${b.logs
            .filter(about)
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
      );
    });
    const order = await b.http('GET', '/v1/orders/lost-o1', { role: 'dispatch' });
    assert.equal(order.status, 200, order.text);
    assert.equal((order.body as OrderView).state, 'departed');
    assert.deepEqual(
      seen.filter((x) => x.id === incident1 && x.state === 'open' && x.level >= 2).map((x) => x.level),
      [],
      'the acknowledged SOS escalated',
    );
    await Promise.all([consoleB.close(), first.close().catch(() => undefined), second.close().catch(() => undefined)]);
  });
});

/**
 * Writes Redis lost, written again (cluster/resync.ts), on real processes: two nodes on one
 * real redis-server. A device on node A departs and sends an SOS, both acked and in Redis.
 * Then Redis loses them, as a replica promoted by Sentinel lacks the last writes its old
 * primary acked (here: the keys are deleted), and every client connection is cut, as a
 * failover does. When A's connection comes back, A writes again what it runs and Redis
 * lacks: the open SOS in the alert feed (so B's console has it), the order and the position
 * in the state mirror (so a node that takes the technician over resumes from them).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Alert } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const ENV = QUIET_DEADLINES_ENV;
const SITE = PLACES.paris;
const P = 'fieldtrack:';

let cluster: Cluster;
let raw: Redis;
before(async () => {
  cluster = await Cluster.launch(2, ENV);
  raw = new Redis(cluster.redis.url);
});
after(async () => {
  raw?.disconnect();
  await cluster?.destroy();
});

describe('redis losing acked writes', () => {
  it('gets them again from the node that runs the technician once its connection is back', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'resync-tech';
    const order = 'resync-order';
    const onA = await a.device(tech);
    assert.equal((await onA.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);
    const put = await b.http('PUT', `/v1/orders/${order}`, {
      role: 'dispatch',
      body: { technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    assert.equal((await onA.depart(order)).t, 'ack');
    const sos = await onA.sos({ ts: Date.now(), ...SITE, note: 'just before the failover' });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const incident = (sos as unknown as { incident: string }).incident;

    const orderInRedis = async (): Promise<string | undefined> => {
      const orders = (await raw.hvals(`${P}t:${tech}:o`)).map((v) => JSON.parse(v) as { id: string; state: string });
      return orders.find((o) => o.id === order)?.state;
    };
    await eventually('the SOS, the order and the position in redis', async () => {
      const [alert, position] = await Promise.all([raw.hget(`${P}alerts:open`, incident), raw.get(`${P}t:${tech}:p`)]);
      return alert !== null && position !== null && (await orderInRedis()) === 'departed';
    });

    // The writes are lost, and every client is cut off, as in a failover.
    await raw.hdel(`${P}alerts:open`, incident);
    await raw.del(`${P}t:${tech}:o`, `${P}t:${tech}:p`);
    assert.equal(await raw.hget(`${P}alerts:open`, incident), null);
    await raw.call('CLIENT', 'KILL', 'TYPE', 'normal');

    await eventually('the SOS back in the open alerts', async () => {
      const json = await raw.hget(`${P}alerts:open`, incident);
      return json !== null && (JSON.parse(json) as Alert).state === 'open';
    });
    await eventually('the order back in the mirror', async () => (await orderInRedis()) === 'departed');
    await eventually('the position back in the mirror', async () => (await raw.get(`${P}t:${tech}:p`)) !== null);
    await a.waitForLog(
      (l) => l.msg === 'shared resync after a redis reconnection: what redis lacked was written again',
    );

    // A console on B, connecting now, gets the SOS in its snapshot.
    const consoleB = await b.newSafety('op-b');
    const snapshot = new Promise<Alert[]>((resolve) =>
      consoleB.on('push', (m: { t: string; alerts?: Alert[] }) => {
        if (m.t === 'snapshot') resolve(m.alerts ?? []);
      }),
    );
    await consoleB.connect();
    await eventually('the SOS on the console of B', async () => {
      const inSnapshot = (await snapshot).some((x) => x.id === incident);
      const listed = await b.http('GET', '/v1/alerts?state=open', { role: 'safety' });
      return inSnapshot || (listed.body as { alerts: Alert[] }).alerts.some((x) => x.id === incident);
    });
    await Promise.all([consoleB.close(), onA.close()]);
  });
});

/**
 * Erasing a technician in multi-node mode: its device was on node A, which dies with
 * kill -9 (so its entry in the shared nearby index is left behind); `DELETE` on node B
 * (503 while A's lease has not run out, then 200) removes the technician from the shared
 * nearby index and every key the state mirror kept of it in Redis.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const P = 'fieldtrack:';
const SITE = PLACES.paris;

let cluster: Cluster;
let redis: Redis;
before(async () => {
  cluster = await Cluster.launch(2);
  redis = new Redis(cluster.redis.url);
});
after(async () => {
  await redis?.quit();
  await cluster?.destroy();
});

describe('erase in multi-node mode', () => {
  it('removes the technician from the shared nearby index and Redis state', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'cl-erase';
    const nearbyOn = async (node: ServerProcess) =>
      (
        (await node.http('GET', `/v1/nearby?lat=${SITE.lat}&lon=${SITE.lon}&radius=1000`, { role: 'dispatch' }))
          .body as { technicians: { id: string }[] }
      ).technicians.map((t) => t.id);

    const device = await a.device(tech);
    const order = { technician: tech, ...SITE, scheduledAt: Date.now(), durationMin: 30 };
    assert.equal((await a.http('PUT', '/v1/orders/cl-o1', { role: 'dispatch', body: order })).status, 200);
    assert.equal((await device.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    assert.equal((await device.depart('cl-o1')).t, 'ack');
    assert.equal((await device.checkin({ order: 'cl-o1', ts: Date.now(), ...SITE })).t, 'ack');
    assert.equal((await device.start('cl-o1')).t, 'ack');
    assert.equal((await device.complete('cl-o1')).t, 'ack');
    // The position reaches Redis with the journal's coalesced flush.
    await eventually('the mirrored position', async () => (await redis.exists(`${P}t:${tech}:p`)) === 1, 30_000);
    assert.equal(await redis.hget(`${P}order-tech`, 'cl-o1'), tech);
    await eventually('B finds it nearby', async () => (await nearbyOn(b)).includes(tech));

    await a.crash();
    // A died with the device attached: the shared index still has it.
    assert.ok((await nearbyOn(b)).includes(tech));
    assert.notEqual(await redis.zscore(`${P}geo:online`, tech), null);

    let status = 0;
    let text = '';
    await eventually(
      'the erase on B',
      async () => {
        const res = await b.http('DELETE', `/v1/technicians/${tech}`, { role: 'dispatch' });
        status = res.status;
        text = res.text;
        // 503 while A's lease runs out (the request is forwarded to A, which is dead).
        assert.ok(status === 200 || status === 503, `${status} ${text}`);
        return status === 200;
      },
      90_000,
    );
    const body = JSON.parse(text) as { id: string; erased: { technician: boolean } };
    assert.equal(body.id, tech);
    assert.equal(body.erased.technician, true);

    assert.deepEqual(await nearbyOn(b), []);
    assert.equal(await redis.zscore(`${P}geo:online`, tech), null);
    assert.equal(await redis.hget(`${P}geo:fix`, tech), null);
    assert.equal(await redis.exists(`${P}t:${tech}:p`, `${P}t:${tech}:o`), 0);
    assert.equal(await redis.hget(`${P}order-tech`, 'cl-o1'), null);
    assert.equal(await redis.sismember(`${P}busy`, tech), 0);
    assert.equal((await b.http('GET', `/v1/technicians/${tech}`, { role: 'dispatch' })).status, 404);
    await device.close().catch(() => undefined);
  });
});

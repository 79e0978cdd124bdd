/**
 * Failover across real processes: three fieldtrack nodes on one real redis-server. A
 * technician's device is on node A with an order on the way and an open SOS; A is killed
 * with kill -9, the device reconnects to node B, and B carries on: the order's deadline
 * and the SOS escalation fire there exactly once (seen on a console of node C), and an
 * operator's ack on C reaches the device on B. The time from the kill until B runs the
 * technician is measured and printed (README figure); no threshold is asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, TechnicianView } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { FAILOVER_ENV, PLACES } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const ENV = FAILOVER_ENV;

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(3, ENV);
});
after(async () => {
  await cluster?.destroy();
});

const SITE = PLACES.paris;

describe('failover after kill -9 of a node', () => {
  it('resumes the order deadline and the SOS escalation on another node exactly once', async (t) => {
    const [a, b, c] = cluster.nodes as [ServerProcess, ServerProcess, ServerProcess];
    const tech = 'fo-tech';
    const seen: Alert[] = [];
    const operator = await c.newSafety('op-c');
    operator.on('push', (m: { t: string; alert?: Alert }) => {
      if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
    });
    await operator.connect();

    const onA = await a.device(tech);
    assert.equal((await onA.ping({ ts: Date.now(), lat: SITE.lat, lon: SITE.lon })).t, 'ack');
    // Node A takes the technician over once its device is there; C sees it through A.
    const view = async (node: ServerProcess): Promise<TechnicianView | null> => {
      const res = await node.http('GET', `/v1/technicians/${tech}`, { role: 'dispatch' });
      return res.status === 200 ? (res.body as TechnicianView) : null;
    };
    await eventually('A runs the technician', async () => (await view(c))?.online === true);

    const put = await c.http('PUT', '/v1/orders/fo-order', {
      role: 'dispatch',
      body: { technician: tech, lat: SITE.lat, lon: SITE.lon, scheduledAt: Date.now(), durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    assert.equal((await onA.depart('fo-order')).t, 'ack');
    const sos = await onA.sos({ ts: Date.now(), lat: SITE.lat, lon: SITE.lon });
    assert.equal(sos.t, 'ack');
    const incident = (sos as unknown as { incident: string }).incident;
    await eventually('console on C sees the SOS', () => seen.some((x) => x.id === incident));

    const killedAt = Date.now();
    await a.crash();
    const onB = await b.newDevice(tech);
    const statuses: string[] = [];
    onB.on('push', (m: { t: string; state?: string }) => {
      if (m.t === 'sos_status' && m.state !== undefined) statuses.push(m.state);
    });
    await onB.connect();
    assert.equal((await onB.ping({ ts: Date.now(), lat: SITE.lat, lon: SITE.lon })).t, 'ack');
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
    const failoverMs = Date.now() - killedAt;
    t.diagnostic(`failover: node B runs the technician ${failoverMs} ms after kill -9 of node A`);

    const onC = await view(c);
    assert.equal(onC?.activeOrder, 'fo-order');
    assert.equal(onC?.online, true);
    const order = await c.http('GET', '/v1/orders/fo-order', { role: 'dispatch' });
    assert.equal((order.body as { state: string }).state, 'departed');

    await eventually('SOS level 3 on C', () => seen.some((x) => x.id === incident && x.level === 3), 90_000);
    await eventually(
      'late_arrival on C',
      () => seen.some((x) => x.kind === 'late_arrival' && x.order === 'fo-order'),
      90_000,
    );

    const ack = await operator.ack(incident);
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    await eventually('device on B told acknowledged', () => statuses.includes('acknowledged'));
    await eventually('ack seen on C', () => seen.some((x) => x.id === incident && x.state === 'acknowledged'));

    // Exactly once: each rung of the escalation and the order's deadline appear once.
    const rungs = seen.filter((x) => x.id === incident && x.state === 'open').map((x) => x.level);
    assert.deepEqual(rungs, [1, 2, 3]);
    const late = seen.filter((x) => x.kind === 'late_arrival' && x.order === 'fo-order');
    assert.equal(late.length, 1, JSON.stringify(late));
    // Nothing fires again afterwards (a second node would have to hold the lease).
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(seen.filter((x) => x.id === incident && x.level === 3 && x.state === 'open').length, 1);
    assert.equal(seen.filter((x) => x.kind === 'late_arrival').length, 1);
    await Promise.all([operator.close(), onB.close()]);
  });
});

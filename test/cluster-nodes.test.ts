/**
 * Two real fieldtrack processes sharing one real redis-server behave as one server:
 * nearby search finds technicians of both nodes; an SOS raised on node A reaches a console
 * on node B, an ack on B reaches the device on A and stops escalation, and both consoles
 * see the same changes in the same order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, NearbyTechnician } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2);
});
after(async () => {
  await cluster?.destroy();
});

// Around Place de la Concorde: ~111 m per 0.001° of latitude.
const SOS = { lat: 48.8656, lon: 2.3212 };

describe('two nodes, one redis', () => {
  it('GET /v1/nearby on either node finds online technicians of both, nearest first', async () => {
    const [a, b] = cluster.nodes as [NonNullable<(typeof cluster.nodes)[0]>, NonNullable<(typeof cluster.nodes)[0]>];
    const onA = await a.device('near-a');
    const onB = await b.device('near-b');
    const now = Date.now();
    assert.equal((await onA.ping({ ts: now, lat: SOS.lat + 0.003, lon: SOS.lon })).t, 'ack'); // ~333 m
    assert.equal((await onB.ping({ ts: now, lat: SOS.lat + 0.001, lon: SOS.lon })).t, 'ack'); // ~111 m
    const path = `/v1/nearby?lat=${SOS.lat}&lon=${SOS.lon}&radius=1000`;
    const ids = async (node: typeof a): Promise<string[]> => {
      const res = await node.http('GET', path, { role: 'safety' });
      assert.equal(res.status, 200);
      return (res.body as { technicians: NearbyTechnician[] }).technicians.map((t) => t.id);
    };
    await eventually('both technicians visible from A', async () => (await ids(a)).join() === 'near-b,near-a');
    assert.deepEqual(await ids(b), ['near-b', 'near-a']);
    const found = ((await a.http('GET', path, { role: 'safety' })).body as { technicians: NearbyTechnician[] })
      .technicians;
    assert.ok(Math.abs((found[0]?.dist ?? 0) - 111) <= 2, `near-b at ~111 m, got ${found[0]?.dist}`);
    // Offline technicians are not offered for an SOS.
    await onB.close();
    await eventually('near-b gone once offline', async () => (await ids(a)).join() === 'near-a');
    await onA.close();
  });

  it('an SOS on node A reaches a console on node B; an ack on B reaches the device on A', async () => {
    const [a, b] = cluster.nodes as [NonNullable<(typeof cluster.nodes)[0]>, NonNullable<(typeof cluster.nodes)[0]>];
    const seenA: Alert[] = [];
    const seenB: Alert[] = [];
    const consoleA = await a.newSafety('op-a');
    const consoleB = await b.newSafety('op-b');
    for (const [c, seen] of [
      [consoleA, seenA],
      [consoleB, seenB],
    ] as const) {
      c.on('push', (m: { t: string; alert?: Alert }) => {
        if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
      });
      await c.connect();
    }
    const device = await a.device('sos-tech');
    const statuses: string[] = [];
    device.on('push', (m: { t: string; state?: string }) => {
      if (m.t === 'sos_status' && m.state !== undefined) statuses.push(m.state);
    });
    const reply = await device.sos({ ts: Date.now(), lat: SOS.lat, lon: SOS.lon });
    assert.equal(reply.t, 'ack');
    const incident = (reply as unknown as { incident: string }).incident;
    assert.equal(typeof incident, 'string');

    await eventually('console on B sees the SOS', () => seenB.some((x) => x.id === incident));
    assert.equal(seenB.find((x) => x.id === incident)?.kind, 'sos');

    const ack = await consoleB.ack(incident);
    assert.equal(ack.t, 'ack', `ack on B answered ${JSON.stringify(ack)}`);
    await eventually('device on A told acknowledged', () => statuses.includes('acknowledged'));
    await eventually('console on A sees the ack', () =>
      seenA.some((x) => x.id === incident && x.state === 'acknowledged'),
    );
    await eventually('console on B sees the ack', () =>
      seenB.some((x) => x.id === incident && x.state === 'acknowledged'),
    );
    // Both consoles saw this incident's changes in the same order.
    const order = (seen: Alert[]): string[] =>
      seen.filter((x) => x.id === incident).map((x) => `${x.state}/${x.level}`);
    assert.deepEqual(order(seenA), order(seenB));

    // The alert list of node B includes node A's alert, as it now is.
    const list = await b.http('GET', '/v1/alerts?state=acknowledged', { role: 'safety' });
    assert.ok((list.body as { alerts: Alert[] }).alerts.some((x) => x.id === incident));

    const resolved = await consoleB.resolve(incident, 'called back');
    assert.equal(resolved.t, 'ack');
    await eventually('device on A told resolved', () => statuses.includes('resolved'));
    await Promise.all([consoleA.close(), consoleB.close(), device.close()]);
  });

  it('a device moving to another live node takes its technician and order along', async () => {
    const [a, b] = cluster.nodes as [NonNullable<(typeof cluster.nodes)[0]>, NonNullable<(typeof cluster.nodes)[0]>];
    const tech = 'move-tech';
    const onA = await a.device(tech);
    assert.equal((await onA.ping({ ts: Date.now(), lat: SOS.lat, lon: SOS.lon })).t, 'ack');
    const online = async (node: typeof a): Promise<boolean> => {
      const res = await node.http('GET', `/v1/technicians/${tech}`, { role: 'dispatch' });
      return res.status === 200 && (res.body as { online: boolean }).online;
    };
    await eventually('A runs the technician', () => online(b));
    // Dispatch on B: the order goes to A, where the technician runs.
    const put = await b.http('PUT', '/v1/orders/move-order', {
      role: 'dispatch',
      body: { technician: tech, lat: SOS.lat, lon: SOS.lon, scheduledAt: Date.now(), durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    assert.equal((await onA.depart('move-order')).t, 'ack');
    await onA.close();

    const onB = await b.device(tech);
    await eventually('B runs the technician', () => online(a));
    const checkin = await onB.checkin({ order: 'move-order', ts: Date.now(), lat: SOS.lat, lon: SOS.lon });
    assert.equal(checkin.t, 'ack', JSON.stringify(checkin));
    assert.equal((await onB.start('move-order')).t, 'ack');
    const order = await a.http('GET', '/v1/orders/move-order', { role: 'dispatch' });
    assert.equal(order.status, 200);
    assert.equal((order.body as { state: string }).state, 'in_service');
    assert.ok(a.logs.some((l) => l.msg === 'technician handed over' && l.tech === tech));
    await onB.close();
  });
});

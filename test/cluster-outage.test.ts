/**
 * Redis stopped and restarted mid-stream under two real fieldtrack nodes: the node keeps
 * acking its device's pings and an SOS raised during the outage, reports Redis on
 * /readyz, and once Redis is back everything acked reaches the other node (the SOS on its
 * console and alert list, the last position in nearby search) and every acked ping is in
 * the track. Nothing acked is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, NearbyTechnician, TrackPoint } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2, { SOS_LEVEL2_MS: '600000', SOS_LEVEL3_MS: '600000', SOS_SLA_MS: '600000' });
});
after(async () => {
  await cluster?.destroy();
});

const SITE = PLACES.lyon;

/** `/readyz`'s body. */
interface Readiness {
  down: string[];
  components: Record<string, { ok: boolean; devices?: string }>;
  devices: { state: string; served: boolean };
}

describe('redis outage mid-stream', () => {
  it('keeps serving, reports it on /readyz, and catches up with nothing acked lost', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'out-tech';
    const seenB: Alert[] = [];
    const operator = await b.newSafety('op-b');
    operator.on('push', (m: { t: string; alert?: Alert }) => {
      if (m.t === 'alert' && m.alert !== undefined) seenB.push(m.alert);
    });
    await operator.connect();
    const device = await a.device(tech);

    const acked: number[] = [];
    let ts = Date.now() - 60_000;
    const ping = async (): Promise<void> => {
      ts += 100;
      const reply = await device.ping({ ts, lat: SITE.lat + (ts % 1000) / 1e6, lon: SITE.lon });
      assert.equal(reply.t, 'ack', JSON.stringify(reply));
      acked.push(ts);
    };
    for (let i = 0; i < 20; i++) await ping();
    assert.equal((await a.http('GET', '/readyz')).status, 200);

    await cluster.redis.stop();
    for (let i = 0; i < 20; i++) await ping();
    // In the pings' time line: the SOS's fix is a position too, and later pings are newer.
    ts += 100;
    const sos = await device.sos({ ts, lat: SITE.lat, lon: SITE.lon, note: 'during outage' });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const incident = (sos as unknown as { incident: string }).incident;
    for (let i = 0; i < 20; i++) await ping();
    await eventually('A reports redis down on /readyz', async () => {
      const r = await a.http('GET', '/readyz');
      return r.status === 503 && (r.body as { down: string[] }).down.includes('redis');
    });
    // Per component: only Redis is down, and A still serves its devices (from its journal).
    const ready = (await a.http('GET', '/readyz')).body as Readiness;
    assert.deepEqual(ready.down, ['redis'], JSON.stringify(ready));
    assert.equal(ready.components.redis?.devices, 'degraded');
    assert.equal(ready.components.journal?.ok, true);
    assert.deepEqual(ready.devices, { state: 'degraded', served: true });
    // What a load balancer routing devices asks: this node still takes them.
    const forDevices = await a.http('GET', '/readyz?for=devices');
    assert.equal(forDevices.status, 200, forDevices.text);

    await cluster.redis.start();
    for (let i = 0; i < 20; i++) await ping();
    await eventually('A ready again', async () => (await a.http('GET', '/readyz')).status === 200);
    assert.deepEqual(((await a.http('GET', '/readyz')).body as Readiness).devices, { state: 'served', served: true });

    // The SOS acked during the outage reached the other node's console and list.
    await eventually('SOS on the console of B', () => seenB.some((x) => x.id === incident), 60_000);
    const list = await b.http('GET', '/v1/alerts?state=open', { role: 'safety' });
    assert.ok((list.body as { alerts: Alert[] }).alerts.some((x) => x.id === incident));
    // The newest acked position is what nearby search on B finds.
    const last = acked.at(-1);
    await eventually('nearby on B shows the newest position', async () => {
      const res = await b.http('GET', `/v1/nearby?lat=${SITE.lat}&lon=${SITE.lon}&radius=5000`, { role: 'safety' });
      return (res.body as { technicians: NearbyTechnician[] }).technicians.some((t) => t.id === tech && t.ts === last);
    });
    // Every acked ping is in the track (node A's embedded archive: each node archives what it
    // served; a shared CLICKHOUSE_URL gives one track across nodes).
    await eventually(
      'every acked ping in the track',
      async () => {
        const res = await a.http('GET', `/v1/technicians/${tech}/track?from=${acked[0]}&to=${last}`, {
          role: 'dispatch',
        });
        if (res.status !== 200) return false;
        const got = new Set((res.body as { points: TrackPoint[] }).points.map((p) => p[0]));
        return acked.every((t) => got.has(t));
      },
      60_000,
    );
    await Promise.all([operator.close(), device.close()]);
  });
});

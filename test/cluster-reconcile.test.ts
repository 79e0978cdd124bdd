/**
 * Journal reconciliation on real processes: two nodes on one real redis-server. A device on
 * node A has an order; Redis is stopped; the device departs, moves and sends an SOS, all
 * acked by A (journaled, its Redis writes queued); A is killed with kill -9 (the queue is
 * lost) and Redis is started again. Node B takes the technician over from what Redis has,
 * which lacks all three. A is restarted on its DATA_DIR: it finds in its journal what
 * Redis lacks and, B holding the lease, sends it to B, which merges it under its own
 * fencing token. Then B's console has the SOS, B answers the order as departed and the
 * position as the newest, and an operator's ack on B reaches the device.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, OrderView, TechnicianView } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const ENV = QUIET_DEADLINES_ENV;
const SITE = PLACES.paris;

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2, ENV);
});
after(async () => {
  await cluster?.destroy();
});

describe('a node killed while redis is down', () => {
  it('writes what its journal holds and redis lacks once it is restarted', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'rec-tech';
    const order = 'rec-order';
    const seen: Alert[] = [];
    const consoleB = await b.newSafety('op-b');
    consoleB.on('push', (m: { t: string; alert?: Alert; alerts?: Alert[] }) => {
      if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
      if (m.t === 'snapshot') seen.push(...(m.alerts ?? []));
    });
    await consoleB.connect();

    const onA = await a.device(tech);
    assert.equal((await onA.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);
    const put = await b.http('PUT', `/v1/orders/${order}`, {
      role: 'dispatch',
      body: { technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);

    await cluster.redis.stop();
    const departed = await onA.depart(order);
    assert.equal(departed.t, 'ack', JSON.stringify(departed));
    const lastTs = Date.now();
    const moved = { lat: SITE.lat + 0.01, lon: SITE.lon };
    const sos = await onA.sos({ ts: lastTs, ...moved, note: 'during the outage' });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const incident = (sos as unknown as { incident: string }).incident;
    // Positions are journaled at most every 5 s (coalesced): let the newest one be written.
    await new Promise((r) => setTimeout(r, 6000));
    await a.crash();
    await onA.close();
    await cluster.redis.start();

    // B takes the technician over from Redis, which lacks the three changes: nothing of
    // them reached B (this is what is lost without reconciliation).
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
    const before = await b.http('GET', `/v1/orders/${order}`, { role: 'dispatch' });
    assert.equal((before.body as OrderView).state, 'assigned', before.text);
    assert.ok(!seen.some((x) => x.id === incident), 'the SOS reached B before A restarted');

    const a2 = await cluster.startNode(a.dataDir);
    cluster.nodes.push(a2);
    await eventually('the SOS acked during the outage on the console of B', () => seen.some((x) => x.id === incident));
    await eventually('B answers the order as departed', async () => {
      const r = await b.http('GET', `/v1/orders/${order}`, { role: 'dispatch' });
      return (r.body as OrderView).state === 'departed';
    });
    const view = await b.http('GET', `/v1/technicians/${tech}`, { role: 'safety' });
    assert.equal((view.body as TechnicianView).ts, lastTs, view.text);
    assert.equal((view.body as TechnicianView).lat, moved.lat);
    const open = await b.http('GET', '/v1/alerts?state=open', { role: 'safety' });
    assert.equal((open.body as { alerts: Alert[] }).alerts.filter((x) => x.id === incident).length, 1);
    // B held the lease: A wrote nothing itself, it sent the records to B.
    await a2.waitForLog((l) => l.msg === 'journal reconciliation: sent to the owner' && l.tech === tech);

    // The device reconnects to B; an operator's ack there reaches it.
    const statuses: string[] = [];
    const onB = await b.newDevice(tech);
    onB.on('push', (m: { t: string; state?: string; incident?: string }) => {
      if (m.t === 'sos_status' && m.incident === incident && m.state !== undefined) statuses.push(m.state);
    });
    await onB.connect();
    const acked = await eventually('ack of the SOS on B', async () => {
      const r = await consoleB.ack(incident);
      return r.t === 'ack' ? r : undefined;
    });
    assert.equal(acked.t, 'ack');
    await eventually('device told acknowledged', () => statuses.includes('acknowledged'));
    // Reconciliation runs again after a restart: nothing is added twice.
    assert.equal(new Set(seen.filter((x) => x.id === incident && x.state === 'open').map((x) => x.level)).size, 1);
    await Promise.all([consoleB.close(), onB.close()]);
  });
});

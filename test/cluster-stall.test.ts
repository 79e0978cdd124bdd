/**
 * Issue 15's scenario on real processes: two nodes on one real redis-server; a device on
 * node A with an order under way and an open SOS; A is frozen with SIGSTOP for 22 s (a GC
 * pause, a VM stall and a partition look alike to the others) while SOS_LEVEL2_MS is 20 s,
 * then resumed with SIGCONT. Node B takes the technician over while A is frozen, and:
 *
 * - the SOS rises to level 2 exactly once and the silence raises exactly one `offline`
 *   alert (the woken node A, whose lease lapsed by its own monotonic clock, fires nothing
 *   and Redis refuses its stale writes);
 * - A closes the device's socket with 1001 (reconnect, maybe to another node), the device
 *   lands on B and its `depart` is served there;
 * - a console's ack on B reaches the device; an SOS sent after the stall escalates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert } from '../src/protocol.js';
import { CloseCode } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const ENV = {
  SOS_LEVEL2_MS: '20000',
  SOS_LEVEL3_MS: '600000',
  SOS_SLA_MS: '900000',
  OFFLINE_MS: '12000',
  LATE_DEPARTURE_MS: '600000',
  LATE_ARRIVAL_MS: '600000',
};
const STALL_MS = 22_000;
const SITE = PLACES.berlin;

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2, ENV);
});
after(async () => {
  for (const n of cluster?.nodes ?? []) if (n.exitCode === undefined) n.resume();
  await cluster?.destroy();
});

function incidentOf(reply: unknown): string {
  const id = (reply as { incident?: unknown }).incident;
  assert.equal(typeof id, 'string', JSON.stringify(reply));
  return id as string;
}

describe('a node frozen with SIGSTOP past its lease', () => {
  it('changes nothing when it wakes; its device lands on the owner; the ladder goes on once', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'stall-tech';
    const seen: Alert[] = [];
    const consoleB = await b.newSafety('op-b');
    consoleB.on('push', (m: { t: string; alert?: Alert }) => {
      if (m.t === 'alert' && m.alert !== undefined) seen.push(m.alert);
    });
    await consoleB.connect();

    const onA = await a.device(tech);
    const closes: number[] = [];
    onA.on('close', (code: number) => closes.push(code));
    assert.equal((await onA.ping({ ts: Date.now(), lat: SITE.lat, lon: SITE.lon })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);
    for (const [id, minutes] of [
      ['stall-order-1', 0],
      ['stall-order-2', 60],
    ] as const) {
      const put = await b.http('PUT', `/v1/orders/${id}`, {
        role: 'dispatch',
        body: { technician: tech, ...SITE, scheduledAt: Date.now() + minutes * 60_000, durationMin: 30 },
      });
      assert.equal(put.status, 200, put.text);
    }
    assert.equal((await onA.depart('stall-order-1')).t, 'ack');
    const first = incidentOf(await onA.sos({ ts: Date.now(), ...SITE }));
    await eventually('console on B sees the SOS', () => seen.some((x) => x.id === first));

    a.pause();
    try {
      await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, STALL_MS);
      await new Promise((r) => setTimeout(r, STALL_MS - 1000));
    } finally {
      a.resume();
    }

    // A wakes up: its lease lapsed by its own clock, so it tells the device to go elsewhere.
    await eventually('A closes the device with 1001', () => closes.includes(CloseCode.goingAway), 20_000);
    const statuses: string[] = [];
    const onB = await b.newDevice(tech);
    onB.on('push', (m: { t: string; state?: string }) => {
      if (m.t === 'sos_status' && m.state !== undefined) statuses.push(m.state);
    });
    await onB.connect();
    const departed = await onB.depart('stall-order-2');
    assert.equal(departed.t, 'ack', JSON.stringify(departed));

    // Whatever A had queued or timed while frozen has had time to come out by now.
    await new Promise((r) => setTimeout(r, 5000));
    const rung2 = seen.filter((x) => x.id === first && x.state === 'open' && x.level === 2);
    assert.equal(rung2.length, 1, `level 2 of the first SOS: ${JSON.stringify(rung2)}`);
    const offline = new Set(seen.filter((x) => x.kind === 'offline' && x.tech === tech).map((x) => x.id));
    assert.equal(offline.size, 1, `offline alerts of one silence: ${[...offline].join(', ')}`);

    // An operator on B acknowledges the first SOS; the device on B is told.
    const acked = await consoleB.ack(first);
    assert.equal(acked.t, 'ack', JSON.stringify(acked));
    await eventually('device on B told acknowledged', () => statuses.includes('acknowledged'));
    const resolved = await consoleB.resolve(first);
    assert.equal(resolved.t, 'ack', JSON.stringify(resolved));

    // An SOS after the stall escalates, once.
    const second = incidentOf(await onB.sos({ ts: Date.now(), ...SITE, note: 'after the stall' }));
    assert.notEqual(second, first);
    await eventually('second SOS reaches level 2', () => seen.some((x) => x.id === second && x.level === 2), 40_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(seen.filter((x) => x.id === second && x.state === 'open' && x.level === 2).length, 1);
    await Promise.all([consoleB.close(), onB.close(), onA.close()]);
  });
});

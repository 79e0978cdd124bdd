/**
 * The SOS ladder during a Redis outage, on two real nodes: the node that holds the
 * technician goes on escalating while Redis is down for everyone (nobody can take the
 * technician over meanwhile), so an SOS never passes its rung unescalated for as long as an
 * outage lasts; once Redis is back, the other node's console sees the rung exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

/** Level 2 comes due 12 s after the SOS, well into the outage (leases lapse 7 s in). */
const LEVEL2_MS = 12_000;

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2, { ...QUIET_DEADLINES_ENV, SOS_LEVEL2_MS: String(LEVEL2_MS) });
});
after(async () => {
  await cluster?.destroy();
});

describe('the SOS ladder during a redis outage', () => {
  it('climbs on the node that holds the technician, and consoles see each rung once', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'ladder-tech';
    const seenB: Alert[] = [];
    const consoleB = await b.newSafety('op-b');
    consoleB.on('push', (m: { t: string; alert?: Alert }) => {
      if (m.t === 'alert' && m.alert !== undefined) seenB.push(m.alert);
    });
    await consoleB.connect();
    const device = await a.device(tech);
    assert.equal((await device.ping({ ts: Date.now(), ...PLACES.lyon })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);

    const sos = await device.sos({ ts: Date.now(), ...PLACES.lyon, note: 'just before the outage' });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const incident = (sos as unknown as { incident: string }).incident;
    await eventually('the SOS on the console of B', () => seenB.some((x) => x.id === incident));

    await cluster.redis.stop();
    const levelOnA = async (): Promise<number | undefined> => {
      const res = await a.http('GET', '/v1/alerts?state=open', { role: 'safety' });
      return (res.body as { alerts: Alert[] }).alerts.find((x) => x.id === incident)?.level;
    };
    // Redis stays down until the rung has come and gone: 12 s after the SOS, 5 s and more after
    // the lease could last be confirmed.
    await eventually('level 2 on node A while redis is down', async () => (await levelOnA()) === 2, 30_000);
    await cluster.redis.start();

    await eventually('level 2 on the console of B', () =>
      seenB.some((x) => x.id === incident && x.level === 2 && x.state === 'open'),
    );
    // Let a renewal or two pass: a rung that had been held back would fire now.
    await new Promise((r) => setTimeout(r, 8_000));
    const rungs = seenB.filter((x) => x.id === incident && x.level === 2 && x.state === 'open');
    assert.equal(rungs.length, 1, `level 2 pushed ${rungs.length} times`);
    await Promise.all([consoleB.close(), device.close()]);
  });
});

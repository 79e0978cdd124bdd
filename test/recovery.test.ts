/**
 * kill -9 of the real server process: open SOS incidents, open alerts, orders in progress
 * and their pending deadlines come back after a restart on the same DATA_DIR, and a
 * deadline that passed while the process was down fires right after the restart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert, OrderView, SafetyPush } from '../src/client/index.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';

const HOME = PLACES.milan;

/** The first alert matching `match` among what the console was sent (snapshots and pushes). */
function waitForAlert(pushes: SafetyPush[], match: (a: Alert) => boolean): Promise<Alert> {
  return eventually('the alert on the console', () => {
    for (const m of pushes) {
      const found = (m.t === 'snapshot' ? m.alerts : [m.alert]).find(match);
      if (found) return found;
    }
    return undefined;
  });
}

describe('recovery after kill -9', () => {
  it('brings back the open SOS, the order in progress and their deadlines', async () => {
    const env = { SOS_LEVEL2_MS: '4000', SOS_LEVEL3_MS: '600000', SOS_SLA_MS: '900000', LATE_ARRIVAL_MS: '3000' };
    const first = await ServerProcess.start({ env });
    const put = await first.http('PUT', '/v1/orders/rec-1', {
      role: 'dispatch',
      body: { technician: 'tech-r1', ...HOME, scheduledAt: Date.now(), durationMin: 30 },
    });
    assert.equal(put.status, 200);
    const device = await first.device('tech-r1');
    assert.equal((await device.depart('rec-1')).t, 'ack');
    const sos = await device.sos({ ts: Date.now(), ...HOME, note: 'help' });
    assert.equal(sos.t, 'ack');
    const incident = String(sos.incident);
    await first.crash();

    // Stay down past the late_arrival deadline, so it must fire right after the restart.
    await new Promise((r) => setTimeout(r, 3500));
    const second = await ServerProcess.start({ dataDir: first.dataDir, env });
    try {
      const safety = await second.newSafety('op-r1');
      const pushes: SafetyPush[] = [];
      safety.on('push', (m) => pushes.push(m));
      await safety.connect();

      const restored = await waitForAlert(pushes, (a) => a.id === incident);
      assert.equal(restored.kind, 'sos');
      assert.equal(restored.state, 'open');
      assert.equal(restored.tech, 'tech-r1');

      await waitForAlert(pushes, (a) => a.kind === 'late_arrival' && a.order === 'rec-1');
      // The escalation deadline (4 s after the SOS) was still pending at the crash: it fires once, on time.
      const level2 = await waitForAlert(pushes, (a) => a.id === incident && a.level === 2);
      assert.equal(level2.level, 2);

      const order = (await second.http('GET', '/v1/orders/rec-1', { role: 'dispatch' })).body as OrderView;
      assert.equal(order.state, 'departed');
      assert.deepEqual(
        order.timeline.map((e) => e.state),
        ['assigned', 'departed'],
      );

      // Exactly once: one late_arrival alert for the order, and one level-2 change of the SOS
      // among everything the console was sent (the snapshot counts as one message).
      await new Promise((r) => setTimeout(r, 1500));
      const alerts = ((await second.http('GET', '/v1/alerts', { role: 'safety' })).body as { alerts: Alert[] }).alerts;
      assert.equal(alerts.filter((a) => a.kind === 'late_arrival' && a.order === 'rec-1').length, 1);
      assert.equal(alerts.filter((a) => a.kind === 'sos' && a.tech === 'tech-r1').length, 1);
      const level2Messages = pushes.filter((m) =>
        (m.t === 'snapshot' ? m.alerts : [m.alert]).some((a) => a.id === incident && a.level === 2),
      );
      assert.equal(level2Messages.length, 1, 'the level-2 rung is reached once, not once per life of the process');
      await safety.close();
    } finally {
      await second.stop();
      second.cleanup();
      first.cleanup();
    }
  });
});

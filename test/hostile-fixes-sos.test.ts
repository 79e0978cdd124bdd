/**
 * Against a real node: every fix is a position whichever message brings it (a check-in,
 * an SOS), and an SOS flood from one device stays one incident with a small console
 * snapshot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, SafetyPush, TechnicianView } from '../src/client/index.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { Inbox } from './support/inbox.js';
import { ServerProcess } from './support/server-process.js';

const HOME = PLACES.shanghai;
/** About 1.3 km north of HOME. */
const AWAY = { lat: 31.2421, lon: 121.4737 };
/** About 22 m north of HOME: inside the 50 m check-in radius. */
const DOORSTEP = { lat: 31.2306, lon: 121.4737 };

describe('hostile and unlucky input on a real node', () => {
  let server: ServerProcess;
  before(async () => {
    // A generous message rate, so that the flood below is not simply rate limited away.
    server = await ServerProcess.start({ env: { RATE_LIMIT_PER_SEC: '5000', RATE_LIMIT_BURST: '5000' } });
  });
  after(async () => {
    await server.stop();
  });

  const view = async (tech: string): Promise<TechnicianView> => {
    const res = await server.http('GET', `/v1/technicians/${tech}`, { role: 'safety' });
    assert.equal(res.status, 200, res.text);
    return res.body as TechnicianView;
  };

  it('moves the live position, the nearby index and the track with checkin and sos fixes', async () => {
    const scheduledAt = Date.now() + 3_600_000;
    const put = await server.http('PUT', '/v1/orders/fix-1', {
      role: 'dispatch',
      body: { technician: 'tech-fix', ...HOME, scheduledAt, durationMin: 60 },
    });
    assert.equal(put.status, 200, put.text);
    const d = await server.device('tech-fix');
    const t0 = Date.now() - 3000;
    assert.equal((await d.ping({ ts: t0, ...AWAY, acc: 10 })).t, 'ack');
    assert.equal((await d.depart('fix-1')).t, 'ack');
    const checkin = await d.checkin({ order: 'fix-1', ts: t0 + 1000, ...DOORSTEP, acc: 5 });
    assert.equal(checkin.t, 'ack', JSON.stringify(checkin));

    const afterCheckin = await view('tech-fix');
    assert.deepEqual([afterCheckin.lat, afterCheckin.lon, afterCheckin.ts], [DOORSTEP.lat, DOORSTEP.lon, t0 + 1000]);
    const near = await server.http('GET', `/v1/nearby?lat=${HOME.lat}&lon=${HOME.lon}&radius=100`, { role: 'safety' });
    const found = (near.body as { technicians: Array<{ id: string; lat: number }> }).technicians;
    assert.deepEqual(
      found.filter((t) => t.id === 'tech-fix').map((t) => t.lat),
      [DOORSTEP.lat],
      'the nearby index has the check-in fix',
    );

    const sos = await d.sos({ ts: t0 + 2000, ...HOME });
    assert.equal(sos.t, 'ack');
    const afterSos = await view('tech-fix');
    assert.deepEqual([afterSos.lat, afterSos.lon, afterSos.ts], [HOME.lat, HOME.lon, t0 + 2000]);

    const track = await eventually('the three fixes archived', async () => {
      const res = await server.http('GET', `/v1/technicians/tech-fix/track?from=${t0 - 1}&to=${t0 + 3000}`, {
        role: 'safety',
      });
      const points = (res.body as { points?: number[][] }).points ?? [];
      return points.length >= 3 ? points : undefined;
    });
    assert.deepEqual(
      track.map((p) => [p[0], p[1], p[2]]),
      [
        [t0, AWAY.lat, AWAY.lon],
        [t0 + 1000, DOORSTEP.lat, DOORSTEP.lon],
        [t0 + 2000, HOME.lat, HOME.lon],
      ],
    );
    await d.close();
  });

  it('keeps one incident per technician under an SOS flood, and the snapshot small', async () => {
    const d = await server.device('tech-flood');
    const presses = 500;
    const answers = await Promise.all(
      Array.from({ length: presses }, (_, i) =>
        d.sos({ ts: Date.now() - presses + i, ...HOME, note: `press ${i} ${'!'.repeat(900)}` }),
      ),
    );
    const incidents = new Set(answers.map((a) => (a.t === 'ack' ? a.incident : `err ${JSON.stringify(a)}`)));
    assert.equal(incidents.size, 1, `every press acked with one incident: ${[...incidents].slice(0, 3)}`);

    const safety = await server.newSafety('op-flood');
    const inbox = new Inbox<SafetyPush>(safety);
    await safety.connect();
    // Generous: the node is still archiving the flood; this bounds a hang, it is not a latency claim.
    const snapshot = await inbox.next((m) => m.t === 'snapshot', 60_000);
    const alerts = snapshot.t === 'snapshot' ? snapshot.alerts : [];
    const sosAlerts = alerts.filter((a: Alert) => a.kind === 'sos' && a.tech === 'tech-flood');
    assert.equal(sosAlerts.length, 1);
    assert.equal(sosAlerts[0]?.detail?.presses, presses);
    assert.ok(JSON.stringify(snapshot).length < 16 * 1024, `snapshot of ${JSON.stringify(snapshot).length} bytes`);

    // A real SOS of another technician is its own incident and stands out.
    const other = await server.device('tech-real');
    const real = await other.sos({ ts: Date.now(), ...AWAY });
    assert.equal(real.t, 'ack');
    assert.notEqual(real.t === 'ack' && real.incident, [...incidents][0]);
    await inbox.next((m) => m.t === 'alert' && m.alert.kind === 'sos' && m.alert.tech === 'tech-real', 60_000);
    await safety.close();
    await d.close();
    await other.close();
  });
});

/**
 * A device and a safety console written only from PROTOCOL.md, against the real server:
 * a whole job, an SOS from alarm to resolution, and every alert kind reaching the console.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, AlertKind, DevicePush, OrderView, SafetyClient, SafetyPush } from '../src/client/index.js';
import { PLACES } from './support/fixtures.js';
import { Inbox } from './support/inbox.js';
import { ServerProcess } from './support/server-process.js';

const HOME = PLACES.berlin;
/** About 1.1 km north of HOME. */
const AWAY = { lat: 52.53, lon: 13.405 };

const alertOf =
  (kind: AlertKind, tech: string, pred: (a: Alert) => boolean = () => true) =>
  (m: SafetyPush) =>
    m.t === 'alert' && m.alert.kind === kind && m.alert.tech === tech && pred(m.alert);

async function putOrder(server: ServerProcess, id: string, body: Record<string, unknown>): Promise<OrderView> {
  const res = await server.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body });
  assert.equal(res.status, 200, res.text);
  return res.body as OrderView;
}

describe('a whole job and an SOS', () => {
  let server: ServerProcess;
  let safety: SafetyClient;
  let console: Inbox<SafetyPush>;
  before(async () => {
    server = await ServerProcess.start({ env: { SOS_LEVEL2_MS: '600', SOS_LEVEL3_MS: '1200', SOS_SLA_MS: '1800' } });
    safety = await server.newSafety('op-e1');
    console = new Inbox(safety);
    await safety.connect();
    await console.next((m) => m.t === 'snapshot');
  });
  after(async () => {
    await safety.close();
    await server.stop();
  });

  it('plays assigned -> departed -> arrived -> in_service -> completed', async () => {
    await putOrder(server, 'job-1', {
      technician: 'tech-e1',
      ...HOME,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 60,
    });
    const d = await server.device('tech-e1');
    const early = await d.start('job-1');
    assert.equal(early.t === 'err' && early.code, 'conflict', 'start before arriving is out of order');
    assert.equal((await d.depart('job-1')).t, 'ack');
    assert.equal((await d.ping({ ts: Date.now(), ...AWAY, acc: 10 })).t, 'ack');

    const outside = await d.checkin({ order: 'job-1', ts: Date.now(), ...AWAY, acc: 10 });
    assert.equal(outside.t, 'err');
    assert.equal(outside.t === 'err' && outside.code, 'outside_geofence');
    assert.ok(Math.abs(Number(outside.dist) - 1112) < 5, `dist ${outside.dist}`);
    assert.equal(outside.radius, 50);

    const inside = await d.checkin({ order: 'job-1', ts: Date.now(), lat: HOME.lat + 0.0002, lon: HOME.lon, acc: 5 });
    assert.equal(inside.t, 'ack');
    assert.ok(Math.abs(Number(inside.dist) - 22.2) < 1, `dist ${inside.dist}`);
    assert.equal((await d.depart('job-1')).t === 'err', true, 'departing again is out of order');
    assert.equal((await d.start('job-1')).t, 'ack');
    assert.equal((await d.complete('job-1')).t, 'ack');

    const view = (await server.http('GET', '/v1/orders/job-1', { role: 'dispatch' })).body as OrderView;
    assert.equal(view.state, 'completed');
    assert.deepEqual(
      view.timeline.map((e) => e.state),
      ['assigned', 'departed', 'arrived', 'in_service', 'completed'],
    );
    const arrived = view.timeline.find((e) => e.state === 'arrived');
    assert.equal(arrived?.lat, HOME.lat + 0.0002);
    assert.equal((await server.http('DELETE', '/v1/orders/job-1', { role: 'dispatch' })).status, 409);
    await d.close();
  });

  it("keeps technicians out of each other's orders", async () => {
    await putOrder(server, 'job-2', { technician: 'tech-e2', ...HOME, scheduledAt: Date.now(), durationMin: 30 });
    const intruder = await server.device('tech-e3');
    for (const reply of [
      await intruder.depart('job-2'),
      await intruder.checkin({ order: 'job-2', ts: Date.now(), ...HOME }),
      await intruder.start('job-2'),
      await intruder.complete('job-2'),
    ]) {
      assert.equal(reply.t === 'err' && reply.code, 'forbidden');
    }
    // An unknown order looks exactly like a foreign one: a device cannot probe which ids exist.
    const unknown = await intruder.depart('no-such-order');
    const foreign = await intruder.depart('job-2');
    assert.equal(unknown.t === 'err' && unknown.code, 'forbidden');
    assert.equal(
      unknown.t === 'err' && unknown.msg.replace('no-such-order', 'X'),
      foreign.t === 'err' && foreign.msg.replace('job-2', 'X'),
    );
    assert.equal(
      ((await server.http('GET', '/v1/orders/job-2', { role: 'dispatch' })).body as OrderView).state,
      'assigned',
    );
    await intruder.close();
  });

  it('escalates an SOS until acknowledged, tells the technician, and resolves it', async () => {
    const d = await server.newDevice('tech-e4');
    const device = new Inbox<DevicePush>(d);
    await d.connect();
    const sent = Date.now();
    const ack = await d.sos({ ts: sent, ...HOME, note: 'aggressive customer' });
    assert.equal(ack.t, 'ack');
    const incident = String(ack.incident);
    assert.ok(incident.length > 0);

    const raised = await console.next(alertOf('sos', 'tech-e4'));
    assert.equal(raised.t === 'alert' && raised.alert.id, incident);
    assert.equal(raised.t === 'alert' && raised.alert.level, 1);
    assert.equal(raised.t === 'alert' && raised.alert.state, 'open');
    await console.next(alertOf('sos', 'tech-e4', (a) => a.level === 2));
    await console.next(alertOf('sos', 'tech-e4', (a) => a.level === 3));
    await console.next(alertOf('sos', 'tech-e4', (a) => a.detail?.slaBreached === true));

    const open = (await server.http('GET', '/v1/alerts?state=open', { role: 'safety' })).body as { alerts: Alert[] };
    assert.ok(open.alerts.some((a) => a.id === incident));

    assert.equal((await safety.ack(incident)).t, 'ack');
    assert.deepEqual(await device.next((m) => m.t === 'sos_status'), {
      t: 'sos_status',
      incident,
      state: 'acknowledged',
    });
    await console.next(alertOf('sos', 'tech-e4', (a) => a.state === 'acknowledged'));
    assert.equal((await safety.resolve(incident, 'police on site')).t, 'ack');
    await device.next((m) => m.t === 'sos_status' && m.state === 'resolved');
    await console.next(alertOf('sos', 'tech-e4', (a) => a.state === 'resolved'));

    const unknown = await safety.ack('no-such-alert');
    assert.equal(unknown.t === 'err' && unknown.code, 'not_found');
    await d.close();
  });

  it('lets the technician cancel a false alarm and tells the consoles', async () => {
    const d = await server.device('tech-e5');
    const ack = await d.sos({ ts: Date.now(), ...HOME });
    const incident = String(ack.incident);
    await console.next(alertOf('sos', 'tech-e5'));
    assert.equal((await d.sosCancel(incident)).t, 'ack');
    await console.next(alertOf('sos', 'tech-e5', (a) => a.id === incident && a.state === 'resolved'));
    const other = await server.device('tech-e6');
    const foreign = await other.sosCancel(incident);
    assert.equal(foreign.t === 'err' && foreign.code, 'forbidden');
    await d.close();
    await other.close();
  });

  it('gives a console that reconnects the full snapshot', async () => {
    const d = await server.device('tech-e7');
    const incident = String((await d.sos({ ts: Date.now(), ...HOME })).incident);
    const late = await server.newSafety('op-e2');
    const inbox = new Inbox<SafetyPush>(late);
    await late.connect();
    const snapshot = await inbox.next((m) => m.t === 'snapshot');
    assert.ok(snapshot.t === 'snapshot' && snapshot.alerts.some((a) => a.id === incident && a.kind === 'sos'));
    assert.ok(snapshot.t === 'snapshot' && snapshot.alerts.every((a) => a.state !== 'resolved'));
    await late.close();
    await d.close();
  });
});

describe('every alert kind reaches the console', () => {
  let server: ServerProcess;
  let safety: SafetyClient;
  let console: Inbox<SafetyPush>;
  before(async () => {
    server = await ServerProcess.start({
      env: {
        LATE_DEPARTURE_MS: '500',
        LATE_ARRIVAL_MS: '800',
        OFFLINE_MS: '1000',
        GEOFENCE_EXIT_DWELL_MS: '600000',
      },
    });
    safety = await server.newSafety('op-a1');
    console = new Inbox(safety);
    await safety.connect();
  });
  after(async () => {
    await safety.close();
    await server.stop();
  });

  it('late_departure, with a notice to the technician', async () => {
    const d = await server.newDevice('tech-a1');
    const device = new Inbox<DevicePush>(d);
    await d.connect();
    await putOrder(server, 'ord-a1', { technician: 'tech-a1', ...HOME, scheduledAt: Date.now(), durationMin: 30 });
    const alert = await console.next(alertOf('late_departure', 'tech-a1'));
    assert.equal(alert.t === 'alert' && alert.alert.order, 'ord-a1');
    const notice = await device.next((m) => m.t === 'notice');
    assert.equal(notice.t === 'notice' && notice.kind, 'late_departure');
    await d.close();
  });

  it('late_arrival', async () => {
    const d = await server.device('tech-a2');
    await putOrder(server, 'ord-a2', { technician: 'tech-a2', ...HOME, scheduledAt: Date.now(), durationMin: 30 });
    assert.equal((await d.depart('ord-a2')).t, 'ack');
    await console.next(alertOf('late_arrival', 'tech-a2'));
    await d.close();
  });

  it('overtime', async () => {
    const d = await server.device('tech-a3');
    await putOrder(server, 'ord-a3', {
      technician: 'tech-a3',
      ...HOME,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 0.02,
    });
    assert.equal((await d.depart('ord-a3')).t, 'ack');
    assert.equal((await d.checkin({ order: 'ord-a3', ts: Date.now(), ...HOME })).t, 'ack');
    assert.equal((await d.start('ord-a3')).t, 'ack');
    await console.next(alertOf('overtime', 'tech-a3'));
    await d.close();
  });

  it('offline', async () => {
    const d = await server.device('tech-a4');
    await putOrder(server, 'ord-a4', {
      technician: 'tech-a4',
      ...HOME,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 30,
    });
    assert.equal((await d.depart('ord-a4')).t, 'ack');
    assert.equal((await d.ping({ ts: Date.now(), ...AWAY })).t, 'ack');
    await console.next(alertOf('offline', 'tech-a4'));
    await d.close();
  });

  it('geofence_exit', async () => {
    const d = await server.device('tech-a5');
    await putOrder(server, 'ord-a5', {
      technician: 'tech-a5',
      ...HOME,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 60,
    });
    assert.equal((await d.depart('ord-a5')).t, 'ack');
    assert.equal((await d.checkin({ order: 'ord-a5', ts: Date.now(), ...HOME, acc: 5 })).t, 'ack');
    assert.equal((await d.start('ord-a5')).t, 'ack');
    const t = Date.now();
    assert.equal((await d.ping({ ts: t, lat: HOME.lat + 0.002, lon: HOME.lon, acc: 5 })).t, 'ack');
    assert.equal((await d.ping({ ts: t + 1000, lat: HOME.lat + 0.0021, lon: HOME.lon, acc: 5 })).t, 'ack');
    const alert = await console.next(alertOf('geofence_exit', 'tech-a5'));
    assert.equal(alert.t === 'alert' && alert.alert.order, 'ord-a5');
    await d.close();
  });

  it('implausible_move', async () => {
    const d = await server.device('tech-a6');
    const t = Date.now() - 5000;
    assert.equal((await d.ping({ ts: t, lat: 48.85, lon: 2.35, acc: 5 })).t, 'ack');
    assert.equal((await d.ping({ ts: t + 1000, lat: 48.95, lon: 2.35, acc: 5 })).t, 'ack');
    await console.next(alertOf('implausible_move', 'tech-a6'));
    await d.close();
  });
});

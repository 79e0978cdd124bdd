/**
 * Events for the dispatch system on a real node with a real webhook receiver process
 * (test/support/webhook-receiver.ts): the events of a whole job and an SOS, in order, with
 * valid signatures; the pull API; the refusal of private URLs; a receiver that answers 500,
 * hangs or is down for a long stretch; dead events and redelivery; kill -9 of the node
 * during delivery.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verifySignature } from '../src/events/signature.js';
import type { DispatchEvent } from '../src/protocol.js';
import { assertOrderedPerKey } from './support/event-order.js';
import { pullAllEvents } from './support/event-stream-reader.js';
import { eventually } from './support/eventually.js';
import { PLACES, tempDirs } from './support/fixtures.js';
import { Receiver } from './support/receiver.js';
import { ServerProcess } from './support/server-process.js';

const tempDir = tempDirs('events');
const SECRET = 'receiver-secret-0123456789abcdef';
const HOME = PLACES.paris;
const running: Array<{ stop(): Promise<unknown> } | Receiver> = [];
after(async () => {
  for (const r of running.splice(0)) {
    if (r instanceof Receiver) await r.kill();
    else await r.stop().catch(() => undefined);
  }
});

async function server(env: Record<string, string> = {}, dataDir?: string): Promise<ServerProcess> {
  const s = await ServerProcess.start({
    env: { WEBHOOK_ALLOW_PRIVATE: '1', ...env },
    ...(dataDir !== undefined ? { dataDir } : {}),
  });
  running.push(s);
  return s;
}

async function receiver(port = 0, file?: string): Promise<Receiver> {
  const r = await Receiver.start(file ?? join(await tempDir(), 'received.jsonl'), port);
  running.push(r);
  return r;
}

async function subscribe(s: ServerProcess, url: string, events: string[] = ['*']): Promise<string> {
  const res = await s.http('POST', '/v1/webhooks', { role: 'dispatch', body: { url, events, secret: SECRET } });
  assert.equal(res.status, 201, res.text);
  return (res.body as { id: string }).id;
}

const allEvents = (s: ServerProcess): Promise<DispatchEvent[]> => pullAllEvents(s);

function order(tech: string, minutesAhead = 60) {
  return { technician: tech, ...HOME, scheduledAt: Date.now() + minutesAhead * 60_000, durationMin: 60 };
}

describe('events for the dispatch system (real node, real receiver)', () => {
  it('a whole job and an SOS give the right events, in order, signed, also by GET /v1/events', async () => {
    const s = await server();
    const r = await receiver();
    const hook = await subscribe(s, r.url);

    const job = order('tech-1');
    assert.equal((await s.http('PUT', '/v1/orders/job-1', { role: 'dispatch', body: job })).status, 200);
    // A retried PUT that changes nothing makes no second order.assigned.
    assert.equal((await s.http('PUT', '/v1/orders/job-1', { role: 'dispatch', body: job })).status, 200);
    const d = await s.device('tech-1');
    assert.equal((await d.depart('job-1')).t, 'ack');
    assert.equal((await d.checkin({ order: 'job-1', ts: Date.now(), ...HOME, acc: 5 })).t, 'ack');
    assert.equal((await d.start('job-1')).t, 'ack');
    assert.equal((await d.complete('job-1')).t, 'ack');
    const sos = await d.sos({ ts: Date.now(), ...HOME, note: 'help' });
    assert.equal(sos.t, 'ack');
    const incident = sos.incident as string;
    const console1 = await s.safety('op-1');
    assert.equal((await console1.ack(incident)).t, 'ack');
    assert.equal((await console1.resolve(incident, 'ok')).t, 'ack');
    await d.close();

    const expected = [
      'order.assigned',
      'technician.online',
      'order.departed',
      'order.arrived',
      'order.in_service',
      'order.completed',
      'alert.opened',
      'alert.changed',
      'alert.changed',
      'technician.offline',
    ];
    const got = await eventually('every event at the receiver', () => {
      const u = r.unique();
      return u.length >= expected.length ? u : false;
    });
    assert.deepEqual(
      got.map((e) => e.type),
      expected,
    );
    const ids = got.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids, 'delivered in id order (one technician)');
    assert.equal(got[6]?.data.kind, 'sos');
    assert.equal(got[6]?.data.id, incident);
    assert.equal(got[7]?.data.state, 'acknowledged');
    assert.equal(got[8]?.data.state, 'resolved');
    assert.equal(got[3]?.order, 'job-1');
    assert.equal(got[3]?.tech, 'tech-1');

    const now = Math.floor(Date.now() / 1000);
    for (const rec of r.received()) {
      assert.equal(rec.headers['fieldtrack-event-id'], rec.event.id);
      assert.ok(verifySignature(SECRET, rec.headers['fieldtrack-signature'] as string, rec.body, now), 'signature');
      assert.ok(
        !verifySignature('another-secret-0123456789', rec.headers['fieldtrack-signature'] as string, rec.body, now),
      );
    }

    // The pull API gives the same events with the same ids.
    const pulled = await allEvents(s);
    assert.deepEqual(
      pulled.map((e) => e.id),
      ids,
    );
    const page = await s.http('GET', `/v1/events?after=${ids[2]}&limit=2`, { role: 'dispatch' });
    assert.deepEqual(
      (page.body as { events: DispatchEvent[] }).events.map((e) => e.id),
      ids.slice(3, 5),
    );
    assert.equal((page.body as { next: string }).next, ids[4]);

    const shown = await s.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' });
    assert.equal(shown.status, 200);
    const view = shown.body as Record<string, unknown>;
    assert.equal(view.delivered, expected.length);
    assert.equal(view.pending, 0);
    assert.equal(view.dead, 0);
    assert.equal('secret' in view, false, 'the secret is shown once, at creation');
    const listed = await s.http('GET', '/v1/webhooks', { role: 'dispatch' });
    assert.equal(JSON.stringify(listed.body).includes(SECRET), false);
    assert.equal(
      s.logs.some((l) => JSON.stringify(l).includes(SECRET)),
      false,
      'no secret in the log',
    );

    assert.equal((await s.http('GET', '/v1/events', { role: 'safety' })).status, 403);
    assert.equal((await s.http('GET', '/v1/events?after=nope', { role: 'dispatch' })).status, 400);
    assert.equal((await s.http('DELETE', `/v1/webhooks/${hook}`, { role: 'dispatch' })).status, 200);
    assert.equal((await s.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' })).status, 404);
  });

  it('a receiver that answers 500, hangs, then is down for a long stretch gets every event, in order, once back', async () => {
    const s = await server({
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '400',
      WEBHOOK_TIMEOUT_MS: '500',
      WEBHOOK_MAX_IN_FLIGHT: '4',
    });
    const dir = await tempDir();
    const file = join(dir, 'received.jsonl');
    let r = await receiver(0, file);
    const port = r.port;
    const hook = await subscribe(s, r.url);
    const put = (id: string, tech: string) =>
      s.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body: order(tech) });
    const del = (id: string) => s.http('DELETE', `/v1/orders/${id}`, { role: 'dispatch' });

    await r.mode('fail');
    for (let i = 0; i < 6; i++) assert.equal((await put(`o-${i}`, `t-${i % 3}`)).status, 200);
    await eventually('retries while the receiver answers 500', async () => {
      const m = await s.http('GET', '/metrics');
      return /fieldtrack_webhook_retried_total\{webhook="[^"]+"\} [1-9]/.test(m.text);
    });
    await r.mode('hang');
    for (let i = 0; i < 6; i += 2) assert.equal((await del(`o-${i}`)).status, 200);
    await new Promise((res) => setTimeout(res, 1500)); // a few timeouts of 500 ms
    await r.kill();
    // Down: connections refused, for a stretch of many retry rounds.
    for (let i = 6; i < 12; i++) assert.equal((await put(`o-${i}`, `t-${i % 3}`)).status, 200);
    for (let i = 1; i < 12; i += 2) assert.equal((await del(`o-${i}`)).status, 200);
    await new Promise((res) => setTimeout(res, 3000));
    const whileDown = (await s.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' })).body as Record<
      string,
      unknown
    >;
    assert.ok((whileDown.pending as number) > 0, 'events wait while the receiver is down');
    assert.equal(typeof whileDown.lastError, 'string');
    assert.equal(r.unique().length, 0, 'nothing accepted while failing, hanging or down');

    r = await receiver(port, file);
    const stored = await allEvents(s);
    assert.equal(stored.length, 6 + 3 + 6 + 6);
    const got = await eventually('every event after the receiver came back', () => {
      const u = r.unique();
      return u.length >= stored.length ? u : false;
    });
    assert.deepEqual(new Set(got.map((e) => e.id)), new Set(stored.map((e) => e.id)));
    assertOrderedPerKey(got);
    const view = (await s.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' })).body as Record<string, unknown>;
    assert.equal(view.pending, 0);
    assert.equal(view.dead, 0);
  });

  it('a receiver that hangs delays neither another receiver nor device acks', async () => {
    const s = await server({ WEBHOOK_MAX_IN_FLIGHT: '2', WEBHOOK_TIMEOUT_MS: '600000' });
    const stuck = await receiver();
    await stuck.mode('hang');
    const fine = await receiver();
    const stuckHook = await subscribe(s, stuck.url);
    await subscribe(s, fine.url);
    const d = await s.device('hang-tech');
    for (let i = 0; i < 10; i++) {
      assert.equal(
        (await s.http('PUT', `/v1/orders/h-${i}`, { role: 'dispatch', body: order(`ht-${i}`) })).status,
        200,
      );
      assert.equal((await d.ping({ ts: Date.now(), ...HOME })).t, 'ack');
    }
    await d.close();
    const got = await eventually('every event at the receiver that answers', () => {
      const u = fine.unique();
      return u.length >= 12 ? u : false; // 10 orders, online, offline
    });
    assert.equal(got.length, 12);
    assert.equal(stuck.unique().length, 0);
    const view = (await s.http('GET', `/v1/webhooks/${stuckHook}`, { role: 'dispatch' })).body as Record<
      string,
      number
    >;
    assert.equal(view.pending, 12, 'the hanging receiver still has them all to come');
  });

  it('after the retry window an event is dead, later events of its order go on, and redelivery sends it', async () => {
    const s = await server({ WEBHOOK_RETRY_BASE_MS: '20', WEBHOOK_RETRY_MAX_MS: '100', WEBHOOK_RETRY_FOR_MS: '800' });
    const r = await receiver();
    const hook = await subscribe(s, r.url, ['order.assigned', 'order.cancelled']);
    await r.mode('fail');
    assert.equal((await s.http('PUT', '/v1/orders/d-1', { role: 'dispatch', body: order('dt-1') })).status, 200);
    const dead = await eventually('the event is dead', async () => {
      const res = await s.http('GET', `/v1/webhooks/${hook}/dead`, { role: 'dispatch' });
      const list = (res.body as { events: Array<{ event: DispatchEvent; attempts: number; lastError: string }> })
        .events;
      return list.length === 1 ? list : false;
    });
    assert.equal(dead[0]?.event.type, 'order.assigned');
    assert.ok((dead[0]?.attempts ?? 0) > 1, 'retried before giving up');
    assert.equal(dead[0]?.lastError, 'HTTP 500');
    await r.mode('ok');
    // A later event of the same order is not held back by the dead one.
    assert.equal((await s.http('DELETE', '/v1/orders/d-1', { role: 'dispatch' })).status, 200);
    await eventually('the later event', () => r.unique().some((e) => e.type === 'order.cancelled'));
    assert.equal(r.unique().length, 1, 'the dead event is not sent by itself');
    const again = await s.http('POST', `/v1/webhooks/${hook}/redeliver`, { role: 'dispatch' });
    assert.equal(again.status, 200, again.text);
    assert.equal((again.body as { redelivered: number }).redelivered, 1);
    await eventually('the redelivered event', () => r.unique().some((e) => e.id === dead[0]?.event.id));
    const after = await s.http('GET', `/v1/webhooks/${hook}/dead`, { role: 'dispatch' });
    assert.deepEqual((after.body as { events: unknown[] }).events, []);
    assert.equal(
      (await s.http('POST', `/v1/webhooks/${hook}/redeliver`, { role: 'dispatch', body: { ids: ['x'] } })).status,
      400,
    );
  });

  it('kill -9 of the node during delivery loses nothing; the receiver deduplicates by id', async () => {
    const dataDir = await tempDir(); // kept for the restart, removed after the file's tests
    const s = await server({ WEBHOOK_MAX_IN_FLIGHT: '2' }, dataDir);
    const r = await receiver();
    await r.mode('ok', 40); // slow: deliveries are in flight when the node dies
    await subscribe(s, r.url);
    for (let i = 0; i < 20; i++) {
      assert.equal(
        (await s.http('PUT', `/v1/orders/k-${i}`, { role: 'dispatch', body: order(`kt-${i % 4}`) })).status,
        200,
      );
    }
    for (let i = 0; i < 20; i += 2)
      assert.equal((await s.http('DELETE', `/v1/orders/k-${i}`, { role: 'dispatch' })).status, 200);
    const acked = await allEvents(s);
    assert.equal(acked.length, 30);
    await eventually('some deliveries done', () => r.received().length >= 3);
    assert.ok(r.unique().length < acked.length, 'the node dies with deliveries left');
    await s.crash();

    const again = await server({ WEBHOOK_MAX_IN_FLIGHT: '2' }, dataDir);
    const afterRestart = await allEvents(again);
    assert.deepEqual(
      afterRestart.map((e) => e.id),
      acked.map((e) => e.id),
      'every acked event is still in the log',
    );
    const got = await eventually('every event at the receiver after the restart', () => {
      const u = r.unique();
      return u.length >= acked.length ? u : false;
    });
    assert.deepEqual(new Set(got.map((e) => e.id)), new Set(acked.map((e) => e.id)));
    assertOrderedPerKey(got);
    // New events after the restart get new ids, after the old ones.
    assert.equal((await again.http('PUT', '/v1/orders/k-new', { role: 'dispatch', body: order('kt-0') })).status, 200);
    const newest = await eventually('the new event', () => r.unique().find((e) => e.order === 'k-new'));
    assert.ok(newest.id > (acked.at(-1) as DispatchEvent).id);
  });

  it('refuses webhook URLs on loopback, private and link-local addresses unless allowed, and bad bodies', async () => {
    const s = await server({ WEBHOOK_ALLOW_PRIVATE: '0' });
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://localhost:9/hook',
      'http://10.1.2.3/hook',
      'http://192.168.1.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/hook',
      'http://[fd00::1]/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://0.0.0.0/hook',
    ]) {
      const res = await s.http('POST', '/v1/webhooks', { role: 'dispatch', body: { url, events: ['*'] } });
      assert.equal(res.status, 400, `${url}: ${res.text}`);
    }
    for (const body of [
      { url: 'ftp://example.com/x', events: ['*'] },
      { url: 'http://example.com/x', events: [] },
      { url: 'http://example.com/x', events: ['order.nope'] },
      { url: 'http://example.com/x', events: ['*'], secret: 'short' },
      { events: ['*'] },
    ]) {
      const res = await s.http('POST', '/v1/webhooks', { role: 'dispatch', body });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    }
    assert.equal(
      (await s.http('POST', '/v1/webhooks', { role: 'safety', body: { url: 'http://example.com', events: ['*'] } }))
        .status,
      403,
    );
  });
});

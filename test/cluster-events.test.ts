/**
 * Events for the dispatch system in multi-node mode, across real processes: two fieldtrack
 * nodes on one real redis-server and a real webhook receiver process.
 *
 * - A webhook created on node A applies to both nodes: jobs of a technician run by A and
 *   of one run by B reach the receiver, every event exactly once (one node delivers),
 *   signed, in order per order and per technician; `GET /v1/events` and the Server-Sent
 *   Events stream of either node list every node's events, the same ids in the same order.
 * - kill -9 of the node that runs a technician and delivers the webhooks, while the receiver
 *   answers 500 (so the node dies with events pending): the other node takes both over; the
 *   technician's events (before and after the take-over) reach the receiver in order, each
 *   at least once, and the pull API of the surviving node has them all, in order, without a
 *   gap.
 * - SIGSTOP of the delivering node while events are pending: the other node takes delivery
 *   over; once the frozen node runs again it sends nothing (each event arrives exactly once).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifySignature } from '../src/events/signature.js';
import type { DispatchEvent } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { assertOrderedPerKey } from './support/event-order.js';
import { EventStreamReader, pullAllEvents } from './support/event-stream-reader.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV, tempDirs } from './support/fixtures.js';
import { Receiver } from './support/receiver.js';
import type { ServerProcess } from './support/server-process.js';

const tempDir = tempDirs('cluster-events');
const SECRET = 'cluster-receiver-secret-0123456789';
const HOME = PLACES.paris;

let cluster: Cluster;
let receiver: Receiver;
before(async () => {
  cluster = await Cluster.launch(2, {
    ...QUIET_DEADLINES_ENV,
    WEBHOOK_ALLOW_PRIVATE: '1',
    // Quick retries: a receiver that answered 500 for a while is retried soon after it recovers.
    WEBHOOK_RETRY_BASE_MS: '50',
    WEBHOOK_RETRY_MAX_MS: '500',
  });
  receiver = await Receiver.start(join(await tempDir(), 'received.jsonl'));
});
after(async () => {
  await receiver?.kill();
  await cluster?.destroy();
});

const DELIVERS = 'webhooks: this node delivers every webhook now';

/** Small pages, so that paging crosses events of both nodes. */
const allEvents = (s: ServerProcess): Promise<DispatchEvent[]> => pullAllEvents(s, 7);

function order(tech: string) {
  return { technician: tech, ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 60 };
}

/** The types of `tech`'s events, in the order given. */
const typesOf = (events: DispatchEvent[], tech: string) => events.filter((e) => e.tech === tech).map((e) => e.type);

/** Waits until one node says it delivers; returns it. */
async function deliverer(): Promise<ServerProcess> {
  return eventually('a node delivers the webhooks', () =>
    cluster.nodes.find((n) => n.exitCode === undefined && n.logs.some((l) => l.msg === DELIVERS)),
  );
}

/** A device of `tech` on `node`, once `node` runs the technician. */
async function deviceOn(node: ServerProcess, tech: string) {
  const d = await node.device(tech);
  assert.equal((await d.ping({ ts: Date.now(), ...HOME })).t, 'ack');
  await node.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
  return d;
}

/** Runs a job to its end on device `d`; each step acked. */
async function job(d: Awaited<ReturnType<ServerProcess['device']>>, id: string): Promise<void> {
  assert.equal((await d.depart(id)).t, 'ack');
  assert.equal((await d.checkin({ order: id, ts: Date.now(), ...HOME, acc: 5 })).t, 'ack');
  assert.equal((await d.start(id)).t, 'ack');
  assert.equal((await d.complete(id)).t, 'ack');
}

const JOB = ['order.assigned', 'order.departed', 'order.arrived', 'order.in_service', 'order.completed'];

describe('events across two nodes (real processes, real redis, real receiver)', () => {
  it('one webhook for both nodes: every event once, in order, signed; pull and stream span both nodes', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const created = await a.http('POST', '/v1/webhooks', {
      role: 'dispatch',
      body: { url: receiver.url, events: ['*'], secret: SECRET },
    });
    assert.equal(created.status, 201, created.text);
    const hook = (created.body as { id: string }).id;
    // Node B serves the webhook created on A (the secret never shown again).
    const onB = await b.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' });
    assert.equal(onB.status, 200, onB.text);
    assert.equal('secret' in (onB.body as object), false);

    const streamA = await EventStreamReader.open(a, {}, '?after=0');
    const streamB = await EventStreamReader.open(b, {}, '?after=0');
    assert.equal(streamA.status, 200);
    assert.equal(streamB.status, 200);

    const da = await deviceOn(a, 'ev-tech-a');
    const db = await deviceOn(b, 'ev-tech-b');
    // Each order is put through the other node (forwarded to the technician's node).
    assert.equal(
      (await b.http('PUT', '/v1/orders/ev-job-a', { role: 'dispatch', body: order('ev-tech-a') })).status,
      200,
    );
    assert.equal(
      (await a.http('PUT', '/v1/orders/ev-job-b', { role: 'dispatch', body: order('ev-tech-b') })).status,
      200,
    );
    await Promise.all([job(da, 'ev-job-a'), job(db, 'ev-job-b')]);
    await Promise.all([da.close(), db.close()]);

    const perTech = ['technician.online', ...JOB, 'technician.offline'];
    const expected = 2 * perTech.length;
    const got = await eventually('every event of both nodes at the receiver', () => {
      const u = receiver.unique();
      return u.length >= expected ? u : false;
    });
    for (const tech of ['ev-tech-a', 'ev-tech-b']) {
      assert.deepEqual(typesOf(got, tech), perTech, tech);
    }
    assertOrderedPerKey(got);
    // Exactly once: one node delivers, and nothing moved it.
    await new Promise((r) => setTimeout(r, 1500));
    const received = receiver.received();
    assert.equal(received.length, expected, 'no event delivered twice');
    const now = Math.floor(Date.now() / 1000);
    for (const rec of received) {
      assert.equal(rec.headers['fieldtrack-event-id'], rec.event.id);
      assert.ok(verifySignature(SECRET, rec.headers['fieldtrack-signature'] as string, rec.body, now), 'signature');
    }

    // The pull API of either node lists every node's events: the same ids, in id order.
    const pulledA = await allEvents(a);
    const pulledB = await allEvents(b);
    const ids = pulledA.map((e) => e.id);
    assert.equal(ids.length, expected);
    assert.deepEqual(
      pulledB.map((e) => e.id),
      ids,
    );
    assert.deepEqual([...ids].sort(), ids, 'ids ascend');
    assert.equal(new Set(ids).size, ids.length, 'ids unique');
    for (const id of ids) assert.match(id, /^\d{13}-\d{4}$/);
    assert.deepEqual([...got.map((e) => e.id)].sort(), ids, 'the receiver got exactly the pulled events');
    // Paging with `after` from the middle continues without a gap.
    const mid = await a.http('GET', `/v1/events?after=${ids[4]}&limit=3`, { role: 'dispatch' });
    assert.deepEqual(
      (mid.body as { events: DispatchEvent[] }).events.map((e) => e.id),
      ids.slice(5, 8),
    );

    // The stream of either node carries them all, in the same order.
    for (const stream of [streamA, streamB]) {
      const seen = await stream.until(expected);
      assert.deepEqual(
        seen.map((e) => e.id),
        ids,
      );
      stream.close();
    }
    // Resuming a stream on the other node after an id seen on the first misses nothing.
    const resumed = await EventStreamReader.open(b, { 'last-event-id': ids[6] as string });
    assert.deepEqual(
      (await resumed.until(expected - 7)).map((e) => e.id),
      ids.slice(7),
    );
    resumed.close();

    const view = (await b.http('GET', `/v1/webhooks/${hook}`, { role: 'dispatch' })).body as Record<string, unknown>;
    assert.equal(view.delivered, expected);
    assert.equal(view.dead, 0);
  });

  it('kill -9 of the node running a technician and delivering: its events stay in order, none lost', async () => {
    const a = await deliverer();
    const b = cluster.nodes.find((n) => n !== a) as ServerProcess;
    const tech = 'ev-tech-moved';
    const before = receiver.unique().length;
    // Node A dies with these events pending: node B must send them from the marks in Redis.
    await receiver.mode('fail');

    const onA = await deviceOn(a, tech);
    assert.equal((await b.http('PUT', '/v1/orders/ev-job-m', { role: 'dispatch', body: order(tech) })).status, 200);
    assert.equal((await onA.depart('ev-job-m')).t, 'ack');
    assert.equal((await onA.checkin({ order: 'ev-job-m', ts: Date.now(), ...HOME, acc: 5 })).t, 'ack');
    // Another technician keeps working on B meanwhile.
    const other = await deviceOn(b, 'ev-tech-stays');
    assert.equal(
      (await b.http('PUT', '/v1/orders/ev-job-s', { role: 'dispatch', body: order('ev-tech-stays') })).status,
      200,
    );

    await eventually('A retries the failing receiver', async () => {
      const m = await a.http('GET', '/metrics');
      return /fieldtrack_webhook_retried_total\{webhook="[^"]+"\} [1-9]/.test(m.text);
    });
    await a.crash();
    await receiver.mode('ok');
    const onB = await b.newDevice(tech);
    await onB.connect();
    assert.equal((await onB.ping({ ts: Date.now(), ...HOME })).t, 'ack');
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
    assert.equal((await onB.start('ev-job-m')).t, 'ack');
    assert.equal((await onB.complete('ev-job-m')).t, 'ack');
    await job(other, 'ev-job-s');
    await Promise.all([onB.close(), other.close()]);
    await b.waitForLog((l) => l.msg === DELIVERS, 60_000);

    const movedTypes = [
      'technician.online',
      'order.assigned',
      'order.departed',
      'order.arrived',
      'technician.online',
      'order.in_service',
      'order.completed',
      'technician.offline',
    ];
    const stays = ['technician.online', ...JOB, 'technician.offline'];
    const got = await eventually(
      'every event at the receiver after the take-over',
      () => {
        const u = receiver.unique().slice(before);
        return typesOf(u, tech).length >= movedTypes.length && typesOf(u, 'ev-tech-stays').length >= stays.length
          ? u
          : false;
      },
      90_000,
    );
    assert.deepEqual(typesOf(got, tech), movedTypes);
    assert.deepEqual(typesOf(got, 'ev-tech-stays'), stays);
    assertOrderedPerKey(receiver.unique());

    // The surviving node's pull API has every event, each once, in id order, and the
    // receiver got exactly those.
    const pulled = await allEvents(b);
    const ids = pulled.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual(
      receiver
        .unique()
        .map((e) => e.id)
        .sort(),
      ids,
    );
    assert.deepEqual(typesOf(pulled, tech), movedTypes);
  });

  it('SIGSTOP of the delivering node: the other node delivers; the frozen one, woken, sends nothing', async () => {
    // After the kill -9 above, B delivers; A runs again on its data folder (its relay finds
    // nothing left to add).
    const [a] = cluster.nodes as [ServerProcess];
    const b = await deliverer();
    const a2 = await cluster.startNode(a.dataDir);
    cluster.nodes.push(a2);
    const tech = 'ev-tech-frozen';
    const from = receiver.received().length;

    await receiver.mode('fail');
    const d = await deviceOn(a2, tech);
    assert.equal((await b.http('PUT', '/v1/orders/ev-job-f', { role: 'dispatch', body: order(tech) })).status, 200);
    await job(d, 'ev-job-f');
    await d.close();
    await eventually('B retries the failing receiver', async () => {
      const m = await b.http('GET', '/metrics');
      return /fieldtrack_webhook_retried_total\{webhook="[^"]+"\} [1-9]/.test(m.text);
    });
    b.pause();
    try {
      await a2.waitForLog((l) => l.msg === DELIVERS, 60_000);
      await receiver.mode('ok');
      const want = ['technician.online', ...JOB, 'technician.offline'];
      await eventually('every event of the frozen phase at the receiver', () => {
        const got = receiver
          .received()
          .slice(from)
          .map((r) => r.event);
        return typesOf(got, tech).length >= want.length;
      });
    } finally {
      b.resume();
    }
    // B wakes up with retries due: it must not send them (A delivers now).
    await b.waitForLog((l) => l.msg === 'webhooks: this node stops delivering');
    await new Promise((r) => setTimeout(r, 2000));
    const got = receiver.received().slice(from);
    assert.deepEqual(
      typesOf(
        got.map((r) => r.event),
        tech,
      ),
      ['technician.online', ...JOB, 'technician.offline'],
    );
    assert.equal(new Set(got.map((r) => r.event.id)).size, got.length, 'no event delivered twice');
    assertOrderedPerKey(receiver.unique());
  });
});

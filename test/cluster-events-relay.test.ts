/**
 * Multi-node events: an acked change's event is in the shared stream before the ack.
 * Real processes: node A reaches a real redis-server only through a TCP proxy the test can
 * stall (every byte held, the connection left open: a Redis that does not answer); node B
 * talks to Redis directly.
 *
 * - kill -9 at the ack: while A's Redis is stalled, A's device checks in; the relay's
 *   request for that event is held in the proxy. The test kills A the moment the ack
 *   arrives (dropping what the proxy still holds) and releases the stall shortly after the
 *   request was held. An ack that came before the event reached Redis loses the event from
 *   the stream; here the ack waits for the relay, so the event is in the stream, and B,
 *   which takes the technician over, relays its later events of the same order after it.
 * - Redis not answering at all: an SOS (and its cancel) from a device on A is still acked
 *   while the stall lasts (the wait for the stream is bounded), and both events reach the
 *   stream once Redis answers again.
 * - A hand-over: the technician's device moves from A to B while only A's relay connection
 *   is stalled (its leases and bus flow on). A's last event of the technician (its
 *   `technician.offline`) is held; B's check-in for the technician's order waits until A's
 *   relay flushed and A handed the lease over, so it enters the stream after A's event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DispatchEvent } from '../src/protocol.js';
import { assertOrderedPerKey } from './support/event-order.js';
import { pullAllEvents } from './support/event-stream-reader.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import { RedisServer } from './support/redis-server.js';
import { ServerProcess } from './support/server-process.js';
import { TcpProxy } from './support/tcp-proxy.js';

const HOME = PLACES.paris;

/**
 * A's bound on waiting for the stream, well past the test's stall of the kill test (so a
 * busy machine cannot turn it into an outage) and short enough that A keeps its leases
 * (renewed every 2 s, provably held for 7 s) through the outage test's stall.
 */
const WAIT_MS = '3000';

let redis: RedisServer;
let proxy: TcpProxy;
let a: ServerProcess;
let b: ServerProcess;
before(async () => {
  redis = await RedisServer.launch();
  proxy = await TcpProxy.start(redis.port);
  a = await ServerProcess.start({
    env: { ...QUIET_DEADLINES_ENV, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, EVENTS_RELAY_WAIT_MS: WAIT_MS },
  });
  b = await ServerProcess.start({ env: { ...QUIET_DEADLINES_ENV, REDIS_URL: redis.url } });
});
after(async () => {
  for (const node of [a, b]) {
    if (node === undefined) continue;
    if (node.exitCode === undefined) await node.crash().catch(() => undefined);
    node.cleanup();
  }
  await proxy?.close();
  await redis?.destroy();
});

/** A device of `tech` on `node`, once `node` runs the technician. */
async function deviceOn(node: ServerProcess, tech: string) {
  const d = await node.device(tech);
  assert.equal((await d.ping({ ts: Date.now(), ...HOME })).t, 'ack');
  await node.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
  return d;
}

/** `tech`'s device on node A with order `job` (created through B) departed. */
async function departedOnA(tech: string, job: string) {
  const onA = await deviceOn(a, tech);
  const put = await b.http('PUT', `/v1/orders/${job}`, {
    role: 'dispatch',
    body: { technician: tech, ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 60 },
  });
  assert.equal(put.status, 200, put.text);
  assert.equal((await onA.depart(job)).t, 'ack');
  return onA;
}

const typesOf = (events: DispatchEvent[], key: (e: DispatchEvent) => boolean) => events.filter(key).map((e) => e.type);

describe('events of acked changes are in the shared stream before the ack (real processes, stalled redis)', () => {
  it('redis not answering: an SOS and its cancel are still acked; their events follow once it answers', async () => {
    const tech = 'relay-sos';
    const d = await deviceOn(a, tech);
    proxy.stall();
    try {
      const sos = await d.sos({ ts: Date.now(), ...HOME });
      assert.equal(sos.t, 'ack', JSON.stringify(sos));
      const incident = (sos as unknown as { incident: string }).incident;
      assert.equal((await d.sosCancel(incident)).t, 'ack');
      // Both acks came while Redis was still stalled: the wait for the stream gave up.
      assert.deepEqual(
        typesOf(await pullAllEvents(b), (e) => e.tech === tech && e.type.startsWith('alert.')),
        [],
        'acked before the events were in the stream',
      );
      assert.ok(
        a.logs.some((l) => l.msg.startsWith('event relay: redis did not take an event in time')),
        'the node says it answers without the stream',
      );
    } finally {
      proxy.release();
    }
    const pulled = await eventually('both events in the stream (read on B)', async () => {
      const all = await pullAllEvents(b);
      return typesOf(all, (e) => e.tech === tech && e.type.startsWith('alert.')).length >= 2 ? all : false;
    });
    assert.deepEqual(
      typesOf(pulled, (e) => e.tech === tech && e.type.startsWith('alert.')),
      ['alert.opened', 'alert.changed'],
    );
    await a.waitForLog((l) => l.msg === 'event relay: caught up; answers wait for the shared stream again');
    await d.close();
  });

  it('a hand-over waits until the old node’s events are in the stream (its relay stalled, its leases not)', async () => {
    const tech = 'relay-moving';
    const job = 'relay-move-job';
    await departedOnA(tech, job);

    // Only A's relay connection stalls, at the event A stores when its device is moved on.
    proxy.stallWhen('technician.offline');
    try {
      const onB = await b.newDevice(tech);
      await onB.connect();
      await eventually('A’s technician.offline held on its way to the stream', () => proxy.holds('technician.offline'));
      // B runs the technician only once A handed it over; this check-in waits for that.
      const checkin = onB.checkin({ order: job, ts: Date.now(), ...HOME, acc: 5 });
      await new Promise((r) => setTimeout(r, 300));
      proxy.release();
      assert.equal((await checkin).t, 'ack');
      await onB.close();
    } finally {
      proxy.release();
    }
    const pulled = await eventually('B’s technician.offline in the stream', async () => {
      const all = await pullAllEvents(b);
      return typesOf(all, (e) => e.tech === tech && e.type === 'technician.offline').length >= 2 ? all : false;
    });
    assert.deepEqual(
      typesOf(pulled, (e) => e.tech === tech),
      [
        'technician.online',
        'order.assigned',
        'order.departed',
        'technician.online',
        'technician.offline',
        'order.arrived',
        'technician.offline',
      ],
      'A’s last event before B’s first event of the technician’s order',
    );
    assertOrderedPerKey(pulled);
  });

  it('kill -9 right at the ack: the acked event is in the stream, ahead of the new node’s events of its order', async () => {
    const tech = 'relay-tech';
    const job = 'relay-job';
    const onA = await departedOnA(tech, job);

    proxy.stall();
    // A dies the moment its device is acked; what the proxy still holds never reaches Redis.
    let killed = false;
    const acked = onA.checkin({ order: job, ts: Date.now(), ...HOME, acc: 5 }).then(async (reply) => {
      await a.crash();
      proxy.cut();
      killed = true;
      return reply;
    });
    // Both requests of the check-in are stuck: the relay of its event and the copy of the
    // order's new state (state mirror) that the next node loads.
    // Redis answers again once both are held (or after a second at most: a reply already on
    // its way when the stall began may hold the relay back), well within A's bound.
    const sentAt = Date.now();
    await eventually(
      'the check-in’s event and state held in the proxy',
      () => killed || (proxy.holds('order.arrived') && proxy.holds('"state":"arrived"')) || Date.now() - sentAt > 1000,
    );
    // Redis answers again a little later (well within the node's bounded wait).
    await Promise.race([acked, new Promise((r) => setTimeout(r, 200))]);
    proxy.release();
    const reply = await acked;
    assert.equal(reply.t, 'ack', JSON.stringify(reply));
    // A is dead: what is in the stream now is all A ever put there.
    assert.deepEqual(
      typesOf(await pullAllEvents(b), (e) => e.order === job),
      ['order.assigned', 'order.departed', 'order.arrived'],
      'the acked check-in’s event is in the shared stream',
    );

    // The technician's device goes to B, which takes it over once A's lease has expired.
    const onB = await b.newDevice(tech);
    await onB.connect();
    assert.equal((await onB.ping({ ts: Date.now(), ...HOME })).t, 'ack');
    await b.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
    assert.equal((await onB.start(job)).t, 'ack');
    assert.equal((await onB.complete(job)).t, 'ack');
    await onB.close();

    const pulled = await eventually('B’s events of the order in the stream', async () => {
      const all = await pullAllEvents(b);
      return all.some((e) => e.order === job && e.type === 'order.completed') ? all : false;
    });
    assert.deepEqual(
      typesOf(pulled, (e) => e.order === job),
      ['order.assigned', 'order.departed', 'order.arrived', 'order.in_service', 'order.completed'],
    );
    assert.deepEqual(
      typesOf(pulled, (e) => e.tech === tech),
      [
        'technician.online',
        'order.assigned',
        'order.departed',
        'order.arrived',
        'technician.online',
        'order.in_service',
        'order.completed',
        'technician.offline',
      ],
    );
    const ids = pulled.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids, 'ids ascend');
    assertOrderedPerKey(pulled);
  });
});

/**
 * The shared webhook service of several nodes (src/events/shared-webhooks.ts) against a
 * real redis-server: two "nodes" in this process, each with its own connections, stream
 * follower and lease loop, and a sender under test control that records which node sent
 * what.
 *
 * - A webhook created on the node that does not deliver is picked up by the one that does;
 *   each event is sent by one node only, in order per technician.
 * - Events dead after the (short) retry window are listed by the other node, redelivered
 *   from it, and delivered; the counts agree on both nodes.
 * - A graceful stop of the delivering node gives the lease up: the other node delivers at
 *   once what follows, without sending again what was delivered.
 * - With a small WEBHOOK_MAX_PENDING_IN_MEMORY and a receiver down, the delivering node
 *   holds at most that many events, and so does the node taking over; once the receiver is
 *   back every event arrives once, in order per technician, read back from the stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { RedisEventStream } from '../src/events/event-stream-redis.js';
import type { Send } from '../src/events/http-sender.js';
import { SharedWebhooks } from '../src/events/shared-webhooks.js';
import { DELIVERY_LEASE, RedisWebhookStore } from '../src/events/webhook-store-redis.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { DispatchEvent } from '../src/protocol.js';
import { RedisLeases } from '../src/shared/leases-redis.js';
import { assertOrderedPerKey } from './support/event-order.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

const log = createLogger('silent');
const PREFIX = 'sw:';
const OPTS = {
  allowPrivate: true,
  maxInFlight: 4,
  maxPendingInMemory: 10_000,
  timeoutMs: 1000,
  retry: { baseMs: 20, maxMs: 50, forMs: 300 },
  retentionMs: 3600_000,
};

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.launch();
});
after(async () => {
  await redis.destroy();
});

interface Sent {
  node: string;
  event: DispatchEvent;
  ok: boolean;
}

/** One node's share: its stream, store, leases and webhook service. */
async function node(id: string, sent: Sent[], fails: (ev: DispatchEvent) => boolean, opts = OPTS, prefix = PREFIX) {
  const stream = new RedisEventStream({ url: redis.url, prefix });
  stream.start();
  const store = new RedisWebhookStore(redis.url, prefix);
  const leases = new RedisLeases(redis.url, prefix);
  const send: Send = async (_url, _headers, body) => {
    const event = JSON.parse(body) as DispatchEvent;
    const ok = !fails(event);
    sent.push({ node: id, event, ok });
    return ok ? { ok: true } : { ok: false, error: 'HTTP 500' };
  };
  const metrics = new Metrics();
  const hooks = new SharedWebhooks({ stream, store, leases, nodeId: id, clock: systemClock, log, metrics, send }, opts);
  hooks.start();
  return {
    id,
    hooks,
    stream,
    /** Pending events this node holds in memory, over every webhook. */
    inMemory: () => [...metrics.webhookPendingSource()].reduce((n, [, , m]) => n + m, 0),
    async close() {
      await hooks.close();
      await Promise.all([stream.close(), store.close(), leases.close()]);
    },
  };
}

const draft = (tech: string, i: number): DispatchEvent => ({
  id: `0000000000001-${String(i).padStart(4, '0')}`,
  type: 'order.departed',
  ts: i,
  order: `o-${tech}`,
  tech,
  data: { i },
});

describe('shared webhooks (two nodes, real redis)', () => {
  it('one node delivers; dead events are listed and redelivered from the other; a graceful stop hands delivery over', async () => {
    const sent: Sent[] = [];
    let failing = (ev: DispatchEvent) => ev.tech === 't-bad';
    const n1 = await node('node-1', sent, (ev) => failing(ev));
    const n2 = await node('node-2', sent, (ev) => failing(ev));
    try {
      const holder = await eventually('one node delivers', () =>
        n1.hooks.delivers() ? n1 : n2.hooks.delivers() ? n2 : false,
      );
      const other = holder === n1 ? n2 : n1;
      assert.equal(other.hooks.delivers(), false, 'only one node delivers');

      // Created on the node that does not deliver.
      const created = await other.hooks.create({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
      assert.ok(created.ok);
      const hook = created.value.id;
      assert.equal((await holder.hooks.list()).length, 1);
      await new Promise((r) => setTimeout(r, 800)); // the holder syncs within 0.5 s

      // Events of two technicians, relayed by some node; those of t-bad fail until dead.
      let local = 0;
      // Relayed through the node that stays up to the end.
      const relay = (tech: string, n: number) =>
        other.stream.relay(
          'relay-a',
          Date.now(),
          Array.from({ length: n }, () => draft(tech, local++)),
        );
      await relay('t-good', 5);
      await relay('t-bad', 3);
      const dead = await eventually('the failing events dead, listed on the other node', async () => {
        const d = await other.hooks.dead(hook);
        return d.ok && d.value.length === 3 ? d.value : false;
      });
      assert.deepEqual(
        dead.map((d) => d.event.data.i),
        [5, 6, 7],
      );
      await eventually('the good events delivered', () => sent.filter((s) => s.ok).length === 5);

      // Redelivered from the other node, now answered: delivered by the holder.
      failing = () => false;
      const re = await other.hooks.redeliver(hook);
      assert.ok(re.ok);
      assert.equal(re.value.redelivered, 3);
      await eventually('the redelivered events delivered', () => sent.filter((s) => s.ok).length === 8);
      assert.ok(
        sent.every((s) => s.node === holder.id),
        'every attempt by the delivering node',
      );
      const view = await eventually('published counts', async () => {
        const v = await other.hooks.get(hook);
        return v.ok && v.value.pending === 0 && v.value.delivered === 8 ? v.value : false;
      });
      assert.equal(view.dead, 0);
      assert.equal('secret' in view, false);

      // A graceful stop gives the lease up: the other node delivers what follows, and only that.
      const before = sent.length;
      await holder.close();
      // Given up at once, not left to run out.
      const probe = new RedisLeases(redis.url, PREFIX);
      assert.notEqual(await probe.holder(DELIVERY_LEASE), holder.id);
      await probe.close();
      await eventually('the other node delivers', () => other.hooks.delivers(), 10_000);
      await relay('t-good', 2);
      await eventually('the new events delivered', () => sent.filter((s) => s.ok).length === 10);
      await new Promise((r) => setTimeout(r, 500));
      const after = sent.slice(before);
      assert.deepEqual(
        after.map((s) => [s.node, s.event.data.i]),
        [
          [other.id, 8],
          [other.id, 9],
        ],
      );
      // Each technician's events went out in order.
      const good = sent.filter((s) => s.ok && s.event.tech === 't-good').map((s) => s.event.id);
      assert.deepEqual([...good].sort(), good);
    } finally {
      await n1.close().catch(() => undefined);
      await n2.close().catch(() => undefined);
    }
  });

  it('holds at most the in-memory bound per webhook on the delivering node and across a take-over', async () => {
    const sent: Sent[] = [];
    let down = true;
    const opts = { ...OPTS, maxPendingInMemory: 10, retry: { baseMs: 20, maxMs: 50, forMs: 600_000 } };
    // A deployment of its own: the webhook of the test above is not in it.
    const n1 = await node('node-3', sent, () => down, opts, 'sw-bound:');
    const n2 = await node('node-4', sent, () => down, opts, 'sw-bound:');
    let maxInMemory = 0;
    const sampler = setInterval(() => {
      maxInMemory = Math.max(maxInMemory, n1.inMemory(), n2.inMemory());
    }, 5);
    try {
      const holder = await eventually('one node delivers', () =>
        n1.hooks.delivers() ? n1 : n2.hooks.delivers() ? n2 : false,
      );
      const other = holder === n1 ? n2 : n1;
      const created = await holder.hooks.create({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
      assert.ok(created.ok);
      const hook = created.value.id;
      await new Promise((r) => setTimeout(r, 800)); // the holder syncs within 0.5 s
      let local = 0;
      for (let batch = 0; batch < 4; batch++) {
        await other.stream.relay(
          'relay-b',
          Date.now(),
          Array.from({ length: 50 }, () => {
            const i = local++;
            return { ...draft(`t-${i % 7}`, i), order: `o-${i % 11}` };
          }),
        );
      }
      await eventually('200 pending, published', async () => {
        const v = await other.hooks.get(hook);
        return v.ok && v.value.pending === 200;
      });
      assert.ok(sent.length > 0 && sent.every((s) => !s.ok), 'the receiver is down');

      // The holder stops; the other node takes over the backlog, still bounded.
      await holder.close();
      await eventually('the other node delivers', () => other.hooks.delivers(), 10_000);
      await eventually('the backlog taken over', async () => {
        const v = await other.hooks.get(hook);
        return v.ok && v.value.pending === 200 && other.inMemory() > 0;
      });
      down = false;
      await eventually('every event delivered', () => sent.filter((s) => s.ok).length >= 200, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(maxInMemory <= 10, `at most 10 in memory, saw ${maxInMemory}`);
      const ok = sent.filter((s) => s.ok).map((s) => s.event);
      assert.equal(ok.length, 200, 'each once');
      assert.deepEqual(
        ok.map((e) => e.data.i as number).sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i),
      );
      assertOrderedPerKey(ok);
    } finally {
      clearInterval(sampler);
      await n1.close().catch(() => undefined);
      await n2.close().catch(() => undefined);
    }
  });
});

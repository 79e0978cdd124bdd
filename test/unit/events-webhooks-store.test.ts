/**
 * The webhook service over its durable files (src/events/webhooks.ts, webhook-store.ts,
 * event-log.ts) with a sender under test control, reopened on the same folder as a restart
 * would: delivered events are not sent again, pending ones are, dead events and their
 * redelivery survive, and compaction keeps all of that.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { EventLog } from '../../src/events/event-log.js';
import type { Send, SendResult } from '../../src/events/http-sender.js';
import { Webhooks } from '../../src/events/webhooks.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { DispatchEvent } from '../../src/protocol.js';
import { assertOrderedPerKey } from '../support/event-order.js';
import { tempDirs } from '../support/fixtures.js';

const tempDir = tempDirs('webhooks-store');
const log = createLogger('silent');
const OPTS = {
  allowPrivate: true,
  maxInFlight: 4,
  maxPendingInMemory: 10_000,
  timeoutMs: 1000,
  retry: { baseMs: 100, maxMs: 1000, forMs: 10_000 },
  retentionMs: 3600_000,
};

/** A node's events and webhooks on `dir`, with every attempt answered by `answer`. */
async function open(dir: string, clock: ManualClock, answer: (ev: DispatchEvent) => SendResult, opts = OPTS) {
  const sent: DispatchEvent[] = [];
  const send: Send = async (_url, _headers, body) => {
    const ev = JSON.parse(body) as DispatchEvent;
    sent.push(ev);
    return answer(ev);
  };
  const events = await EventLog.open(dir, clock, log);
  const metrics = new Metrics();
  const webhooks = await Webhooks.open({ dataDir: dir, events, clock, log, metrics, send }, opts);
  return {
    events,
    webhooks,
    sent,
    /** `[webhook, pending, held in memory]`, as the metrics read them. */
    pending: () => [...metrics.webhookPendingSource()],
    async close() {
      await webhooks.close();
      await events.close();
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 30));

function draft(order: string, tech: string) {
  return { type: 'order.assigned' as const, ts: 1, order, tech, data: {} };
}

describe('webhooks across restarts', () => {
  it('sends after a restart exactly what was not delivered, keeps dead events and their redelivery', async () => {
    const dir = await tempDir();
    const clock = new ManualClock(1_000_000);
    const failing = new Set<string>(['o-bad']);
    const answer = (ev: DispatchEvent): SendResult =>
      failing.has(ev.order as string) ? { ok: false, error: 'HTTP 500' } : { ok: true };

    let node = await open(dir, clock, answer);
    await node.events.append(draft('o-old', 't-0')); // before the webhook: never sent to it
    const made = await node.webhooks.create({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
    assert.ok(made.ok);
    const id = made.value.id;
    for (let i = 0; i < 3; i++) await node.events.append(draft(`o-${i}`, `t-${i}`));
    await node.events.append(draft('o-bad', 't-bad'));
    await settle();
    assert.deepEqual(node.sent.map((e) => e.order).sort(), ['o-0', 'o-1', 'o-2', 'o-bad']);
    // Let the failing one die: the retry window is 10 s on the manual clock.
    for (let i = 0; i < 40 && !node.webhooks.dead(id).ok; i++) await settle();
    for (let i = 0; i < 40; i++) {
      clock.advance(1000);
      await settle();
      const dead = node.webhooks.dead(id);
      if (dead.ok && dead.value.length === 1) break;
    }
    const dead = node.webhooks.dead(id);
    assert.ok(dead.ok && dead.value.length === 1 && dead.value[0]?.event.order === 'o-bad');
    // A pending event when the node stops: its technician is blocked by nothing, but the receiver fails now.
    failing.add('o-late');
    await node.events.append(draft('o-late', 't-late'));
    await settle();
    await node.close();

    // Restart: only o-late is pending; the dead event is still listed, not sent.
    failing.clear();
    node = await open(dir, clock, answer);
    await settle();
    assert.deepEqual(
      node.sent.map((e) => e.order),
      ['o-late'],
    );
    const view = node.webhooks.get(id);
    assert.ok(view.ok);
    assert.equal(view.value.dead, 1);
    assert.equal(view.value.pending, 0);

    // Redelivery is durable: stop before the receiver takes it, restart, it is sent.
    failing.add('o-bad');
    const re = await node.webhooks.redeliver(id);
    assert.ok(re.ok && re.value.redelivered === 1);
    await settle();
    await node.close();
    failing.clear();
    node = await open(dir, clock, answer);
    await settle();
    assert.deepEqual(
      node.sent.map((e) => e.order),
      ['o-bad'],
    );
    const after = node.webhooks.get(id);
    assert.ok(after.ok && after.value.dead === 0 && after.value.pending === 0);
    await node.close();

    // And once delivered, nothing again.
    node = await open(dir, clock, answer);
    await settle();
    assert.deepEqual(node.sent, []);
    await node.close();
  });

  it('holds at most WEBHOOK_MAX_PENDING_IN_MEMORY per webhook, also after a restart, and reads the rest back from the log in order', async () => {
    const dir = await tempDir();
    const clock = new ManualClock(1_000_000);
    let up = false;
    const ok: DispatchEvent[] = [];
    // Down, except for technician t-ok: its events are delivered out of id order while others wait.
    const answer = (ev: DispatchEvent): SendResult => {
      if (!up && ev.tech !== 't-ok') return { ok: false, error: 'connect ECONNREFUSED' };
      ok.push(ev);
      return { ok: true };
    };
    let node = await open(dir, clock, answer, { ...OPTS, maxPendingInMemory: 20 });
    const made = await node.webhooks.create({ url: 'http://127.0.0.1:9/hook', events: ['order.assigned'] });
    assert.ok(made.ok);
    const id = made.value.id;
    const TOTAL = 400;
    const appends: Array<Promise<DispatchEvent>> = [];
    for (let i = 0; i < TOTAL; i++) {
      appends.push(node.events.append(draft(`o-${i % 13}`, i % 4 === 0 ? 't-ok' : `t-${i % 7}`)));
      if (i % 50 === 49) await Promise.all(appends);
    }
    const stored = await Promise.all(appends);
    await settle();
    await settle();
    const [, pending, inMemory] = node.pending()[0] as [string, number, number];
    assert.ok(inMemory <= 20, `at most 20 in memory, ${inMemory}`);
    assert.equal(pending + ok.length, TOTAL, 'pending counts the events left in the log');
    const view = node.webhooks.get(id);
    assert.ok(view.ok && view.value.pending === pending);
    assert.ok(ok.length > 0, 't-ok events were delivered before the restart');
    const okBefore = ok.length;
    await node.close();

    // A restart with a smaller bound: the scan keeps 5, the rest is read back as the backlog drains.
    node = await open(dir, clock, answer, { ...OPTS, maxPendingInMemory: 5 });
    await settle();
    const [, pendingAfter, inMemoryAfter] = node.pending()[0] as [string, number, number];
    assert.ok(inMemoryAfter <= 5, `at most 5 in memory after the restart, ${inMemoryAfter}`);
    assert.equal(pendingAfter, TOTAL - ok.length);
    up = true;
    let maxInMemory = 0;
    for (let round = 0; round < 400 && ok.length < TOTAL; round++) {
      clock.advance(500);
      await settle();
      const [, , n] = node.pending()[0] as [string, number, number];
      maxInMemory = Math.max(maxInMemory, n);
    }
    assert.ok(maxInMemory <= 5, `at most 5 in memory while draining, ${maxInMemory}`);
    const ids = ok.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event delivered twice');
    assert.deepEqual(
      [...ids].sort(),
      stored.map((e) => e.id),
      'every event delivered',
    );
    assert.ok(okBefore < TOTAL);
    assertOrderedPerKey(ok);
    const done = node.webhooks.get(id);
    assert.ok(done.ok && done.value.pending === 0 && done.value.dead === 0);
    await node.close();
  });

  it('forgets a deleted webhook across a restart', async () => {
    const dir = await tempDir();
    const clock = new ManualClock(1_000_000);
    let node = await open(dir, clock, () => ({ ok: true }));
    const made = await node.webhooks.create({ url: 'http://127.0.0.1:9/hook', events: ['order.completed'] });
    assert.ok(made.ok);
    assert.ok((await node.webhooks.remove(made.value.id)).ok);
    await node.close();
    node = await open(dir, clock, () => ({ ok: true }));
    assert.deepEqual(node.webhooks.list(), []);
    await node.close();
  });
});

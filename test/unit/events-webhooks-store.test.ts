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
import { tempDirs } from '../support/fixtures.js';

const tempDir = tempDirs('webhooks-store');
const log = createLogger('silent');
const OPTS = {
  allowPrivate: true,
  maxInFlight: 4,
  timeoutMs: 1000,
  retry: { baseMs: 100, maxMs: 1000, forMs: 10_000 },
  retentionMs: 3600_000,
};

/** A node's events and webhooks on `dir`, with every attempt answered by `answer`. */
async function open(dir: string, clock: ManualClock, answer: (ev: DispatchEvent) => SendResult) {
  const sent: DispatchEvent[] = [];
  const send: Send = async (_url, _headers, body) => {
    const ev = JSON.parse(body) as DispatchEvent;
    sent.push(ev);
    return answer(ev);
  };
  const events = await EventLog.open(dir, clock, log);
  const webhooks = await Webhooks.open({ dataDir: dir, events, clock, log, metrics: new Metrics(), send }, OPTS);
  return {
    events,
    webhooks,
    sent,
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

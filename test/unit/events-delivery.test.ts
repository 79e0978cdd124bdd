/**
 * Webhook delivery on a manual clock (src/events/delivery.ts): ordering per order and per
 * technician, independent keys in parallel under the in-flight cap, the retry schedule
 * over a whole 24-hour window, dead events and redelivery; and the event id generator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { type DeadEvent, retryDelay, WebhookDelivery } from '../../src/events/delivery.js';
import { EventIdGenerator } from '../../src/events/event-id.js';
import type { SendResult } from '../../src/events/http-sender.js';
import { signatureHeader, verifySignature } from '../../src/events/signature.js';
import type { DispatchEvent } from '../../src/protocol.js';

const HOUR = 3600_000;
const POLICY = { baseMs: 1000, maxMs: HOUR, forMs: 24 * HOUR };

function ev(id: string, order?: string, tech?: string): DispatchEvent {
  return {
    id,
    type: 'order.departed',
    ts: 0,
    ...(order !== undefined ? { order } : {}),
    ...(tech !== undefined ? { tech } : {}),
    data: {},
  };
}

/** A receiver under test control: each attempt waits until the test answers it. */
class Calls {
  readonly open: Array<{ ev: DispatchEvent; answer: (r: SendResult) => void }> = [];
  readonly log: string[] = [];
  attempt = (e: DispatchEvent): Promise<SendResult> =>
    new Promise((answer) => {
      this.log.push(e.id);
      this.open.push({ ev: e, answer });
    });
  /** Answers the open attempt of `id`. */
  answer(id: string, result: SendResult): void {
    const i = this.open.findIndex((c) => c.ev.id === id);
    assert.ok(i >= 0, `no open attempt of ${id}; open: ${this.open.map((c) => c.ev.id).join(',')}`);
    const [call] = this.open.splice(i, 1);
    call?.answer(result);
  }
  get openIds(): string[] {
    return this.open.map((c) => c.ev.id).sort();
  }
}

const flush = () => new Promise((r) => setImmediate(r));

function setup(maxInFlight = 8, random = () => 0.5) {
  const clock = new ManualClock(0);
  const calls = new Calls();
  const delivered: string[] = [];
  const dead: DeadEvent[] = [];
  let retried = 0;
  const d = new WebhookDelivery(
    '*',
    clock,
    POLICY,
    maxInFlight,
    calls.attempt,
    {
      delivered: (e) => delivered.push(e.id),
      retried: () => {
        retried++;
      },
      dead: (x) => dead.push(x),
    },
    random,
  );
  return { clock, calls, delivered, dead, d, retried: () => retried };
}

describe('webhook delivery', () => {
  it('sends a later event of an order or a technician only after the earlier one, others in parallel', async () => {
    const { calls, d } = setup();
    d.offer(ev('1', 'o1', 'a'));
    d.offer(ev('2', 'o1', 'a')); // same order and technician as 1
    d.offer(ev('3', 'o2', 'a')); // same technician as 1
    d.offer(ev('4', 'o3', 'b')); // independent
    d.offer(ev('5', undefined, 'b')); // technician b, after 4
    assert.deepEqual(calls.openIds, ['1', '4']);
    calls.answer('4', { ok: true });
    await flush();
    assert.deepEqual(calls.openIds, ['1', '5']);
    calls.answer('1', { ok: true });
    await flush();
    assert.deepEqual(calls.openIds, ['2', '5'], '3 waits for 2: both are technician a');
    calls.answer('2', { ok: true });
    await flush();
    assert.deepEqual(calls.openIds, ['3', '5']);
  });

  it('keeps at most maxInFlight attempts open', async () => {
    const { calls, d } = setup(2);
    for (let i = 0; i < 5; i++) d.offer(ev(`${i}`, `o${i}`, `t${i}`));
    assert.equal(calls.open.length, 2);
    calls.answer('0', { ok: true });
    await flush();
    assert.deepEqual(calls.openIds, ['1', '2']);
  });

  it('takes ready events oldest first, whatever order they became ready in', async () => {
    const { calls, d } = setup(1);
    const ids = Array.from({ length: 200 }, (_, i) => String(i).padStart(3, '0'));
    const shuffled = [...ids].sort((a, b) => ((Number(b) * 7919) % 211) - ((Number(a) * 7919) % 211));
    for (const id of shuffled) d.offer(ev(id, `o${id}`, `t${id}`));
    const first = calls.openIds[0] as string;
    const order: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const [open] = calls.openIds;
      order.push(open as string);
      calls.answer(open as string, { ok: true });
      await flush();
    }
    assert.deepEqual(
      order.slice(1),
      ids.filter((id) => id !== first),
    );
  });

  it('retries with exponential backoff and jitter for 24 hours, then the event is dead and the next one goes', async () => {
    const { clock, calls, d, dead, retried } = setup();
    d.offer(ev('1', 'o1', 'a'));
    d.offer(ev('2', 'o1', 'a'));
    const times: number[] = [];
    for (;;) {
      assert.deepEqual(calls.openIds, ['1'], 'event 2 never overtakes event 1');
      times.push(clock.now());
      calls.answer('1', { ok: false, error: 'HTTP 500' });
      await flush();
      if (dead.length > 0) break;
      clock.advance(HOUR);
      await flush();
    }
    // Gaps (random 0.5: 75% of the exponential delay) until the cap, then an hour.
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    assert.equal(gaps[0], HOUR, 'clock stepped an hour each round');
    assert.equal(times.at(-1), 24 * HOUR, 'the last attempt is made at the end of the window');
    assert.equal(dead[0]?.attempts, times.length);
    assert.equal(dead[0]?.lastError, 'HTTP 500');
    assert.equal(retried(), times.length - 1);
    assert.equal(d.deadEvents.size, 1);
    await flush();
    assert.deepEqual(calls.openIds, ['2'], 'the dead event no longer holds its order back');
  });

  it('computes the documented schedule', () => {
    assert.equal(retryDelay(POLICY, 1, 0), 500);
    assert.equal(retryDelay(POLICY, 1, 0.999999), 1000);
    assert.equal(retryDelay(POLICY, 4, 0), 4000);
    assert.equal(retryDelay(POLICY, 30, 0.5), 0.75 * HOUR, 'capped at maxMs before jitter');
    // Attempts in the first day with the smallest jitter: the schedule is bounded.
    let t = 0;
    let n = 0;
    while (t < POLICY.forMs) t += retryDelay(POLICY, ++n, 0);
    assert.ok(n > 20 && n < 60, `about a day of retries in ${n} attempts`);
  });

  it('times a retry on the clock: not before it is due', async () => {
    const { clock, calls, d } = setup(8, () => 0);
    d.offer(ev('1', 'o1', 'a'));
    calls.answer('1', { ok: false, error: 'down' });
    await flush();
    clock.advance(499);
    await flush();
    assert.deepEqual(calls.openIds, []);
    clock.advance(1);
    await flush();
    assert.deepEqual(calls.openIds, ['1']);
    calls.answer('1', { ok: false, error: 'down' });
    await flush();
    clock.advance(999);
    await flush();
    assert.deepEqual(calls.openIds, []);
    clock.advance(1);
    await flush();
    assert.deepEqual(calls.openIds, ['1']);
  });

  it('redelivers dead events with a fresh schedule', async () => {
    const { clock, calls, d, delivered } = setup();
    d.offer(ev('1', 'o1', 'a'));
    for (let i = 0; i < 100 && d.deadEvents.size === 0; i++) {
      calls.answer('1', { ok: false, error: 'x' });
      await flush();
      clock.advance(HOUR);
      await flush();
    }
    assert.equal(d.deadEvents.size, 1);
    d.offer(ev('2', 'o1', 'a'));
    calls.answer('2', { ok: true });
    await flush();
    assert.deepEqual(
      d.redeliver().map((e) => e.id),
      ['1'],
    );
    assert.deepEqual(calls.openIds, ['1']);
    calls.answer('1', { ok: true });
    await flush();
    assert.deepEqual(delivered, ['2', '1']);
    assert.equal(d.pendingCount, 0);
  });

  it('filters by type', () => {
    const clock = new ManualClock(0);
    const calls = new Calls();
    const d = new WebhookDelivery(new Set(['order.completed'] as const), clock, POLICY, 8, calls.attempt, {
      delivered: () => {},
      retried: () => {},
      dead: () => {},
    });
    d.offer(ev('1', 'o1', 'a'));
    d.offer({ ...ev('2', 'o1', 'a'), type: 'order.completed' });
    assert.deepEqual(calls.openIds, ['2']);
  });
});

describe('event ids and signatures', () => {
  it('makes fixed-width ids that sort as strings, also across a clock step back and a full millisecond', () => {
    const g = new EventIdGenerator();
    const ids = [g.next(1000), g.next(1000), g.next(999), g.next(2000)];
    for (let i = 0; i < 10_001; i++) ids.push(g.next(2000));
    for (let i = 1; i < ids.length; i++)
      assert.ok((ids[i - 1] as string) < (ids[i] as string), `${ids[i - 1]} < ${ids[i]}`);
    assert.equal(ids[0], '0000000001000-0000');
    assert.ok(ids.every((id) => /^\d{13}-\d{4}$/.test(id)));
    const resumed = new EventIdGenerator();
    resumed.resume(ids.at(-1) as string);
    assert.ok(resumed.next(5) > (ids.at(-1) as string), 'a restart with a clock behind continues after the newest id');
  });

  it('signs as PROTOCOL.md says and verifies within the tolerance', () => {
    const header = signatureHeader('s3cret-s3cret-s3cret', 1_700_000_000, '{"a":1}');
    assert.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
    assert.ok(verifySignature('s3cret-s3cret-s3cret', header, '{"a":1}', 1_700_000_100));
    assert.ok(!verifySignature('s3cret-s3cret-s3cret', header, '{"a":2}', 1_700_000_100));
    assert.ok(!verifySignature('s3cret-s3cret-s3cret', header, '{"a":1}', 1_700_001_000), 'too old');
  });
});

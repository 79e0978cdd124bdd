/**
 * Webhook delivery on a manual clock (src/events/delivery.ts): ordering per order and per
 * technician, independent keys in parallel under the in-flight cap, the retry schedule
 * over a whole 24-hour window, dead events and redelivery, the in-memory bound with the
 * backlog read back in order; and the event id generator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { type DeadEvent, retryDelay, WebhookDelivery } from '../../src/events/delivery.js';
import { EventIdGenerator, formatEventId } from '../../src/events/event-id.js';
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

describe('webhook delivery with a bounded memory', () => {
  const CAP = 50;
  const idOf = (n: number) => formatEventId(1_000_000 + Math.floor(n / 3), n % 3);

  /**
   * A webhook whose receiver is down while 20 times its in-memory bound is stored, some of
   * it not wanted; the store is an array read like the event log (a page per read, a tick
   * later, sometimes failing).
   */
  function bounded() {
    const clock = new ManualClock(0);
    const stored: DispatchEvent[] = [];
    const settled = new Set<string>();
    let down = true;
    let reads = 0;
    let failNextRead = false;
    let storeDuringReads = 0;
    const sent: string[] = [];
    const delivered: string[] = [];
    let maxInMemory = 0;
    let d: WebhookDelivery;
    const attempt = (e: DispatchEvent): Promise<SendResult> =>
      new Promise((resolve) =>
        setImmediate(() => {
          maxInMemory = Math.max(maxInMemory, d.inMemoryCount);
          if (down) return resolve({ ok: false, error: 'connect ECONNREFUSED' });
          sent.push(e.id);
          resolve({ ok: true });
        }),
      );
    d = new WebhookDelivery(
      new Set(['order.departed', 'alert.opened'] as const),
      clock,
      POLICY,
      8,
      attempt,
      {
        delivered: (e) => {
          delivered.push(e.id);
          settled.add(e.id);
        },
        retried: () => {},
        dead: () => assert.fail('nothing dies: the receiver is back within the retry window'),
      },
      () => 0.5,
      {
        maxInMemory: CAP,
        read: async (after, limit) => {
          reads++;
          await flush();
          if (failNextRead) {
            failNextRead = false;
            throw new Error('disk read failed');
          }
          const page = stored.filter((e) => after === null || e.id > after).slice(0, limit);
          // An event stored after a read that reached the newest one saw the store, before
          // its answer is used.
          if (page.length < limit && storeDuringReads > 0) {
            storeDuringReads--;
            store();
          }
          return page;
        },
        isPending: (e) => !settled.has(e.id),
        failed: () => {},
      },
    );
    let n = 0;
    /** Stores the next event and hands it to the delivery, as the event log's listener does. */
    function store(): void {
      const i = n++;
      const type =
        i % 10 === 9
          ? ('order.completed' as const)
          : i % 7 === 0
            ? ('alert.opened' as const)
            : ('order.departed' as const);
      const e: DispatchEvent = { id: idOf(i), type, ts: i, order: `o${i % 37}`, tech: `t${i % 11}`, data: {} };
      stored.push(e);
      d.offer(e);
      maxInMemory = Math.max(maxInMemory, d.inMemoryCount);
    }
    return {
      clock,
      d,
      stored,
      sent,
      delivered,
      store,
      maxInMemory: () => maxInMemory,
      reads: () => reads,
      /** Stored-during-read events not yet made. */
      left: () => storeDuringReads,
      up: () => {
        down = false;
      },
      failNextRead: () => {
        failNextRead = true;
      },
      storeDuringReads: (count: number) => {
        storeDuringReads = count;
      },
    };
  }

  it('holds at most the bound while the receiver is down, then sends every event once, in order per order and technician', async () => {
    const t = bounded();
    for (let i = 0; i < 20 * CAP; i++) t.store();
    await flush();
    const wanted = t.stored.filter((e) => e.type !== 'order.completed');
    assert.equal(t.d.inMemoryCount, CAP, 'the bound is reached and held');
    assert.equal(t.d.pendingCount, wanted.length, 'pending counts the events left in the backlog too');
    assert.equal(t.reads(), 0, 'nothing is read back while memory is full');
    const oldest = t.d.oldestPending as string;
    assert.ok(oldest <= (wanted[0] as DispatchEvent).id, 'retention and low marks keep every pending event');

    // The receiver comes back; events go on being stored while the backlog drains (some
    // while a read is under way), and one read fails.
    t.up();
    t.failNextRead();
    t.storeDuringReads(5);
    for (let round = 0; round < 2000 && t.delivered.length < wanted.length + 100; round++) {
      if (round % 3 === 0 && round < 300) t.store();
      t.clock.advance(1000);
      await flush();
      await flush();
    }
    const allWanted = t.stored.filter((e) => e.type !== 'order.completed').map((e) => e.id);
    assert.equal(t.sent.length, allWanted.length, 'every wanted event reached the receiver once');
    assert.deepEqual([...t.sent].sort(), allWanted, 'each exactly once, none not wanted');
    assert.ok(t.maxInMemory() <= CAP, `at most ${CAP} in memory, saw ${t.maxInMemory()}`);
    assert.ok(t.reads() > 1, 'the backlog was read back page by page');
    assert.equal(t.left(), 0, 'events were stored while a read reached the newest one');
    const byId = new Map(t.stored.map((e) => [e.id, e]));
    for (const key of ['order', 'tech'] as const) {
      const last = new Map<string, string>();
      for (const id of t.sent) {
        const k = (byId.get(id) as DispatchEvent)[key] as string;
        const before = last.get(k);
        assert.ok(before === undefined || before < id, `${key} ${k}: ${id} after ${before}`);
        last.set(k, id);
      }
    }
    assert.equal(t.d.pendingCount, 0);
    assert.equal(t.d.oldestPending, null, 'caught up: nothing left in the backlog');

    // Caught up: a new event is taken straight away again, without a read.
    const readsBefore = t.reads();
    t.store();
    t.store();
    for (let i = 0; i < 5; i++) await flush();
    assert.equal(t.reads(), readsBefore);
    assert.equal(t.sent.length, allWanted.length + 2);
  });
  it('marks the backlog as pending while memory is empty and a read back is under way', async () => {
    const clock = new ManualClock(0);
    const calls = new Calls();
    const stored = [ev(idOf(0), 'o1', 'a'), ev(idOf(1), 'o2', 'b'), ev(idOf(2), 'o3', 'c')];
    let release: () => void = () => {};
    const d = new WebhookDelivery(
      '*',
      clock,
      POLICY,
      8,
      calls.attempt,
      { delivered: () => {}, retried: () => {}, dead: () => {} },
      () => 0.5,
      {
        maxInMemory: 2,
        read: (after, limit) =>
          new Promise((resolve) => {
            release = () => resolve(stored.filter((e) => after === null || e.id > after).slice(0, limit));
          }),
        isPending: () => true,
        failed: () => {},
      },
    );
    for (const e of stored) d.offer(e);
    assert.equal(d.inMemoryCount, 2);
    assert.equal(d.pendingCount, 3);
    calls.answer(idOf(0), { ok: true });
    calls.answer(idOf(1), { ok: true });
    await flush();
    assert.equal(d.inMemoryCount, 0, 'both delivered; the third is being read back');
    const oldest = d.oldestPending;
    assert.ok(oldest !== null && oldest > idOf(1) && oldest <= idOf(2), `low mark ${oldest} keeps the third`);
    release();
    await flush();
    assert.deepEqual(calls.openIds, [idOf(2)]);
    calls.answer(idOf(2), { ok: true });
    await flush();
    assert.equal(d.pendingCount, 0);
    // That page was full (one event was wanted): only a read finding nothing newer ends the backlog.
    assert.equal(d.oldestPending, `${idOf(2)}~`);
    release();
    await flush();
    assert.equal(d.oldestPending, null);
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

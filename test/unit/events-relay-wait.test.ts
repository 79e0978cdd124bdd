/**
 * What an answer waits for in multi-node mode (src/events/event-relay.ts `relayed`): the
 * event relay over a real event log, a stand-in stream whose relay calls the test holds
 * or fails, and a manual clock.
 *
 * - `relayed(id)` resolves only once the stream took the event;
 * - while the stream does not answer it gives up after RELAY_WAIT_MS, the relay counts as
 *   behind, and later waits resolve at once (an outage costs one bounded wait, not one per
 *   answer), until the relay has caught up: then answers wait for the stream again;
 * - a failing stream (Redis refusing or unreachable) makes the relay behind at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { EventLog } from '../../src/events/event-log.js';
import { EventRelay, RELAY_WAIT_MS } from '../../src/events/event-relay.js';
import type { RedisEventStream } from '../../src/events/event-stream-redis.js';
import { createLogger } from '../../src/log.js';
import type { DispatchEvent } from '../../src/protocol.js';
import { tempDirs } from '../support/fixtures.js';

const tempDir = tempDirs('relay-wait');
const log = createLogger('silent');

/** The two calls the relay makes of the stream; relay calls can be held or made to fail. */
class StandInStream {
  readonly added: string[] = [];
  private held: Promise<void> | null = null;
  private let: (() => void) | null = null;
  failing = false;

  hold(): void {
    this.held = new Promise((r) => {
      this.let = r;
    });
  }

  release(): void {
    this.held = null;
    this.let?.();
  }

  async relayedUpTo(_node: string): Promise<string | null> {
    return null;
  }

  async relay(_node: string, _now: number, events: readonly DispatchEvent[]): Promise<number> {
    if (this.held !== null) await this.held;
    if (this.failing) throw new Error('connection refused');
    for (const e of events) this.added.push(e.id);
    return events.length;
  }
}

/** A promise and whether it has settled yet. */
function watch(p: Promise<void>): { done: () => boolean } {
  let settled = false;
  void p.then(() => {
    settled = true;
  });
  return { done: () => settled };
}

/** Lets the relay's promise chains (and the log's fsyncs) run. */
const settle = () => new Promise((r) => setTimeout(r, 30));

const draft = (tech: string) => ({ type: 'technician.online' as const, ts: 1, tech, data: { online: true } });

async function setUp() {
  const clock = new ManualClock();
  const events = await EventLog.open(await tempDir(), clock, log);
  const stream = new StandInStream();
  const relay = new EventRelay(events, stream as unknown as RedisEventStream, 'relay-test-1', clock, log, 3600_000);
  return { clock, events, stream, relay };
}

describe('waiting for the shared stream before an answer', () => {
  it('waits until the stream took the event; gives up after RELAY_WAIT_MS, then waits no more until caught up', async () => {
    const { clock, events, stream, relay } = await setUp();
    try {
      // Redis answers: the wait ends when the event is in the stream.
      stream.hold();
      const first = await events.append(draft('a'));
      const waitFirst = watch(relay.relayed(first.id));
      await settle();
      assert.equal(waitFirst.done(), false, 'no answer before the stream has the event');
      stream.release();
      await settle();
      assert.equal(waitFirst.done(), true);
      assert.deepEqual(stream.added, [first.id]);
      assert.equal(relay.lagging, false);

      // Redis stops answering: the wait gives up after RELAY_WAIT_MS, not before.
      stream.hold();
      const second = await events.append(draft('b'));
      const waitSecond = watch(relay.relayed(second.id));
      clock.advance(RELAY_WAIT_MS - 1);
      await settle();
      assert.equal(waitSecond.done(), false, 'still waiting within the bound');
      clock.advance(1);
      await settle();
      assert.equal(waitSecond.done(), true, 'answered after the bound');
      assert.equal(relay.lagging, true);
      assert.deepEqual(stream.added, [first.id], 'the event is not in the stream');

      // Behind: the next answer does not wait at all.
      const third = await events.append(draft('c'));
      const waitThird = watch(relay.relayed(third.id));
      await settle();
      assert.equal(waitThird.done(), true, 'no wait while the relay is behind');

      // Redis answers again: the relay catches up, and answers wait for the stream again.
      stream.release();
      await settle();
      assert.deepEqual(stream.added, [first.id, second.id, third.id]);
      assert.equal(relay.lagging, false);
      stream.hold();
      const fourth = await events.append(draft('d'));
      const waitFourth = watch(relay.relayed(fourth.id));
      await settle();
      assert.equal(waitFourth.done(), false, 'waiting again once caught up');
      stream.release();
      await settle();
      assert.equal(waitFourth.done(), true);
    } finally {
      stream.release();
      relay.stop();
      await events.close();
    }
  });

  it('a failing stream puts the relay behind at once; answers do not wait meanwhile', async () => {
    const { clock, events, stream, relay } = await setUp();
    try {
      // The relay's call is under way when the answer starts waiting, and then fails.
      stream.hold();
      stream.failing = true;
      const first = await events.append(draft('a'));
      const waitFirst = watch(relay.relayed(first.id));
      await settle();
      assert.equal(waitFirst.done(), false);
      stream.release();
      await settle();
      assert.equal(waitFirst.done(), true, 'answered without the bound: the relay failed');
      assert.equal(relay.lagging, true);
      const second = await events.append(draft('b'));
      const waitSecond = watch(relay.relayed(second.id));
      await settle();
      assert.equal(waitSecond.done(), true, 'no wait while Redis fails');
      // Back: the relay retries every second and catches up.
      stream.failing = false;
      clock.advance(1000);
      await settle();
      assert.deepEqual(stream.added, [first.id, second.id]);
      assert.equal(relay.lagging, false);
    } finally {
      stream.release();
      relay.stop();
      await events.close();
    }
  });
});

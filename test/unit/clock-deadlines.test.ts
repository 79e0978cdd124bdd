/**
 * The shared deadline structure (clock.ts, `DeadlineQueue`) on a manual clock: order by
 * time then insertion, cancel, many deadlines on one clock timer, deadlines added from a
 * firing one, and a `fire` that throws.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Clock, DeadlineQueue, ManualClock } from '../../src/clock.js';

function queue(clock = new ManualClock()): { clock: ManualClock; q: DeadlineQueue<string>; fired: string[] } {
  const fired: string[] = [];
  return { clock, q: new DeadlineQueue<string>(clock, (k) => fired.push(`${k}@${clock.now() - T0}`)), fired };
}

const T0 = new ManualClock().now();

describe('DeadlineQueue', () => {
  it('fires each deadline once, at its time, earliest first and in insertion order at equal times', () => {
    const { clock, q, fired } = queue();
    q.add(T0 + 300, 'c');
    q.add(T0 + 100, 'a');
    q.add(T0 + 300, 'd');
    q.add(T0 + 200, 'b');
    q.add(T0 + 100, 'a2');
    clock.advance(99);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, ['a@100', 'a2@100']);
    clock.advance(1000);
    assert.deepEqual(fired, ['a@100', 'a2@100', 'b@200', 'c@300', 'd@300']);
    assert.equal(q.size, 0);
    assert.equal(clock.pending, 0, 'no clock timer is left armed once the queue is empty');
  });

  it('fires a deadline whose time has passed right after it is added', () => {
    const { clock, q, fired } = queue();
    q.add(T0 - 5000, 'late');
    assert.deepEqual(fired, [], 'not from inside add');
    clock.advance(0);
    assert.deepEqual(fired, ['late@0']);
  });

  it('never fires a cancelled deadline, the earliest or any other; cancelling twice is harmless', () => {
    const { clock, q, fired } = queue();
    const a = q.add(T0 + 100, 'a');
    q.add(T0 + 200, 'b');
    const c = q.add(T0 + 300, 'c');
    q.add(T0 + 400, 'd');
    q.cancel(a);
    q.cancel(c);
    q.cancel(a);
    assert.equal(q.size, 2);
    clock.advance(1000);
    assert.deepEqual(fired, ['b@200', 'd@400']);
    const e = q.add(T0 + 1500, 'e');
    q.cancel(e);
    assert.equal(clock.pending, 0, 'cancelling the last deadline disarms the clock timer');
    clock.advance(1000);
    assert.deepEqual(fired, ['b@200', 'd@400']);
  });

  it('cancelling a deadline that already fired does not remove another one', () => {
    const { clock, q, fired } = queue();
    const a = q.add(T0 + 100, 'a');
    clock.advance(100);
    q.add(T0 + 200, 'b');
    q.cancel(a);
    clock.advance(100);
    assert.deepEqual(fired, ['a@100', 'b@200']);
  });

  it('a deadline earlier than the armed one re-arms the clock timer for it', () => {
    const { clock, q, fired } = queue();
    q.add(T0 + 1000, 'late');
    q.add(T0 + 10, 'early');
    clock.advance(10);
    assert.deepEqual(fired, ['early@10']);
  });

  it('keeps 20,000 deadlines in order on a single clock timer, with a third cancelled at random', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const q = new DeadlineQueue<number>(clock, (k) => fired.push(k));
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const at = new Map<number, number>();
    const handles = [];
    for (let k = 0; k < 20_000; k++) {
      const t = T0 + Math.floor(rand() * 60_000);
      at.set(k, t);
      handles.push(q.add(t, k));
    }
    assert.equal(clock.pending, 1, 'one clock timer for all of them');
    const cancelled = new Set<number>();
    for (let k = 0; k < 20_000; k++) {
      if (rand() < 1 / 3) {
        q.cancel(handles[k] as (typeof handles)[number]);
        cancelled.add(k);
      }
    }
    clock.advance(60_000);
    const expected = [...at.keys()]
      .filter((k) => !cancelled.has(k))
      .sort((a, b) => (at.get(a) as number) - (at.get(b) as number) || a - b);
    assert.deepEqual(fired, expected);
    assert.equal(q.size, 0);
  });

  it('a deadline added while others fire, and due already, waits for the next clock turn: a fire that re-adds cannot spin', () => {
    // A clock whose timers run only when the test turns it, one timer per turn.
    const T = T0 + 100;
    const armed: { at: number; fn: () => void }[] = [];
    const stepClock: Clock = {
      now: () => T,
      monotonic: () => T,
      setTimer(at, fn) {
        const timer = { at, fn };
        armed.push(timer);
        return () => {
          const i = armed.indexOf(timer);
          if (i >= 0) armed.splice(i, 1);
        };
      },
    };
    const turn = (): void => {
      armed.sort((a, b) => a.at - b.at);
      armed.shift()?.fn();
    };
    const fired: string[] = [];
    let again = 1000;
    const q: DeadlineQueue<string> = new DeadlineQueue<string>(stepClock, (k) => {
      fired.push(k);
      if (k === 'again' && again-- > 0) q.add(T - 1, 'again');
    });
    q.add(T, 'again');
    q.add(T, 'other');
    turn();
    assert.deepEqual(fired, ['again'], 'the re-added deadline (earlier than "other") waits for the next turn');
    assert.equal(armed.length, 1, 'and the clock timer is armed for it');
    turn();
    assert.deepEqual(fired, ['again', 'again']);
    while (armed.length > 0) turn();
    assert.equal(fired.length, 1002);
    assert.equal(fired.at(-1), 'other');
  });

  it('keeps firing later deadlines after a fire that throws', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const q = new DeadlineQueue<string>(clock, (k) => {
      if (k === 'bad') throw new Error('boom');
      fired.push(k);
    });
    q.add(T0 + 100, 'bad');
    q.add(T0 + 200, 'good');
    assert.throws(() => clock.advance(100), /boom/);
    clock.advance(100);
    assert.deepEqual(fired, ['good']);
  });

  it('clear cancels every deadline and the clock timer', () => {
    const { clock, q, fired } = queue();
    const a = q.add(T0 + 100, 'a');
    q.add(T0 + 200, 'b');
    q.clear();
    assert.equal(q.size, 0);
    assert.equal(clock.pending, 0);
    q.cancel(a);
    clock.advance(1000);
    assert.deepEqual(fired, []);
  });
});

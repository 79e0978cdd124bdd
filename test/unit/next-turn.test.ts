/**
 * Work for the start of the next event-loop turn (src/next-turn.ts): the fix lane runs it
 * before its slice; without a lane it runs in the next check phase. On the real loop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { atNextTurn, runNextTurnJobs } from '../../src/next-turn.js';

/** Resolves in the check phase of a later turn, once `turns` turns have passed. */
function turnsLater(turns: number): Promise<void> {
  return new Promise((resolve) => {
    const step = (left: number): void => {
      if (left === 0) resolve();
      else setImmediate(() => step(left - 1));
    };
    step(turns);
  });
}

describe('atNextTurn', () => {
  it('runs a job queued in the check phase at the start of the next timers phase when the lane runs it', async () => {
    const order: string[] = [];
    await new Promise<void>((done) => {
      setImmediate(() => {
        // An actor's append in the check phase, and the lane's slice already armed ahead of it.
        setTimeout(() => {
          runNextTurnJobs();
          order.push('slice');
        }, 0);
        atNextTurn(() => order.push('write'));
        setImmediate(() => {
          order.push('next check');
          done();
        });
        // A busy check phase, as under load: the slice's zero timeout is due when it ends.
        const until = performance.now() + 3;
        while (performance.now() < until);
      });
    });
    assert.deepEqual(order, ['write', 'slice', 'next check'], 'the write started before the slice, once');
  });

  it('runs a job in the next check phase when no lane runs it, once, in the order queued', async () => {
    const order: string[] = [];
    atNextTurn(() => order.push('a'));
    atNextTurn(() => order.push('b'));
    assert.deepEqual(order, [], 'not at once');
    await turnsLater(2);
    assert.deepEqual(order, ['a', 'b']);
    runNextTurnJobs();
    assert.deepEqual(order, ['a', 'b'], 'a job runs once');
  });

  it('runs every job although one throws, then throws its error', () => {
    const order: string[] = [];
    atNextTurn(() => {
      throw new Error('boom');
    });
    atNextTurn(() => order.push('after'));
    assert.throws(() => runNextTurnJobs(), /boom/);
    assert.deepEqual(order, ['after']);
  });
});

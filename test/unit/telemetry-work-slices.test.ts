/**
 * WorkSlices on a made-up clock: the archive writer yields after a slice of work, not
 * after a count of rows, and a slice grows with the turns the loop takes (a bounded share
 * of them), so a busy server does not multiply the turns a batch needs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_SLICE_MS, MIN_SLICE_MS, WorkSlices } from '../../src/telemetry/work-slices.js';

/** A clock that moves only when told, and a yield that takes `turnMs` of it. */
function fakeLoop(turnMs: number): { clock: { t: number; turnMs: number }; slices: WorkSlices; yields: () => number } {
  const clock = { t: 0, turnMs };
  let yields = 0;
  const slices = new WorkSlices(
    () => clock.t,
    async () => {
      yields++;
      clock.t += clock.turnMs;
    },
  );
  return { clock, slices, yields: () => yields };
}

/** Does `items` pieces of work of `costMs` each, pausing between them; returns how many turns it took. */
async function work(loop: ReturnType<typeof fakeLoop>, items: number, costMs: number): Promise<number> {
  const before = loop.yields();
  for (let i = 0; i < items; i++) {
    loop.clock.t += costMs;
    await loop.slices.pause();
  }
  return loop.yields() - before;
}

describe('WorkSlices', () => {
  it('yields once a slice of work has run its time, however many items that was', async () => {
    const loop = fakeLoop(0.125);
    // 1000 items of 250 µs: 250 ms of work in slices of MIN_SLICE_MS.
    assert.equal(await work(loop, 1000, 0.25), Math.floor(1000 / (MIN_SLICE_MS / 0.25)));
    assert.equal(loop.slices.sliceMs, MIN_SLICE_MS);
    // Cheap items never yield: the count alone does not matter.
    const cheap = fakeLoop(0.125);
    assert.equal(await work(cheap, 1000, 0.001), 0);
  });

  it('lengthens slices when turns are long, up to a bound, and shortens them again', async () => {
    const loop = fakeLoop(80);
    await work(loop, 1, MIN_SLICE_MS);
    assert.equal(loop.slices.sliceMs, 10, 'an eighth of an 80 ms turn');
    // The same 250 ms of work takes 25 turns instead of 1000 / (MIN_SLICE_MS / 0.25).
    assert.equal(await work(loop, 1000, 0.25), 25);

    loop.clock.turnMs = 1000;
    await work(loop, 1, loop.slices.sliceMs);
    assert.equal(loop.slices.sliceMs, MAX_SLICE_MS);

    loop.clock.turnMs = 1;
    await work(loop, 1, loop.slices.sliceMs);
    assert.equal(loop.slices.sliceMs, MIN_SLICE_MS);
  });
});

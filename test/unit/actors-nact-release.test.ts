/**
 * nact keeps each actor's last message turn (an Immediate) until its next message, and Node
 * does not unlink an Immediate that has run: actors/nact-release.ts lets it go once the
 * turn is over.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { dispatch, type Ref, spawn, start, stop } from 'nact';
import { releaseFinishedTurns } from '../../src/actors/nact-release.js';

/** nact's own lookup of the actor behind a reference (internal, read-only here). */
const systemMap = createRequire(import.meta.url)('nact/lib/system-map.js') as {
  find(systemName: string, ref: Ref<unknown>): { immediate: unknown } | undefined;
};

describe('nact release', () => {
  it('leaves no finished turn held by an actor idle after its messages', async () => {
    assert.equal(releaseFinishedTurns(), true, 'nact still has its afterMessage hook');
    const system = start();
    const idle: Array<() => void> = [];
    const refs = Array.from({ length: 50 }, () =>
      spawn(system, (state: number | undefined) => {
        idle.shift()?.();
        return (state ?? 0) + 1;
      }),
    );
    const handled = refs.map(() => new Promise<void>((r) => idle.push(r)));
    for (const ref of refs) for (let i = 0; i < 3; i++) dispatch(ref, { n: i });
    await Promise.all(handled);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    const holding = refs.filter((ref) => {
      const actor = systemMap.find((ref as unknown as { system: { name: string } }).system.name, ref);
      assert.ok(actor, 'actor found');
      return actor.immediate !== undefined;
    });
    stop(system);
    assert.equal(holding.length, 0, `${holding.length} of 50 actors still hold their last turn`);
  });
});

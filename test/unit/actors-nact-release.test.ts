/**
 * nact keeps each actor's last message turn (an Immediate) until its next message, and Node
 * does not unlink an Immediate that has run: actors/nact-release.ts lets it go once the
 * turn is over.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { dispatch, type Ref, spawn, start, stop } from 'nact';
import { compactChildPaths, releaseFinishedTurns, shareEmptyChildMaps } from '../../src/actors/nact-release.js';

/** nact's own lookup of the actor behind a reference (internal, read-only here). */
const systemMap = createRequire(import.meta.url)('nact/lib/system-map.js') as {
  find(
    systemName: string,
    ref: Ref<unknown>,
  ): { immediate: unknown; children: Map<string, unknown>; childReferences: Map<string, unknown> } | undefined;
};

/** The ActorPath behind a reference (nact's, not in its typings). */
function pathOf(ref: Ref<unknown>): { parts: string[]; toString(): string } {
  return (ref as unknown as { path: { parts: string[]; toString(): string } }).path;
}

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

  it('childless actors share one empty child map, and one that spawns a child gets its own again', async () => {
    assert.equal(shareEmptyChildMaps(), true, 'nact still has initializeState and childSpawned');
    const system = start();
    const actorOf = (ref: Ref<unknown>) => {
      const a = systemMap.find((ref as unknown as { system: { name: string } }).system.name, ref);
      assert.ok(a, 'actor found');
      return a;
    };
    const seen: string[] = [];
    const parent = spawn(system, (_state: unknown, msg: { t: string }, ctx) => {
      if (msg.t === 'spawn') spawn(ctx.self, (_s: unknown, m: { t: string }) => void seen.push(`child:${m.t}`), 'kid');
      else dispatch(ctx.children.get('kid') as Ref<{ t: string }>, msg);
    });
    const other = spawn(system, (_state: unknown, msg: { t: string }) => void seen.push(`other:${msg.t}`));
    const shared = actorOf(parent).children;
    assert.equal(actorOf(other).children, shared, 'one map for both childless actors');
    assert.equal(actorOf(other).childReferences, shared);
    dispatch(parent, { t: 'spawn' });
    dispatch(parent, { t: 'hello' });
    dispatch(other, { t: 'hi' });
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen.sort(), ['child:hello', 'other:hi']);
    assert.notEqual(actorOf(parent).children, shared, 'the parent has maps of its own');
    assert.equal(actorOf(parent).children.size, 1);
    assert.equal(shared.size, 0, 'the shared map stayed empty');
    assert.equal(actorOf(other).children, shared);
    stop(system);
  });

  it('compact child paths hold the same parts as nact builds, and nact still refuses an invalid name', async () => {
    assert.equal(compactChildPaths(), true, 'nact still has createChildPath');
    const system = start();
    let childPath: unknown;
    const parent = spawn(
      system,
      (_state: unknown, _msg: unknown, ctx) => {
        childPath = pathOf(spawn(ctx.self, () => undefined, 'kid-1'));
      },
      'parent-1',
    );
    const path = pathOf(parent);
    assert.deepEqual(path.parts, ['parent-1']);
    assert.equal(path.parts.length, 1);
    dispatch(parent, {});
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual((childPath as { parts: string[] }).parts, ['parent-1', 'kid-1']);
    assert.match(String(childPath), /:\/\/parent-1\/kid-1$/);
    assert.throws(() => spawn(system, () => undefined, 'no spaces'), /Invalid argument/);
    stop(system);
  });
});

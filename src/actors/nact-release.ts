/**
 * Trims of nact's per-actor memory, installed by registry.ts before any actor is spawned:
 * `releaseFinishedTurns`, `shareEmptyChildMaps` and `compactChildPaths` (below).
 *
 * Lets each nact actor drop the handle of the message turn it just finished.
 *
 * nact (7.6) runs every message in a `setImmediate` and keeps that Immediate in
 * `actor.immediate` until the next message. Node does not unlink an Immediate that has
 * run, so the one an actor keeps holds every Immediate that ran after it in the same turn:
 * in heap snapshots of 5,000 connected devices, about 2.4 spent Immediates per
 * technician, 280 bytes a technician that the heap kept and the collector traced. `afterMessage`
 * is nact's own hook, called once a message's handler has finished and before the next is
 * taken; clearing the handle there is what nact's `clearImmediate` would amount to for a
 * turn that has already run.
 */
import { createRequire } from 'node:module';

interface NactActor {
  immediate: unknown;
  afterMessage(): void;
  children: Map<string, unknown>;
  childReferences: Map<string, unknown>;
  initializeState(): void;
  childSpawned(child: unknown): void;
}

const require = createRequire(import.meta.url);
const { Actor } = require('nact/lib/actor.js') as { Actor: { prototype: NactActor } };

/** Installs the hook; idempotent. Returns whether nact still has the shape this relies on. */
export function releaseFinishedTurns(): boolean {
  const proto = Actor.prototype;
  if (typeof proto.afterMessage !== 'function' || !('afterMessage' in proto)) return false;
  proto.afterMessage = function afterMessage(this: NactActor): void {
    this.immediate = undefined;
  };
  return true;
}

/** The one empty child map every childless actor shares; nothing may add to it. */
class NoChildren extends Map<string, unknown> {
  override set(): this {
    throw new Error('nact-release: the shared empty child map was written to');
  }
}
const NO_CHILDREN = new NoChildren();
let childMapsShared = false;

/**
 * Lets childless nact actors share one empty child map.
 *
 * nact (7.6) gives every actor two Maps of its children (`children`, `childReferences`),
 * about 370 bytes of heap an actor with their tables, and fieldtrack's actors (one per
 * technician that is live) never have children. Once its state is initialised (at spawn and
 * at each restart) an actor with no child points both at one shared empty map; it gets
 * maps of its own again the moment a child is spawned under it, so nact behaves as before.
 * Idempotent; returns whether nact still has the shape this relies on.
 */
export function shareEmptyChildMaps(): boolean {
  const proto = Actor.prototype;
  if (typeof proto.initializeState !== 'function' || typeof proto.childSpawned !== 'function') return false;
  if (childMapsShared) return true;
  childMapsShared = true;
  const initializeState = proto.initializeState;
  const childSpawned = proto.childSpawned;
  proto.initializeState = function initializeStateSharingMaps(this: NactActor): void {
    if (this.children.size === 0 && this.childReferences.size === 0) {
      this.children = NO_CHILDREN;
      this.childReferences = NO_CHILDREN;
    }
    initializeState.call(this);
  };
  proto.childSpawned = function childSpawnedOwningMaps(this: NactActor, child: unknown): void {
    if (this.children === NO_CHILDREN) {
      this.children = new Map();
      this.childReferences = new Map();
    }
    childSpawned.call(this, child);
  };
  return true;
}

interface NactActorPath {
  parts: string[];
  system: unknown;
  createChildPath(name: string): NactActorPath;
}
const { ActorPath } = require('nact/lib/paths.js') as {
  ActorPath: { prototype: NactActorPath; new (parts: string[], system: unknown): NactActorPath };
};
let pathsCompacted = false;

/**
 * Builds each actor's path with an array of its exact length. nact (7.6) copies the
 * parent's parts with a spread (`[...parts, name]`), which leaves room for 17 elements:
 * about 130 bytes of heap more than the one or two names a fieldtrack actor's path holds.
 * Same parts, same name check (nact's own, run by the original first). Idempotent; returns
 * whether nact still has the shape this relies on.
 */
export function compactChildPaths(): boolean {
  const proto = ActorPath.prototype;
  if (typeof proto.createChildPath !== 'function') return false;
  if (pathsCompacted) return true;
  pathsCompacted = true;
  const createChildPath = proto.createChildPath;
  proto.createChildPath = function createCompactChildPath(this: NactActorPath, name: string): NactActorPath {
    const path = createChildPath.call(this, name);
    path.parts = this.parts.concat(name);
    return path;
  };
  return true;
}

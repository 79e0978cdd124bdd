/**
 * Entry point of the behaviour: `createTracker` builds the actor-based `Tracker` that the
 * gateway calls (see api.ts for the port, tracker.ts for how it is put together).
 */
import type { Tracker } from './api.js';
import { ActorTracker, type TrackerDeps } from './tracker.js';

export type { TrackerDeps } from './tracker.js';
export { ActorTracker } from './tracker.js';

/**
 * Opens the journal in `${config.DATA_DIR}/journal` and returns the running Tracker. One
 * node (no `deps.shared`, or in-process shared state): orders, alerts, SOS incidents and
 * last positions are recovered from the journal. Multi-node (`deps.shared` on Redis):
 * technicians are loaded from Redis when this node takes them over (takeover.ts).
 */
export async function createTracker(deps: TrackerDeps): Promise<Tracker> {
  return ActorTracker.start(deps);
}

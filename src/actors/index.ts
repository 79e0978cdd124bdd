/**
 * Entry point of the behaviour: `createTracker` builds the actor-based `Tracker` that the
 * gateway calls (see api.ts for the port, tracker.ts for how it is put together).
 */
import type { Tracker } from './api.js';
import { ActorTracker, type TrackerDeps } from './tracker.js';

export type { TrackerDeps } from './tracker.js';
export { ActorTracker } from './tracker.js';

/**
 * Opens the journal in `${config.DATA_DIR}/journal`, recovers orders, alerts, SOS
 * incidents and last positions from it, and returns the running Tracker.
 */
export async function createTracker(deps: TrackerDeps): Promise<Tracker> {
  return ActorTracker.start(deps);
}

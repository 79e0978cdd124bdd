/**
 * Entry point of the behaviour: `createTracker` builds the actor-based local `Tracker` that
 * the gateway calls (see api.ts for the port, tracker.ts for how it is put together). In
 * multi-node mode the composition root wraps it instead (src/cluster/clustered-tracker.ts).
 */
import type { Tracker } from './api.js';
import { ActorTracker, type TrackerDeps } from './tracker.js';

export type { TrackerDeps } from './tracker.js';
export { ActorTracker } from './tracker.js';

/**
 * Opens the journal in `${config.DATA_DIR}/journal` and returns the running Tracker of one
 * node: orders, alerts, SOS incidents and last positions are recovered from the journal.
 */
export async function createTracker(deps: TrackerDeps): Promise<Tracker> {
  return ActorTracker.start(deps);
}

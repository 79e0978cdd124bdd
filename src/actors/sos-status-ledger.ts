/**
 * What each technician has been told about their SOS incidents (`sos_status`), so each
 * state is told once.
 *
 * An operator's answer can reach the technician by two ways: ahead of its write, when an
 * earlier change of the incident is still being stored (tracker.ts), and from the incident
 * actor once the answer's own write starts. Whichever comes first tells; the other finds
 * the state already told. An incident only moves forward (open, acknowledged, resolved),
 * so "already told" is "told this state or a later one".
 */
import type { SosStatusPush } from '../protocol.js';

type ToldState = SosStatusPush['state'];

const RANK: Record<ToldState, number> = { acknowledged: 1, resolved: 2 };

/**
 * Incidents remembered. Only incidents answered recently matter (a repeat comes within one
 * write of the first tell); the oldest are forgotten beyond this many.
 */
const REMEMBERED = 10_000;

/** See the module comment. One per node. */
export class SosStatusLedger {
  private readonly told = new Map<string, ToldState>();

  /** Whether `push` tells the technician something new; if so it is recorded as told. */
  tellsNews(push: SosStatusPush): boolean {
    const before = this.told.get(push.incident);
    if (before !== undefined && RANK[before] >= RANK[push.state]) return false;
    // Re-inserted so the Map's order is the order of the last tell, oldest first.
    this.told.delete(push.incident);
    this.told.set(push.incident, push.state);
    if (this.told.size > REMEMBERED) {
      const oldest = this.told.keys().next().value;
      if (oldest !== undefined) this.told.delete(oldest);
    }
    return true;
  }
}

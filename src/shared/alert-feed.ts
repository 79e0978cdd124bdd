/**
 * The cluster-wide alert feed: an ordered, replayable log of alert changes that every node
 * appends to and tails, plus the set of non-resolved alerts taken at a known position of
 * that log. One interface, one file per backend (in-process, Redis Streams).
 *
 * Consistency contract: `snapshot` returns the open alerts and the position of the last
 * change they include, so a console fed `snapshot().alerts` then `tail(position)` sees every
 * change exactly once, with no gap and no duplicate.
 */
import type { Alert } from '../protocol.js';

/** Alert changes a feed keeps for replay (a console reconnecting catches up from it); older ones are trimmed. */
export const FEED_MAXLEN = 100_000;

/** One change in the feed: its position (ordered, opaque) and the alert as it now is. */
export interface FeedEntry {
  readonly position: string;
  readonly alert: Alert;
}

/** Open alerts and the feed position they are consistent with. */
export interface FeedSnapshot {
  readonly alerts: Alert[];
  readonly position: string;
}

/** See the module comment. */
export interface AlertFeed {
  /** Appends an alert change; resolves with its position once the backend holds it. */
  append(alert: Alert): Promise<string>;
  /** Non-resolved alerts and the position of the last change they include. */
  snapshot(): Promise<FeedSnapshot>;
  /**
   * Delivers every change after `position`, in order, to `onEntry` until the returned stop
   * function is called. Survives backend outages by resuming from the last delivered position.
   */
  tail(position: string, onEntry: (entry: FeedEntry) => void): () => Promise<void>;
  /**
   * Ids of the alerts with a change in the feed at or after `since` (ms since the epoch, by
   * the backend's clock), and whether the feed reaches back that far (`complete`: it keeps
   * a bounded history). Read by journal reconciliation (src/cluster/reconcile.ts).
   */
  idsSince(since: number): Promise<{ ids: Set<string>; complete: boolean }>;
  /** Stops every tail and releases connections. */
  close(): Promise<void>;
}

/**
 * The narrow surface a multi-node decorator (src/cluster/clustered-tracker.ts) needs of
 * the local tracker beyond the `Tracker` port: what this node runs, moving a technician
 * in or out, and the few hooks through which the cluster plugs in. Every `Tracker`
 * method of a `LocalTracker` runs here, on this node's state only.
 */
import type { Alert, DevicePush } from '../protocol.js';
import type { DeviceLink, Tracker } from './api.js';
import type { LivePosition, LiveRecord, OrderRecord } from './records.js';
import type { RecoveredState } from './recovery.js';

/** What the cluster plugs into a local tracker (`join`). */
export interface ClusterHooks {
  /** Whether this node may fire deadlines of technician `tech` (holds its lease). */
  holds(tech: string): boolean;
  /** Pushes to `tech`'s device, which is not attached here, wherever it is. */
  pushElsewhere(tech: string, msg: DevicePush): void;
  /** A record became durable in the journal (copied to shared storage for the next owner). */
  durable(rec: LiveRecord): void;
  /** Technician `tech` was erased here: erase what other nodes could load of it. */
  erased(tech: string): Promise<void>;
  /** Called by `close` once the actors stopped and the alert feed is flushed, before shared state closes. */
  closing(): Promise<void>;
}

/** See the module comment. */
export interface LocalTracker extends Tracker {
  /** Plugs the cluster in; called once, before any device attaches. */
  join(hooks: ClusterHooks): void;
  /** Whether a device of `tech` is attached here (that very `link`, when given). */
  attached(tech: string, link?: DeviceLink): boolean;
  /** The technician of order `id`, if this node holds the order. */
  techOfOrder(id: string): string | undefined;
  /** Whether alert `id` is on this node's board (its actor runs here). */
  ownsAlert(id: string): boolean;
  /** Alert `id` as this node's board has it (its actor runs here), if it does. */
  localAlert(id: string): Alert | undefined;
  /** Every alert of technician `tech` on this node's board. */
  alertsOf(tech: string): Alert[];
  /** Appends alert `id`'s current version to the shared feed again (it lacked it). */
  republish(id: string): void;
  /** Sends the device of `tech`, if attached here, to reconnect (its technician runs elsewhere now). */
  moveOn(tech: string): void;
  /** Looks at every deadline of technician `tech` now (they were gated off while its lease lapsed). */
  wake(tech: string): void;
  /** Alert `id` as the shared feed last showed it, whichever node runs it. */
  seenAlert(id: string): Alert | undefined;
  /** Every alert the shared feed showed. */
  seenAlerts(): Alert[];
  /** Whether technician `tech` has an open order or an unresolved alert here. */
  hasOpenWork(tech: string): boolean;
  /** Pushes to `tech`'s device if it is attached here; dropped otherwise. */
  pushHere(tech: string, msg: DevicePush): void;
  /** Installs technician `tech`'s state loaded from shared storage and wakes its deadlines. */
  adopt(tech: string, state: RecoveredState): Promise<void>;
  /** Drops technician `tech`'s actors and state from this node. */
  evict(tech: string): Promise<void>;
  /**
   * What this node's journal held when it started in multi-node mode (where the journal
   * is not loaded: technicians come from shared storage), for journal reconciliation;
   * returned once, then null.
   */
  takeJournaled(): RecoveredState | null;
  /** What this node holds of technician `tech` now: its orders, alerts and last position. */
  stateOf(tech: string): { orders: OrderRecord[]; alerts: Alert[]; position: LivePosition | null };
  /** The same, as the journal records that would restore it (one per order, alert and the position). */
  liveRecordsOf(tech: string): LiveRecord[];
  /**
   * Adds journal records of technician `tech` that this node (running it) lacked: stores
   * them in its journal (whose durable hook copies orders and positions to shared storage),
   * installs them in the actors and appends the alerts to the shared feed.
   */
  mergeJournaled(tech: string, recs: LiveRecord[]): Promise<void>;
  /** Resolves once every alert change committed so far is in the shared feed. */
  flushFeed(): Promise<void>;
  /** Waits until every message in flight has landed (tests). */
  settle(): Promise<void>;
  /** Stops like kill -9 would (tests). */
  crash(): Promise<void>;
}

/**
 * What every actor of the node shares: configuration, time, persistence (archive +
 * journal), the alert board, the journal (for last positions), the device links, and how
 * to reach the other actors. Actors talk to each other only by sending messages through these `send`s.
 */
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { EtaEstimator } from '../eta/eta.js';
import type { Logger } from '../log.js';
import type { Alert, DevicePush } from '../protocol.js';
import type { AlertBoard } from './alert-board.js';
import type { LiveObserver } from './api.js';
import type { IncidentMsg, OrderMsg, TechMsg } from './messages.js';
import type { Persistence } from './persistence.js';
import type { LiveJournal, LivePosition, OrderRecord, TechRecord } from './records.js';
import type { Registry } from './registry.js';

/** The thresholds the actors read from Config. */
export type ActorConfig = Pick<
  Config,
  | 'LATE_DEPARTURE_MS'
  | 'LATE_ARRIVAL_MS'
  | 'TRAVEL_SPEED_MPS'
  | 'OVERTIME_FACTOR'
  | 'OFFLINE_MS'
  | 'IMPLAUSIBLE_SPEED_MPS'
  | 'SOS_LEVEL2_MS'
  | 'SOS_LEVEL3_MS'
  | 'SOS_SLA_MS'
  | 'GEOFENCE_RADIUS_M'
  | 'MAX_ACCURACY_M'
  | 'GEOFENCE_EXIT_DWELL_MS'
  | 'PASSIVATE_AFTER_MS'
  | 'APPROACH_SEC'
  | 'APPROACH_M'
>;

/** Sends a message to the actor of an id (spawning it if needed). */
export interface Mailer<M> {
  send(id: string, msg: M): void;
  arm(id: string, at: number | null): void;
}

/** This node's actor registries, one per kind: what intake, erase and retention work on. */
export interface LiveActors {
  techs: Registry<TechRecord, TechMsg>;
  orders: Registry<OrderRecord, OrderMsg>;
  incidents: Registry<Alert, IncidentMsg>;
}

/** Shared services of the actors; see the module comment. */
export interface ActorDeps {
  config: ActorConfig;
  clock: Clock;
  log: Logger;
  persistence: Persistence;
  board: AlertBoard;
  journal: LiveJournal;
  /** Pushes to the technician's phone if one is attached; dropped otherwise. */
  pushDevice(tech: string, msg: DevicePush): void;
  /**
   * A technician's newest accepted position, published to the shared live-position index
   * (who is nearby) while its device is attached here: an effect of the technician actor,
   * the one place that decides what the newest position is.
   */
  publishPosition(tech: string, pos: LivePosition): void;
  /** A technician's newest accepted position on this node (read by its orders to place events on the map). */
  positionOf(tech: string): LivePosition | null;
  techs: Mailer<TechMsg>;
  orders: Mailer<OrderMsg>;
  incidents: Mailer<IncidentMsg>;
  /** Estimates a departed order's arrival (straight line, or the router), for `order.approaching`. */
  eta: EtaEstimator;
  /** Told of committed order changes, live positions and `order.approaching` (api.ts). */
  observer: LiveObserver;
}

/** Whether a fix is accurate enough to decide a geofence or an alert (no `acc` counts as exact). */
export function accurate(acc: number | null | undefined, maxAccuracyM: number): boolean {
  return acc === null || acc === undefined || acc <= maxAccuracyM;
}

/**
 * The port between transport and behaviour. The gateway (src/gateway) knows frames,
 * tokens and sockets and calls a `Tracker`; the actors know orders, geofences and alerts
 * and talk back to a connected client only through the narrow `DeviceLink` and
 * `SafetyLink`. Neither side imports the other's internals.
 */
import type { AckExtras, ComponentHealth, Outcome } from '../outcome.js';
import type {
  Alert,
  AlertState,
  DeviceMessage,
  DevicePush,
  EtaSource,
  NearbyTechnician,
  OrderInput,
  OrderView,
  SafetyMessage,
  SafetyPush,
  TechnicianView,
  TimelineEntry,
  TrackPoint,
} from '../protocol.js';

/** `order.approaching`: the technician of `order` is close (ETA under APPROACH_SEC or distance under APPROACH_M). */
export interface Approaching {
  order: string;
  tech: string;
  /** Server time it fired. */
  ts: number;
  eta: { seconds: number; metres: number; source: EtaSource };
}

/**
 * Listens to what the node's actors commit, for features built beside them (the customer
 * tracking link, events): each call comes after the change is durable, on the node that
 * runs the actor, and must return at once (no awaiting, no throwing). Every member is
 * optional; `LiveFeed` (live-feed.ts) fans one out to many.
 */
export interface LiveObserver {
  /** Technician `tech` has a new live position (its newest accepted fix). */
  position?(tech: string, pos: { ts: number; lat: number; lon: number }): void;
  /** Order `order.id` was created or changed (state, fields, timeline). */
  order?(order: OrderView): void;
  /** `order.approaching` fired for an order: once per order, after it was journaled. */
  approaching?(event: Approaching): void;
}

/** A connected technician's phone, as the behaviour sees it. */
export interface DeviceLink {
  push(msg: DevicePush): void;
  /**
   * Closes the connection telling the device to reconnect (close code 1001): its
   * technician runs on another node now, which the device reaches by connecting again.
   */
  moveOn(): void;
}

/** A connected safety console, as the behaviour sees it. */
export interface SafetyLink {
  push(msg: SafetyPush): void;
}

/** Answer of `DELETE /v1/technicians/:id`: what erasing the technician removed. */
export interface TechnicianErased {
  id: string;
  erased: {
    /** A live record (last position, online state) was dropped. */
    technician: boolean;
    /** Finished orders dropped from live state (their ids). */
    orders: string[];
    /** Resolved alerts dropped from live state (their ids). */
    alerts: string[];
    /** Archived pings, order and alert events of the technician are deleted. */
    archive: true;
  };
}

/** Answer of `GET /v1/orders/:id/timeline`: an order's transitions as archived. */
export interface OrderTimeline {
  id: string;
  timeline: TimelineEntry[];
}

/** The behaviour behind the gateway: everything a client can ask of the server. */
export interface Tracker {
  /** A device of technician `tech` connected (its token's `sub`). */
  attachDevice(tech: string, link: DeviceLink): void;
  /** That connection closed. */
  detachDevice(tech: string, link: DeviceLink): void;
  /** A validated device message; the answer becomes the `ack` extras or the `err`. */
  onDeviceMessage(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>>;

  /**
   * A console connected: the link receives the snapshot first, then every alert change,
   * with nothing missed in between.
   */
  attachSafety(operator: string, link: SafetyLink): void;
  detachSafety(link: SafetyLink): void;
  onSafetyMessage(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>>;

  putOrder(id: string, input: OrderInput): Promise<Outcome<OrderView>>;
  cancelOrder(id: string): Promise<Outcome<OrderView>>;
  getOrder(id: string): Promise<Outcome<OrderView>>;
  getTechnician(id: string): Promise<Outcome<TechnicianView>>;
  /** Archived points of `id` in [from, to], in time order; the first `limit` when given. */
  getTrack(id: string, from: number, to: number, limit?: number): Promise<Outcome<TrackPoint[]>>;
  /**
   * The order's timeline from the archive, so it outlives the order's 24 h in live state;
   * `not_found` when the archive holds no event of it.
   */
  getOrderTimeline(id: string): Promise<Outcome<OrderTimeline>>;
  /**
   * Erases technician `id` (privacy: a technician's data is removed on request): live
   * state, journal, shared state and the archive. `conflict` while its device is
   * connected, an order of it is open or an alert of it is unresolved; `not_found` when
   * neither live state nor the archive knows it.
   */
  eraseTechnician(id: string): Promise<Outcome<TechnicianErased>>;
  listAlerts(state?: AlertState): Promise<Alert[]>;
  nearby(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]>;

  /** Health of the archive and shared state, by name. */
  readiness(): Promise<Record<string, ComponentHealth>>;
  /** Flushes what is pending (journal, spool) and stops timers; called once on shutdown. */
  close(): Promise<void>;
}

/**
 * Wire protocol v1 (../shared/PROTOCOL.md) as TypeScript: message shapes, error codes,
 * close codes, order states, alert kinds and limits. Codes are data (`as const`) with their
 * types derived from them; message types are derived from the TypeBox schemas in
 * `protocol/schemas.ts` (`Static<typeof ...>`), which the server validates with, so a type
 * cannot drift from its check. Only types come from TypeBox here (`import type`, erased):
 * the browser console imports this module and must not load TypeBox.
 */
import type { Static } from '@sinclair/typebox';
import type * as S from './protocol/schemas.js';

export * from './protocol/limits.js';

/** Error codes of `{t:"err"}` answers and of HTTP error bodies. */
export const ErrorCode = {
  badRequest: 'bad_request',
  forbidden: 'forbidden',
  notFound: 'not_found',
  conflict: 'conflict',
  outsideGeofence: 'outside_geofence',
  rateLimited: 'rate_limited',
  internal: 'internal',
  /** Extension (README): the node cannot take more data right now (spool over budget). */
  unavailable: 'unavailable',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * WebSocket close codes the server uses. 1000-1011 are RFC 6455; 4xxx are ours.
 * Clients should reconnect (with backoff) after every code except `policyViolation`
 * caused by repeated garbage and `tokenExpired` without a fresh token.
 */
export const CloseCode = {
  normal: 1000,
  /**
   * Reconnect, possibly to another node: the server is shutting down, or (multi-node) the
   * device's technician now runs on another node (its lease passed while this one was frozen).
   */
  goingAway: 1001,
  /** A text frame was sent: the protocol is binary MessagePack only. */
  unsupportedData: 1003,
  /** Repeated garbage frames or sustained rate-limit abuse. */
  policyViolation: 1008,
  /** A frame over the 64 KiB limit. */
  messageTooBig: 1009,
  internalError: 1011,
  /** The token's `exp` passed while the connection was open: reconnect with a new token. */
  tokenExpired: 4001,
  /** The client did not read its messages fast enough (safety consoles): reconnect, a snapshot follows. */
  slowConsumer: 4002,
  /** The same technician connected again; this older connection is closed. */
  replaced: 4003,
  /**
   * This safety operator (token `sub`) already holds SAFETY_MAX_CONNECTIONS_PER_OPERATOR
   * consoles on this node: close one of them before reconnecting; retrying at once fails again.
   */
  operatorConnectionLimit: 4004,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * MessagePack options of every wire codec (gateway, typed client, browser console): plain
 * maps with string keys both ways and msgpackr's record and extra-type extensions off, so
 * clients written from PROTOCOL.md with any MessagePack library read what we send.
 */
export const WIRE_MSGPACK_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
} as const;

/** Token roles and the endpoint each may use. */
export const Role = { device: 'device', safety: 'safety', dispatch: 'dispatch' } as const;
export type Role = (typeof Role)[keyof typeof Role];

export const OrderStates = ['assigned', 'departed', 'arrived', 'in_service', 'completed', 'cancelled'] as const;
export type OrderState = (typeof OrderStates)[number];

export const AlertKinds = [
  'sos',
  'late_departure',
  'late_arrival',
  'overtime',
  'offline',
  'geofence_exit',
  'implausible_move',
] as const;
export type AlertKind = (typeof AlertKinds)[number];

/**
 * Kinds of `notice` a device may be pushed: every alert kind that has a notice, plus
 * `approaching` (the technician is close to the customer; once per order).
 */
export const NoticeKinds = [...AlertKinds, 'approaching'] as const;
export type NoticeKind = (typeof NoticeKinds)[number];

export const AlertStates = ['open', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof AlertStates)[number];

/**
 * Types of the events for the dispatch system (PROTOCOL.md, "Events for the dispatch
 * system"). `order.approaching` belongs to the customer tracking link, which this server
 * does not implement yet: it may be subscribed to but is never produced (README).
 */
export const EventTypes = [
  'order.assigned',
  'order.departed',
  'order.arrived',
  'order.in_service',
  'order.completed',
  'order.cancelled',
  'order.approaching',
  'alert.opened',
  'alert.changed',
  'technician.online',
  'technician.offline',
] as const;
export type EventType = (typeof EventTypes)[number];

/**
 * One event for the dispatch system: `id` is unique, stable (consumers deduplicate on it)
 * and sorts in the order the events were stored (README, "Events for the dispatch
 * system"); `ts` is when it happened; `data` depends on `type`.
 */
export interface DispatchEvent {
  id: string;
  type: EventType;
  ts: number;
  order?: string;
  tech?: string;
  data: Record<string, unknown>;
}

/**
 * Coordinate systems a client may give positions in (`crs`, PROTOCOL.md): GPS's WGS-84
 * (the default, and all the server stores and decides in), GCJ-02 (AMap, Tencent) and
 * BD-09 (Baidu).
 */
export const CoordinateSystems = ['wgs84', 'gcj02', 'bd09'] as const;
export type Crs = (typeof CoordinateSystems)[number];

/** An alert as consoles and HTTP clients see it. */
export type Alert = Static<typeof S.AlertSchema>;

// ---- client -> server, /v1/device ----

export type PingMsg = Static<typeof S.PingSchema>;
/** `[ts, lat, lon, acc?, spd?, hdg?]` */
export type BatchPoint = Static<typeof S.BatchPointSchema>;
export type BatchMsg = Static<typeof S.BatchSchema>;
export type DepartMsg = Static<typeof S.DepartSchema>;
export type CheckinMsg = Static<typeof S.CheckinSchema>;
export type StartMsg = Static<typeof S.StartSchema>;
export type CompleteMsg = Static<typeof S.CompleteSchema>;
export type SosMsg = Static<typeof S.SosSchema>;
export type SosCancelMsg = Static<typeof S.SosCancelSchema>;
export type DeviceMessage = Static<(typeof S.DeviceMessageSchemas)[keyof typeof S.DeviceMessageSchemas]>;
export type DeviceMessageType = DeviceMessage['t'];

// ---- client -> server, /v1/safety ----

export type AckAlertMsg = Static<typeof S.AckAlertSchema>;
export type ResolveAlertMsg = Static<typeof S.ResolveAlertSchema>;
export type SafetyMessage = Static<(typeof S.SafetyMessageSchemas)[keyof typeof S.SafetyMessageSchemas]>;
export type SafetyMessageType = SafetyMessage['t'];

// ---- server -> client ----

/** An `ack`; its extras (`n`, `dist`, `incident`, ...) depend on the message acked. */
export type AckReply = Static<typeof S.AckReplySchema> & { [extra: string]: unknown };
/** An `err`; `retryMs` (extension) comes with `rate_limited`. */
export type ErrReply = Static<typeof S.ErrReplySchema> & { [extra: string]: unknown };
export type NoticePush = Static<typeof S.NoticePushSchema>;
export type SosStatusPush = Static<typeof S.SosStatusPushSchema>;
export type SnapshotPush = Static<typeof S.SnapshotPushSchema>;
export type AlertPush = Static<typeof S.AlertPushSchema>;
export type DevicePush = NoticePush | SosStatusPush;
export type SafetyPush = SnapshotPush | AlertPush;
export type ServerMessage = AckReply | ErrReply | DevicePush | SafetyPush;

// ---- HTTP bodies ----

/** Body of `PUT /v1/orders/:id`; `polygon` is an extension (README). */
export type OrderInput = Static<typeof S.OrderInputSchema>;
export type TimelineEntry = Static<typeof S.TimelineEntrySchema>;
/** Answer of `GET /v1/orders/:id` and `PUT`/`DELETE`. */
export type OrderView = Static<typeof S.OrderViewSchema>;
/** Answer of `GET /v1/technicians/:id`. */
export type TechnicianView = Static<typeof S.TechnicianViewSchema>;
/** One point of `GET /v1/technicians/:id/track`: `[ts, lat, lon, acc, spd, hdg]`, missing values null. */
export type TrackPoint = Static<typeof S.TrackPointSchema>;
export type NearbyTechnician = Static<typeof S.NearbyTechnicianSchema>;

// ---- customer tracking link (`/t/<token>`) ----

/** Where an ETA came from: the router (`ROUTER_URL`, OSRM) or the straight line at the travel speed. */
export const EtaSources = ['route', 'straight_line'] as const;
export type EtaSource = (typeof EtaSources)[number];
/** `GET /t/<token>/state` and each event of `/t/<token>/stream` (PROTOCOL.md, "Customer tracking link"). */
export type ShareState = Static<typeof S.ShareStateSchema>;
/** Answer of `POST /v1/orders/:id/share`. */
export type ShareLink = Static<typeof S.ShareLinkSchema>;

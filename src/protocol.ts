/**
 * Wire protocol v1 (../shared/PROTOCOL.md) as TypeScript: message shapes, error codes,
 * close codes, order states and alert kinds. Codes are data (`as const`) with their types
 * derived from them, so the gateway, the actors and the typed client share one truth.
 */

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
  /** Server shutting down: reconnect, possibly to another node. */
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

/** Largest frame the server reads, per PROTOCOL.md. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Most points in one `batch` message, per PROTOCOL.md. */
export const MAX_BATCH_POINTS = 1000;
/** How far in the future a point's `ts` may be before it is refused, per PROTOCOL.md. */
export const MAX_FUTURE_MS = 5 * 60 * 1000;

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

export const AlertStates = ['open', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof AlertStates)[number];

/** An alert as consoles and HTTP clients see it. */
export interface Alert {
  id: string;
  kind: AlertKind;
  level: number;
  state: AlertState;
  tech: string;
  order?: string;
  lat?: number;
  lon?: number;
  /** When the alert was raised (ms). */
  ts: number;
  detail?: Record<string, unknown>;
}

// ---- client -> server, /v1/device ----

export interface PingMsg {
  t: 'ping';
  seq: number;
  ts: number;
  lat: number;
  lon: number;
  acc?: number;
  spd?: number;
  hdg?: number;
  bat?: number;
}
/** `[ts, lat, lon, acc?, spd?, hdg?]` */
export type BatchPoint = [number, number, number, number?, number?, number?];
export interface BatchMsg {
  t: 'batch';
  seq: number;
  pts: BatchPoint[];
}
export interface DepartMsg {
  t: 'depart';
  seq: number;
  order: string;
  ts?: number;
}
export interface CheckinMsg {
  t: 'checkin';
  seq: number;
  order: string;
  ts: number;
  lat: number;
  lon: number;
  acc?: number;
}
export interface StartMsg {
  t: 'start';
  seq: number;
  order: string;
}
export interface CompleteMsg {
  t: 'complete';
  seq: number;
  order: string;
}
export interface SosMsg {
  t: 'sos';
  seq: number;
  ts: number;
  lat: number;
  lon: number;
  note?: string;
}
export interface SosCancelMsg {
  t: 'sos_cancel';
  seq: number;
  incident: string;
}
export type DeviceMessage =
  | PingMsg
  | BatchMsg
  | DepartMsg
  | CheckinMsg
  | StartMsg
  | CompleteMsg
  | SosMsg
  | SosCancelMsg;
export type DeviceMessageType = DeviceMessage['t'];

// ---- client -> server, /v1/safety ----

export interface AckAlertMsg {
  t: 'ack';
  seq: number;
  id: string;
}
export interface ResolveAlertMsg {
  t: 'resolve';
  seq: number;
  id: string;
  note?: string;
}
export type SafetyMessage = AckAlertMsg | ResolveAlertMsg;
export type SafetyMessageType = SafetyMessage['t'];

// ---- server -> client ----

export interface AckReply {
  t: 'ack';
  seq: number;
  [extra: string]: unknown;
}
export interface ErrReply {
  t: 'err';
  seq: number | null;
  code: ErrorCode;
  msg: string;
  /**
   * Extension (README): with `rate_limited`, how long to wait before sending again. A
   * refused `ping` or `batch` was not stored: the device keeps its fixes and sends them in
   * a later `batch`.
   */
  retryMs?: number;
  [extra: string]: unknown;
}
export interface NoticePush {
  t: 'notice';
  kind: AlertKind;
  order?: string;
  msg: string;
}
export interface SosStatusPush {
  t: 'sos_status';
  incident: string;
  state: 'acknowledged' | 'resolved';
}
export interface SnapshotPush {
  t: 'snapshot';
  alerts: Alert[];
}
export interface AlertPush {
  t: 'alert';
  alert: Alert;
}
export type DevicePush = NoticePush | SosStatusPush;
export type SafetyPush = SnapshotPush | AlertPush;
export type ServerMessage = AckReply | ErrReply | DevicePush | SafetyPush;

// ---- HTTP bodies ----

/** Body of `PUT /v1/orders/:id`. */
export interface OrderInput {
  technician: string;
  lat: number;
  lon: number;
  radius?: number;
  scheduledAt: number;
  durationMin: number;
  /**
   * Extension (README): an optional check-in polygon, a ring of `[lon, lat]` pairs
   * (GeoJSON order). When present it replaces the circle for the check-in verdict.
   */
  polygon?: Array<[number, number]>;
}

export interface TimelineEntry {
  state: OrderState;
  ts: number;
  lat?: number;
  lon?: number;
}

/** Answer of `GET /v1/orders/:id` and `PUT`/`DELETE`. */
export interface OrderView {
  id: string;
  technician: string;
  state: OrderState;
  scheduledAt: number;
  durationMin: number;
  lat: number;
  lon: number;
  radius: number;
  polygon?: Array<[number, number]>;
  timeline: TimelineEntry[];
}

/** Answer of `GET /v1/technicians/:id`. */
export interface TechnicianView {
  id: string;
  lat?: number;
  lon?: number;
  ts?: number;
  acc?: number;
  spd?: number;
  activeOrder?: string;
  online: boolean;
}

/** One point of `GET /v1/technicians/:id/track`: `[ts, lat, lon, acc, spd, hdg]`, missing values null. */
export type TrackPoint = [number, number, number, number | null, number | null, number | null];

export interface NearbyTechnician {
  id: string;
  lat: number;
  lon: number;
  ts: number;
  dist: number;
}

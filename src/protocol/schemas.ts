/**
 * The one schema source of the protocol: a TypeBox schema for every client message, every
 * server message, every HTTP body, answer and query. `../protocol.ts` derives its message
 * types from these (`Static<typeof ...>`), and the compiled checks in `checks.ts` validate
 * with the same objects, so a type and its validation cannot drift apart. Every number
 * comes from `limits.ts`.
 *
 * Server-side only at run time (it imports TypeBox): the browser console imports
 * `../protocol.js`, which only takes types from here.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import {
  AlertKinds,
  AlertStates,
  CoordinateSystems,
  ErrorCode,
  EtaSources,
  NoticeKinds,
  OrderStates,
} from '../protocol.js';
import {
  ACCURACY_MAX_M,
  BATTERY_MAX_PCT,
  HEADING_MAX_DEG,
  ID_PATTERN,
  ID_RULE,
  MAX_BATCH_POINTS,
  MAX_RADIUS_M,
  NEARBY_MAX_RADIUS_M,
  NOTE_MAX_LENGTH,
  ORDER_MAX_DURATION_MIN,
  POLYGON_MAX_POINTS,
  POLYGON_MIN_POINTS,
  SPEED_MAX_MPS,
  TRACK_PAGE_MAX,
  TS_MAX,
} from './limits.js';

// ---- fields ----

export const IdSchema = Type.String({ pattern: ID_PATTERN, description: `an id of ${ID_RULE}` });
export const SeqSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const TsSchema = Type.Integer({ minimum: 0, maximum: TS_MAX });
export const LatSchema = Type.Number({ minimum: -90, maximum: 90 });
export const LonSchema = Type.Number({ minimum: -180, maximum: 180 });
export const AccuracySchema = Type.Number({ minimum: 0, maximum: ACCURACY_MAX_M });
export const SpeedSchema = Type.Number({ minimum: 0, maximum: SPEED_MAX_MPS });
export const HeadingSchema = Type.Number({ minimum: 0, maximum: HEADING_MAX_DEG });
export const BatterySchema = Type.Number({ minimum: 0, maximum: BATTERY_MAX_PCT });
export const NoteSchema = Type.String({ maxLength: NOTE_MAX_LENGTH });

export const OrderStateSchema = Type.Union(OrderStates.map((s) => Type.Literal(s)));
export const AlertKindSchema = Type.Union(AlertKinds.map((k) => Type.Literal(k)));
export const AlertStateSchema = Type.Union(AlertStates.map((s) => Type.Literal(s)));
export const ErrorCodeSchema = Type.Union(Object.values(ErrorCode).map((c) => Type.Literal(c)));
/**
 * The coordinate system the positions of a message, body or answer are in (PROTOCOL.md,
 * `crs`): `wgs84` when absent. The server converts on input and stores WGS-84 only.
 */
export const CrsSchema = Type.Union(
  CoordinateSystems.map((c) => Type.Literal(c)),
  { description: `one of ${CoordinateSystems.join(', ')}` },
);

/**
 * One `batch` point, `[ts, lat, lon, acc?, spd?, hdg?]`. JSON Schema tuples have no
 * optional tail, so the shape is checked here (3 to 6 numbers) and each position by the
 * field schema of the same name in `BATCH_POINT_FIELDS`, the very schemas of a `ping`.
 */
export const BatchPointSchema = Type.Unsafe<[number, number, number, number?, number?, number?]>(
  Type.Array(Type.Number(), { minItems: 3, maxItems: 6 }),
);
/** The field schema of each position of a batch point, with its name for error messages. */
export const BATCH_POINT_FIELDS: ReadonlyArray<readonly [name: string, schema: TSchema]> = [
  ['ts', TsSchema],
  ['lat', LatSchema],
  ['lon', LonSchema],
  ['acc', AccuracySchema],
  ['spd', SpeedSchema],
  ['hdg', HeadingSchema],
];

// ---- client -> server, /v1/device ----

const msg = <T extends string, P extends Record<string, TSchema>>(t: T, props: P) =>
  Type.Object({ t: Type.Literal(t), seq: SeqSchema, ...props });

export const PingSchema = msg('ping', {
  ts: TsSchema,
  lat: LatSchema,
  lon: LonSchema,
  acc: Type.Optional(AccuracySchema),
  spd: Type.Optional(SpeedSchema),
  hdg: Type.Optional(HeadingSchema),
  bat: Type.Optional(BatterySchema),
  crs: Type.Optional(CrsSchema),
});
/** A `batch`; its `crs` applies to every point. */
export const BatchSchema = msg('batch', {
  pts: Type.Array(BatchPointSchema, { maxItems: MAX_BATCH_POINTS }),
  crs: Type.Optional(CrsSchema),
});
export const DepartSchema = msg('depart', { order: IdSchema, ts: Type.Optional(TsSchema) });
export const CheckinSchema = msg('checkin', {
  order: IdSchema,
  ts: TsSchema,
  lat: LatSchema,
  lon: LonSchema,
  acc: Type.Optional(AccuracySchema),
  crs: Type.Optional(CrsSchema),
});
export const StartSchema = msg('start', { order: IdSchema });
export const CompleteSchema = msg('complete', { order: IdSchema });
export const SosSchema = msg('sos', {
  ts: TsSchema,
  lat: LatSchema,
  lon: LonSchema,
  note: Type.Optional(NoteSchema),
  crs: Type.Optional(CrsSchema),
});
export const SosCancelSchema = msg('sos_cancel', { incident: IdSchema });

/** Every `/v1/device` message, by its `t`. */
export const DeviceMessageSchemas = {
  ping: PingSchema,
  batch: BatchSchema,
  depart: DepartSchema,
  checkin: CheckinSchema,
  start: StartSchema,
  complete: CompleteSchema,
  sos: SosSchema,
  sos_cancel: SosCancelSchema,
};

// ---- client -> server, /v1/safety ----

export const AckAlertSchema = msg('ack', { id: IdSchema });
export const ResolveAlertSchema = msg('resolve', { id: IdSchema, note: Type.Optional(NoteSchema) });

/** Every `/v1/safety` message, by its `t`. */
export const SafetyMessageSchemas = { ack: AckAlertSchema, resolve: ResolveAlertSchema };
/** Any `/v1/safety` message (for checks that do not dispatch on `t` first, e.g. the node bus). */
export const SafetyMessageSchema = Type.Union([AckAlertSchema, ResolveAlertSchema]);

// ---- shared records ----

/** An alert as consoles and HTTP clients see it (and as the alert feed stores it). */
export const AlertSchema = Type.Object({
  id: IdSchema,
  kind: AlertKindSchema,
  level: Type.Integer({ minimum: 0 }),
  state: AlertStateSchema,
  tech: IdSchema,
  order: Type.Optional(IdSchema),
  lat: Type.Optional(LatSchema),
  lon: Type.Optional(LonSchema),
  /** When the alert was raised (ms). */
  ts: TsSchema,
  detail: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

// ---- server -> client ----

export const AckReplySchema = Type.Object({ t: Type.Literal('ack'), seq: SeqSchema }, { additionalProperties: true });
export const ErrReplySchema = Type.Object(
  {
    t: Type.Literal('err'),
    seq: Type.Union([SeqSchema, Type.Null()]),
    code: ErrorCodeSchema,
    msg: Type.String(),
    /**
     * Extension (README): with `rate_limited`, how long to wait before sending again. A
     * refused `ping` or `batch` was not stored: the device keeps its fixes and sends them in
     * a later `batch`.
     */
    retryMs: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: true },
);
export const NoticeKindSchema = Type.Union(NoticeKinds.map((k) => Type.Literal(k)));
export const NoticePushSchema = Type.Object({
  t: Type.Literal('notice'),
  kind: NoticeKindSchema,
  order: Type.Optional(IdSchema),
  msg: Type.String(),
});
export const SosStatusPushSchema = Type.Object({
  t: Type.Literal('sos_status'),
  incident: IdSchema,
  state: Type.Union([Type.Literal('acknowledged'), Type.Literal('resolved')]),
});
export const SnapshotPushSchema = Type.Object({ t: Type.Literal('snapshot'), alerts: Type.Array(AlertSchema) });
export const AlertPushSchema = Type.Object({ t: Type.Literal('alert'), alert: AlertSchema });
/** What a device may be pushed (also what one node forwards to another for a device there). */
export const DevicePushSchema = Type.Union([NoticePushSchema, SosStatusPushSchema]);

// ---- HTTP bodies and answers ----

const PolygonSchema = Type.Array(Type.Tuple([LonSchema, LatSchema]), {
  minItems: POLYGON_MIN_POINTS,
  maxItems: POLYGON_MAX_POINTS,
});

/** Body of `PUT /v1/orders/:id`. */
export const OrderInputSchema = Type.Object({
  technician: IdSchema,
  lat: LatSchema,
  lon: LonSchema,
  radius: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_RADIUS_M })),
  scheduledAt: TsSchema,
  durationMin: Type.Number({ exclusiveMinimum: 0, maximum: ORDER_MAX_DURATION_MIN }),
  /**
   * Extension (README): an optional check-in polygon, a ring of `[lon, lat]` pairs
   * (GeoJSON order). When present it replaces the circle for the check-in verdict.
   */
  polygon: Type.Optional(PolygonSchema),
  /** The system of `lat`, `lon` and `polygon`; the order is stored in WGS-84. */
  crs: Type.Optional(CrsSchema),
});

export const TimelineEntrySchema = Type.Object({
  state: OrderStateSchema,
  ts: TsSchema,
  lat: Type.Optional(LatSchema),
  lon: Type.Optional(LonSchema),
});

/** Answer of `GET /v1/orders/:id` and `PUT`/`DELETE`. */
export const OrderViewSchema = Type.Object({
  id: IdSchema,
  technician: IdSchema,
  state: OrderStateSchema,
  scheduledAt: TsSchema,
  durationMin: Type.Number(),
  lat: LatSchema,
  lon: LonSchema,
  radius: Type.Number(),
  polygon: Type.Optional(Type.Array(Type.Tuple([LonSchema, LatSchema]))),
  timeline: Type.Array(TimelineEntrySchema),
});

/** Answer of `GET /v1/technicians/:id`. */
export const TechnicianViewSchema = Type.Object({
  id: IdSchema,
  lat: Type.Optional(LatSchema),
  lon: Type.Optional(LonSchema),
  ts: Type.Optional(TsSchema),
  acc: Type.Optional(AccuracySchema),
  spd: Type.Optional(SpeedSchema),
  activeOrder: Type.Optional(IdSchema),
  online: Type.Boolean(),
});

const Nullable = <S extends TSchema>(s: S) => Type.Union([s, Type.Null()]);
/** One point of `GET /v1/technicians/:id/track`: `[ts, lat, lon, acc, spd, hdg]`, missing values null. */
export const TrackPointSchema = Type.Tuple([
  TsSchema,
  LatSchema,
  LonSchema,
  Nullable(Type.Number()),
  Nullable(Type.Number()),
  Nullable(Type.Number()),
]);

/** One technician of `GET /v1/nearby`. */
export const NearbyTechnicianSchema = Type.Object({
  id: IdSchema,
  lat: LatSchema,
  lon: LonSchema,
  ts: TsSchema,
  dist: Type.Number({ minimum: 0 }),
});

// ---- customer tracking link ----

/**
 * What the customer's page sees (`GET /t/<token>/state`, each `/t/<token>/stream` event):
 * the order's state, time and place, the technician's live position only while the order
 * is `departed`, and the ETA then. Nothing else: no technician id, no track, no phone.
 */
export const ShareStateSchema = Type.Object(
  {
    order: Type.Object(
      { state: OrderStateSchema, scheduledAt: TsSchema, lat: LatSchema, lon: LonSchema },
      { additionalProperties: false },
    ),
    technician: Nullable(
      Type.Object({ lat: LatSchema, lon: LonSchema, ts: TsSchema }, { additionalProperties: false }),
    ),
    eta: Nullable(
      Type.Object(
        {
          seconds: Type.Number({ minimum: 0 }),
          metres: Type.Number({ minimum: 0 }),
          source: Type.Union(EtaSources.map((s) => Type.Literal(s))),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
/** Answer of `POST /v1/orders/:id/share`. */
export const ShareLinkSchema = Type.Object({ url: Type.String(), token: Type.String(), expiresAt: TsSchema });

// ---- HTTP queries (after the query string is read into numbers, see gateway/queries.ts) ----

/** `GET /v1/technicians/:id/track?from=&to=&limit=`, once defaults are filled in. */
export const TrackQuerySchema = Type.Object({
  from: TsSchema,
  to: TsSchema,
  limit: Type.Integer({ minimum: 1, maximum: TRACK_PAGE_MAX }),
});
/** `GET /v1/nearby?lat=&lon=&radius=`, once the default radius is filled in. */
export const NearbyQuerySchema = Type.Object({
  lat: LatSchema,
  lon: LonSchema,
  radius: Type.Number({ exclusiveMinimum: 0, maximum: NEARBY_MAX_RADIUS_M }),
});
/** `GET /v1/alerts?state=`. */
export const AlertsQuerySchema = Type.Object({ state: Type.Optional(AlertStateSchema) });

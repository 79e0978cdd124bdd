/**
 * The records the Redis backends read back (the state mirror's orders and positions, the
 * nearby index's last fixes, the alert feed's alerts and the node bus's envelopes), as
 * TypeBox schemas compiled once, built from the protocol's field schemas. Redis is shared
 * with every other node and may hold what an older build, a bug or a person wrote: a
 * record that does not match is refused and reported (`OnCorrupt`), never trusted.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { firstError } from '../protocol/checks.js';
import {
  AccuracySchema,
  AlertKindSchema,
  AlertSchema,
  IdSchema,
  LatSchema,
  LonSchema,
  OrderStateSchema,
  SpeedSchema,
  TimelineEntrySchema,
  TsSchema,
} from '../protocol/schemas.js';

/**
 * Told about a record read back that failed its schema: where it was read (e.g.
 * `alert feed stream`) and what is wrong with it (never the record itself: it may hold a
 * position or a note, which logs must not).
 */
export type OnCorrupt = (where: string, problem: string) => void;

const Nullable = <S extends TSchema>(s: S) => Type.Union([s, Type.Null()]);

/** A technician's live position as the state mirror stores it (actors' `LivePosition`). */
export const LivePositionSchema = Type.Object({
  ts: TsSchema,
  lat: LatSchema,
  lon: LonSchema,
  acc: Nullable(AccuracySchema),
  spd: Nullable(SpeedSchema),
});

/** The state mirror's position record of a technician. */
export const MirroredPositionSchema = Type.Object({ pos: LivePositionSchema, quietSince: Type.Number({ minimum: 0 }) });
export type MirroredPosition = Static<typeof MirroredPositionSchema>;

/** An open order as the state mirror stores it (actors' `OrderRecord`, the same fields). */
export const MirroredOrderSchema = Type.Object({
  id: IdSchema,
  tech: IdSchema,
  lat: LatSchema,
  lon: LonSchema,
  radius: Type.Number({ exclusiveMinimum: 0 }),
  polygon: Type.Optional(Type.Array(Type.Tuple([LonSchema, LatSchema]))),
  scheduledAt: TsSchema,
  durationMin: Type.Number({ exclusiveMinimum: 0 }),
  state: OrderStateSchema,
  timeline: Type.Array(TimelineEntrySchema),
  inServiceAt: Nullable(Type.Number()),
  fired: Type.Array(AlertKindSchema),
  watch: Type.Object({
    outsideSince: Nullable(Type.Number()),
    outsideFixes: Type.Integer({ minimum: 0 }),
    fired: Type.Boolean(),
  }),
  dwellAt: Nullable(Type.Number()),
});
export type MirroredOrder = Static<typeof MirroredOrderSchema>;

/** The nearby index's last fix of a technician, stored as `lat,lon,ts`. */
export const NearbyFixSchema = Type.Tuple([LatSchema, LonSchema, TsSchema]);

export const mirroredOrderCheck = TypeCompiler.Compile(MirroredOrderSchema);
export const mirroredPositionCheck = TypeCompiler.Compile(MirroredPositionSchema);
export const nearbyFixCheck = TypeCompiler.Compile(NearbyFixSchema);
export const storedAlertCheck = TypeCompiler.Compile(AlertSchema);

/**
 * Parses a JSON record read back from Redis and checks it; null (reported to `onCorrupt`)
 * when it is not JSON or does not match. `raw` undefined or null means "no record": null,
 * not reported.
 */
export function readRecord<S extends TSchema>(
  check: TypeCheck<S>,
  raw: string | null | undefined,
  where: string,
  onCorrupt: OnCorrupt | undefined,
): Static<S> | null {
  if (raw === null || raw === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    onCorrupt?.(where, 'not JSON');
    return null;
  }
  if (check.Check(value)) return value;
  onCorrupt?.(where, firstError(check, value));
  return null;
}

/**
 * The protocol's schemas compiled once, and the one way their errors are worded. Whoever
 * validates input from outside the process (a client frame, an HTTP body or query, a node
 * bus message, a record read back from Redis) uses these checks, built from the schemas
 * the protocol types are derived from. Server-side only (TypeBox's compiler).
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import {
  AlertSchema,
  AlertsQuerySchema,
  BATCH_POINT_FIELDS,
  CrsSchema,
  DeviceMessageSchemas,
  DevicePushSchema,
  IdSchema,
  NearbyQuerySchema,
  OrderInputSchema,
  SafetyMessageSchema,
  SafetyMessageSchemas,
  ShareStateSchema,
  TrackQuerySchema,
} from './schemas.js';

/** A compiled check per key of a schema map. */
export type Compiled<S extends Record<string, TSchema>> = { [K in keyof S]: TypeCheck<S[K]> };

/** Compiles every schema of a map (once, at module load). */
export function compileAll<S extends Record<string, TSchema>>(schemas: S): Compiled<S> {
  return Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, TypeCompiler.Compile(s)])) as Compiled<S>;
}

export const deviceChecks = compileAll(DeviceMessageSchemas);
export const safetyChecks = compileAll(SafetyMessageSchemas);
export const safetyMessageCheck = TypeCompiler.Compile(SafetyMessageSchema);
export const orderInputCheck = TypeCompiler.Compile(OrderInputSchema);
export const alertCheck = TypeCompiler.Compile(AlertSchema);
export const devicePushCheck = TypeCompiler.Compile(DevicePushSchema);
/** The customer link's state object (tests check what a customer is shown against it). */
export const shareStateCheck = TypeCompiler.Compile(ShareStateSchema);
export const idCheck = TypeCompiler.Compile(IdSchema);
export const trackQueryCheck = TypeCompiler.Compile(TrackQuerySchema);
export const nearbyQueryCheck = TypeCompiler.Compile(NearbyQuerySchema);
export const alertsQueryCheck = TypeCompiler.Compile(AlertsQuerySchema);
export const crsCheck = TypeCompiler.Compile(CrsSchema);
const batchPointChecks = BATCH_POINT_FIELDS.map(([name, schema]) => [name, TypeCompiler.Compile(schema)] as const);

/** One validation error: the dotted path of the field (empty for the value itself) and what is wrong. */
export interface FieldError {
  field: string;
  message: string;
}

/** Every error of `value` against `check`, in the order TypeBox finds them (lazily). */
export function* fieldErrors(check: TypeCheck<TSchema>, value: unknown): Generator<FieldError> {
  for (const error of check.Errors(value)) {
    yield { field: error.path.replace(/^\//, '').replaceAll('/', '.'), message: error.message };
  }
}

/** The first error of `value`, worded `field <path>: <problem>` (or the problem alone for the whole value). */
export function firstError(check: TypeCheck<TSchema>, value: unknown): string {
  const error = check.Errors(value).First();
  if (!error) return 'invalid message';
  const field = error.path.replace(/^\//, '').replaceAll('/', '.');
  return field === '' ? error.message : `field ${field}: ${error.message}`;
}

/** Checks `value` against `check`; the typed value, or the first error worded as `firstError` does. */
export function checkValue<S extends TSchema>(
  check: TypeCheck<S>,
  value: unknown,
): { ok: true; value: Static<S> } | { ok: false; msg: string } {
  return check.Check(value) ? { ok: true, value } : { ok: false, msg: firstError(check, value) };
}

/** How a field schema's allowed range reads in an error message, e.g. `[-90, 90]` or `a non-negative integer`. */
function rangeText(schema: TSchema): string {
  const integer = schema.type === 'integer';
  const { minimum, maximum } = schema as { minimum?: number; maximum?: number };
  if (integer && minimum === 0) return 'a non-negative integer';
  return minimum !== undefined && maximum !== undefined ? `in [${minimum}, ${maximum}]` : 'a number';
}

/**
 * Checks each position of a `batch` point with the field schema of that position (the same
 * as a `ping`'s field of that name); null when it is fine, else `<name> must be <range>`.
 * The point's length (3 to 6 numbers) is already checked by the batch schema.
 */
export function batchPointProblem(p: readonly (number | undefined)[]): string | null {
  for (let i = 0; i < p.length; i++) {
    const [name, check] = batchPointChecks[i]!;
    if (!check.Check(p[i])) return `${name} must be ${rangeText(check.Schema())}`;
  }
  return null;
}

/** True when `id` is a valid order/technician/alert id (for ids taken from URLs and tokens). */
export function isValidId(id: unknown): id is string {
  return idCheck.Check(id);
}

/**
 * The messages nodes post to each other on the node bus, and the arguments of each request
 * one node runs for another, as TypeBox schemas built from the protocol's (a forwarded
 * operator's `resolve` is checked by the very schema the gateway checked it with), compiled
 * once. What arrives on the bus crossed a network: the cluster code parses it with
 * `parseBusMessage` and `parseRemoteCall` before use.
 */
import { type Static, type TObject, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { compileAll } from '../protocol/checks.js';
import {
  AlertSchema,
  DevicePushSchema,
  ErrorCodeSchema,
  IdSchema,
  OrderInputSchema,
  SafetyMessageSchema,
} from '../protocol/schemas.js';
import { MirroredOrderSchema, MirroredPositionSchema } from './record-schemas.js';

/** Longest node id, request id or request name on the bus. */
export const BUS_TOKEN_MAX_LENGTH = 256;
const Token = Type.String({ minLength: 1, maxLength: BUS_TOKEN_MAX_LENGTH });

// ---- requests one node runs for another (`call`'s `op` and `args`) ----

/** The arguments of each request, by its `op`. */
export const RemoteCallSchemas = {
  safety: Type.Object({ operator: IdSchema, msg: SafetyMessageSchema }),
  putOrder: Type.Object({ id: IdSchema, input: OrderInputSchema }),
  cancelOrder: Type.Object({ id: IdSchema }),
  getOrder: Type.Object({ id: IdSchema }),
  getTechnician: Type.Object({ id: IdSchema }),
  eraseTechnician: Type.Object({ id: IdSchema }),
  /** Journal records of a technician that the asking node holds and Redis lacked (src/cluster/reconcile.ts). */
  reconcile: Type.Object({
    journaled: Type.Object({
      tech: IdSchema,
      orders: Type.Array(MirroredOrderSchema, { maxItems: 10_000 }),
      alerts: Type.Array(AlertSchema, { maxItems: 10_000 }),
      position: Type.Union([MirroredPositionSchema, Type.Null()]),
    }),
  }),
};
type RemoteCallSchemas = typeof RemoteCallSchemas;
export type RemoteCallOp = keyof RemoteCallSchemas;

/** A request run on the node that owns the technician concerned: its `op` and its arguments. */
export type RemoteCall = { [K in RemoteCallOp]: { op: K } & Static<RemoteCallSchemas[K]> }[RemoteCallOp];

export const remoteCallChecks = compileAll(RemoteCallSchemas);

/**
 * Parses a request that arrived on the node bus; null when `op` is unknown or `args` do
 * not match its schema. Only the schema's fields are kept.
 */
export function parseRemoteCall(op: string, args: unknown): RemoteCall | null {
  if (!Object.hasOwn(remoteCallChecks, op)) return null;
  const check = remoteCallChecks[op as RemoteCallOp];
  if (!check.Check(args)) return null;
  return { op, ...pick(args as Record<string, unknown>, check.Schema()) } as RemoteCall;
}

// ---- node bus envelopes ----

/** An answer carried back to the asking node: an `Outcome`. */
export const OutcomeSchema = Type.Union([
  Type.Object({ ok: Type.Literal(true), value: Type.Unknown() }),
  Type.Object({
    ok: Type.Literal(false),
    code: ErrorCodeSchema,
    msg: Type.String(),
    extras: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
]);

/** Every message kind on the bus, by its `t`. */
export const BusMessageSchemas = {
  /** Run request `op` here and post the answer to node `from`. */
  call: Type.Object({ t: Type.Literal('call'), req: Token, from: Token, op: Token, args: Type.Unknown() }),
  /** The answer to request `req` this node posted. */
  reply: Type.Object({ t: Type.Literal('reply'), req: Token, out: OutcomeSchema }),
  /** Hand technician `tech` over (to node `from`, when given). */
  release: Type.Object({ t: Type.Literal('release'), tech: IdSchema, from: Type.Optional(Token) }),
  /** Deliver `msg` to technician `tech`'s device, connected here. */
  push: Type.Object({ t: Type.Literal('push'), tech: IdSchema, msg: DevicePushSchema }),
};
type BusMessageSchemas = typeof BusMessageSchemas;
export type BusMessageKind = keyof BusMessageSchemas;
/** A node bus message once checked. */
export type CheckedBusMessage = { [K in BusMessageKind]: Static<BusMessageSchemas[K]> }[BusMessageKind];

export const busMessageChecks = compileAll(BusMessageSchemas);

/**
 * The envelope every bus message has: a JSON object with a short string `t`. The bus
 * checks this on arrival; the kind's own schema is checked by whoever handles the kind.
 */
export const BusEnvelopeSchema = Type.Object({ t: Token }, { additionalProperties: true });
export const busEnvelopeCheck = TypeCompiler.Compile(BusEnvelopeSchema);

/** Parses a message that arrived on the node bus; null when its kind is unknown or it does not match. */
export function parseBusMessage(m: unknown): CheckedBusMessage | null {
  if (!busEnvelopeCheck.Check(m) || !Object.hasOwn(busMessageChecks, m.t)) return null;
  const check = busMessageChecks[m.t as BusMessageKind];
  return check.Check(m) ? (pick(m, check.Schema()) as CheckedBusMessage) : null;
}

/** The properties of `value` that `schema` (an object schema) names; nothing else crosses. */
function pick(value: Record<string, unknown>, schema: TObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out;
}

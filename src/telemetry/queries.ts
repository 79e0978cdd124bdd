/**
 * The archive's read queries, written once for both stores. FINAL makes ReplacingMergeTree
 * collapse duplicates at read time (18.16 and chDB both support it), so a point inserted
 * twice is returned once even before a background merge. The `day` bounds let the engine
 * skip whole partitions outside the window.
 */
import type { OrderState, TrackPoint } from '../protocol.js';
import type { OrderEventRecord } from './archive.js';
import { dayOf, sqlInt, sqlString } from './schema.js';
import type { Store } from './store.js';

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Archived points of `tech` with from <= ts <= to, in time order, each ts once. */
export async function queryTrack(store: Store, tech: string, from: number, to: number): Promise<TrackPoint[]> {
  if (to < from) return [];
  const rows = await store.query(
    `SELECT ts, lat, lon, acc, spd, hdg FROM pings FINAL
     WHERE tech = ${sqlString(tech)} AND day >= ${sqlString(dayOf(from))} AND day <= ${sqlString(dayOf(to))}
       AND ts >= ${sqlInt(from)} AND ts <= ${sqlInt(to)}
     ORDER BY ts`,
  );
  return rows.map((r) => [num(r[0]), num(r[1]), num(r[2]), numOrNull(r[3]), numOrNull(r[4]), numOrNull(r[5])]);
}

/** Archived events of `order` in time order, each (ts, state) once. */
export async function queryOrderEvents(store: Store, order: string): Promise<OrderEventRecord[]> {
  const rows = await store.query(
    `SELECT order_id, tech, state, ts, lat, lon FROM order_events FINAL
     WHERE order_id = ${sqlString(order)}
     ORDER BY ts, state`,
  );
  return rows.map((r) => ({
    order: String(r[0]),
    tech: String(r[1]),
    state: String(r[2]) as OrderState,
    ts: num(r[3]),
    lat: numOrNull(r[4]),
    lon: numOrNull(r[5]),
  }));
}

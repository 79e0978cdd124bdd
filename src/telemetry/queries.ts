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

/** Archived points of `tech` with from <= ts <= to, in time order, each ts once; the first `limit` when given. */
export async function queryTrack(
  store: Store,
  tech: string,
  from: number,
  to: number,
  limit?: number,
): Promise<TrackPoint[]> {
  if (to < from || limit === 0) return [];
  // LIMIT applies after FINAL has collapsed duplicates, so a page never counts a point twice.
  const bound = limit === undefined ? '' : ` LIMIT ${sqlInt(limit)}`;
  const rows = await store.query(
    `SELECT ts, lat, lon, acc, spd, hdg FROM pings FINAL
     WHERE tech = ${sqlString(tech)} AND day >= ${sqlString(dayOf(from))} AND day <= ${sqlString(dayOf(to))}
       AND ts >= ${sqlInt(from)} AND ts <= ${sqlInt(to)}
     ORDER BY ts${bound}`,
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

/** Tables that hold rows of a technician (column `tech`). */
const TECH_TABLES = ['pings', 'order_events', 'alert_events'] as const;

/**
 * Deletes every archived row of `tech` (pings, order and alert events) and resolves once
 * the deletions are applied. `ALTER TABLE ... DELETE` is a mutation on both ClickHouse
 * 18.16 and chDB: it returns before it has rewritten the parts (18.16 has no
 * `mutations_sync`), so this polls `system.mutations` until none is left pending.
 */
export async function eraseTechnicianRows(store: Store, tech: string, timeoutMs = 120_000): Promise<void> {
  for (const table of TECH_TABLES) {
    await store.exec(`ALTER TABLE ${table} DELETE WHERE tech = ${sqlString(tech)}`);
  }
  const deadline = Date.now() + timeoutMs;
  const tables = TECH_TABLES.map((t) => sqlString(t)).join(', ');
  for (;;) {
    const rows = await store.query(
      `SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table IN (${tables}) AND is_done = 0`,
    );
    if (Number(rows[0]?.[0]) === 0) return;
    if (Date.now() > deadline) throw new Error(`erasing ${tech}: mutations still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

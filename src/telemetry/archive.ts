/**
 * What the rest of the server needs from the archive: a durable write (acked once the
 * rows are in the local spool) and the read queries. Implementations live beside this
 * file; `openArchive` (archive-factory.ts) picks embedded chDB or a ClickHouse server.
 */
import type { ComponentHealth } from '../outcome.js';
import type { AlertKind, AlertState, OrderState, TrackPoint } from '../protocol.js';

/** One accepted position fix. Missing optional values are null. */
export interface PingRecord {
  tech: string;
  ts: number;
  lat: number;
  lon: number;
  acc: number | null;
  spd: number | null;
  hdg: number | null;
  bat: number | null;
}

/** One order transition (or creation/update), as shown on the order's timeline. */
export interface OrderEventRecord {
  order: string;
  tech: string;
  state: OrderState;
  ts: number;
  lat: number | null;
  lon: number | null;
}

/** One change of an alert (raised, escalated, acknowledged, resolved). */
export interface AlertEventRecord {
  alert: string;
  kind: AlertKind;
  level: number;
  state: AlertState;
  tech: string;
  order: string | null;
  /** When this change happened. */
  ts: number;
  /** When the alert was first raised. */
  raisedAt: number;
  lat: number | null;
  lon: number | null;
  /** JSON text of the alert's `detail`, or '{}'. */
  detail: string;
}

export type ArchiveRecord =
  | { table: 'pings'; row: PingRecord }
  | { table: 'order_events'; row: OrderEventRecord }
  | { table: 'alert_events'; row: AlertEventRecord };

/** Thrown by `ArchiveWriter.write` when the spool is over its disk budget: nothing was stored. */
export class SpoolFullError extends Error {
  constructor(
    readonly bytes: number,
    readonly budget: number,
  ) {
    super(`archive spool is full (${bytes} of ${budget} bytes): the archive is not draining`);
    this.name = 'SpoolFullError';
  }
}

export interface ArchiveWriter {
  /**
   * Appends records to the local spool and resolves once they are fsynced there (group
   * commit: one fsync serves every record appended meanwhile). Rejects with
   * `SpoolFullError` when over budget. Landing in ClickHouse happens later, in order.
   */
  write(records: ArchiveRecord[]): Promise<void>;
}

export interface ArchiveQueries {
  /**
   * Archived points of `tech` with from <= ts <= to, in time order, each `ts` once; only
   * the first `limit` of them when a limit is given (track pages ask one more than they
   * answer, to know whether more remain).
   */
  track(tech: string, from: number, to: number, limit?: number): Promise<TrackPoint[]>;
  /** Archived transitions of `order` in time order. */
  orderEvents(order: string): Promise<OrderEventRecord[]>;
}

export interface ArchiveEraser {
  /**
   * Deletes every archived row of technician `tech` (pings, order and alert events;
   * privacy: erased on request) and resolves once the deletion is applied, so reads no longer see
   * them. Spooled rows are drained first; the caller stops new rows of `tech` before.
   * Rejects when that cannot finish within `timeoutMs`; it can be retried.
   */
  eraseTechnician(tech: string, timeoutMs?: number): Promise<void>;
}

export interface Archive extends ArchiveWriter, ArchiveQueries, ArchiveEraser {
  /** For `/readyz`: reachable store and spool under budget. */
  health(): ComponentHealth;
  /** Drains what it can within `timeoutMs`, then stops; spooled rows stay for the next start. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * The archive's tables and how records become rows. One SQL dialect for both stores: it
 * must run on Debian's ClickHouse 18.16 (no DateTime64, TTL, codecs or query parameters)
 * and on chDB 26, so times are `Int64` milliseconds plus a `Date` column for daily
 * partitions, and tables use the old-style `ENGINE = ... PARTITION BY ... ORDER BY`.
 *
 * ReplacingMergeTree with the natural key as ORDER BY makes inserts idempotent: a batch
 * retried after a timeout, or an offline backlog replayed by a device, collapses to one
 * row per key at merge time, and readers use FINAL so they see one row before merges too.
 */
import type { AlertEventRecord, ArchiveRecord, OrderEventRecord, PingRecord } from './archive.js';

/** The archive tables, in the order a batch inserts them. */
export const TABLES = ['pings', 'order_events', 'alert_events'] as const;
/** One of the archive tables. */
export type TableName = (typeof TABLES)[number];

type Kind = 'String' | 'NullableString' | 'Int64' | 'UInt8' | 'Float64' | 'NullableFloat64' | 'Date';
interface Column<R> {
  name: string;
  kind: Kind;
  get: (row: R) => unknown;
}

const SQL_TYPE: Record<Kind, string> = {
  String: 'String',
  NullableString: 'Nullable(String)',
  Int64: 'Int64',
  UInt8: 'UInt8',
  Float64: 'Float64',
  NullableFloat64: 'Nullable(Float64)',
  Date: 'Date',
};

const DAY_MS = 86_400_000;
const LAST_DAY_MS = Date.UTC(2105, 11, 31);

const dayCache = new Map<number, string>();

/** UTC calendar day of an epoch-millisecond time, as ClickHouse writes a `Date` ('YYYY-MM-DD'). */
export function dayOf(ts: number): string {
  // Date holds 1970..2105 only; times outside (clock errors, open-ended query bounds) are clamped.
  const day = Math.min(LAST_DAY_MS, Math.max(0, Math.floor(ts / DAY_MS) * DAY_MS));
  // Formatting a Date is the slowest step of encoding a row, and rows cluster on few days.
  let text = dayCache.get(day);
  if (text === undefined) {
    if (dayCache.size > 1000) dayCache.clear();
    text = new Date(day).toISOString().slice(0, 10);
    dayCache.set(day, text);
  }
  return text;
}

interface TableDef<R> {
  columns: Column<R>[];
  orderBy: string;
}

const pings: TableDef<PingRecord> = {
  columns: [
    { name: 'tech', kind: 'String', get: (r) => r.tech },
    { name: 'ts', kind: 'Int64', get: (r) => r.ts },
    { name: 'day', kind: 'Date', get: (r) => dayOf(r.ts) },
    { name: 'lat', kind: 'Float64', get: (r) => r.lat },
    { name: 'lon', kind: 'Float64', get: (r) => r.lon },
    { name: 'acc', kind: 'NullableFloat64', get: (r) => r.acc },
    { name: 'spd', kind: 'NullableFloat64', get: (r) => r.spd },
    { name: 'hdg', kind: 'NullableFloat64', get: (r) => r.hdg },
    { name: 'bat', kind: 'NullableFloat64', get: (r) => r.bat },
  ],
  // A technician has one position per millisecond: a re-sent point replaces itself.
  orderBy: '(tech, ts)',
};

const orderEvents: TableDef<OrderEventRecord> = {
  columns: [
    { name: 'order_id', kind: 'String', get: (r) => r.order },
    { name: 'tech', kind: 'String', get: (r) => r.tech },
    { name: 'state', kind: 'String', get: (r) => r.state },
    { name: 'ts', kind: 'Int64', get: (r) => r.ts },
    { name: 'day', kind: 'Date', get: (r) => dayOf(r.ts) },
    { name: 'lat', kind: 'NullableFloat64', get: (r) => r.lat },
    { name: 'lon', kind: 'NullableFloat64', get: (r) => r.lon },
  ],
  // State is in the key: an update and a transition can share a millisecond.
  orderBy: '(order_id, ts, state)',
};

const alertEvents: TableDef<AlertEventRecord> = {
  columns: [
    { name: 'alert_id', kind: 'String', get: (r) => r.alert },
    { name: 'kind', kind: 'String', get: (r) => r.kind },
    { name: 'level', kind: 'UInt8', get: (r) => r.level },
    { name: 'state', kind: 'String', get: (r) => r.state },
    { name: 'tech', kind: 'String', get: (r) => r.tech },
    { name: 'order_id', kind: 'NullableString', get: (r) => r.order },
    { name: 'ts', kind: 'Int64', get: (r) => r.ts },
    { name: 'raised_at', kind: 'Int64', get: (r) => r.raisedAt },
    { name: 'day', kind: 'Date', get: (r) => dayOf(r.ts) },
    { name: 'lat', kind: 'NullableFloat64', get: (r) => r.lat },
    { name: 'lon', kind: 'NullableFloat64', get: (r) => r.lon },
    { name: 'detail', kind: 'String', get: (r) => r.detail },
  ],
  // An escalation and an acknowledgement can share a millisecond; level and state tell them apart.
  orderBy: '(alert_id, ts, state, level)',
};

// The union of record types is erased here; `encodeBatch` only pairs a table with its own rows.
const DEFS: Record<TableName, TableDef<never>> = {
  pings: pings as TableDef<never>,
  order_events: orderEvents as TableDef<never>,
  alert_events: alertEvents as TableDef<never>,
};

/** `CREATE TABLE IF NOT EXISTS` statements for every archive table. */
export function createTableStatements(): string[] {
  return TABLES.map((table) => {
    const def = DEFS[table];
    const cols = def.columns.map((c) => `${c.name} ${SQL_TYPE[c.kind]}`).join(', ');
    return `CREATE TABLE IF NOT EXISTS ${table} (${cols}) ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY ${def.orderBy}`;
  });
}

/** Column names of `table` in insert order. */
export function columnsOf(table: TableName): string[] {
  return DEFS[table].columns.map((c) => c.name);
}

const NEEDS_ESCAPE = /[\\\t\n\r\0\b\f]/;
const ESCAPABLE = /[\\\t\n\r\0\b\f]/g;

/**
 * Encodes a value for the TabSeparated format (both stores parse the same bytes). Types are
 * checked strictly: a value the engine would refuse must be caught here, because a refused
 * insert is retried and would block the spool behind it for good.
 */
function tsvField(value: unknown, kind: Kind): string {
  if (value === null && (kind === 'NullableString' || kind === 'NullableFloat64')) return '\\N';
  switch (kind) {
    case 'String':
    case 'NullableString':
      if (typeof value !== 'string') break;
      return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPABLE, (ch) => TSV_ESCAPES[ch]!) : value;
    case 'Float64':
    case 'NullableFloat64':
      if (typeof value !== 'number' || !Number.isFinite(value)) break;
      return String(value);
    case 'Int64':
      // Whole milliseconds; a safe integer never prints with an exponent.
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) break;
      return String(value);
    case 'UInt8':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) break;
      return String(value);
    case 'Date':
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) break;
      return value;
  }
  throw new TypeError(`${JSON.stringify(value) ?? String(value)} does not fit a ${kind} column`);
}

const TSV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

/**
 * Rows of one table and one day encoded as TabSeparated, ready for an insert. One insert
 * never spans day partitions: an engine refuses an insert block that touches more than
 * `max_partitions_per_insert_block` (100) partitions, and a phone with a wrong clock can
 * send points that many days apart in one batch.
 */
export interface EncodedRows {
  table: TableName;
  /** The day partition ('YYYY-MM-DD') every row of this body belongs to. */
  day: string;
  columns: string[];
  rows: number;
  body: Buffer;
  /** The records behind `body`, kept for the dead-letter file if the store refuses them for good. */
  records: ArchiveRecord[];
}

/** The encoded rows by table and day, and the records that could not be encoded (a bug upstream). */
export interface EncodedBatch {
  tables: EncodedRows[];
  rejected: { record: ArchiveRecord; reason: string }[];
}

interface Chunk {
  lines: string[];
  records: ArchiveRecord[];
}

/**
 * Splits records by table and day partition and encodes each group's rows as one
 * TabSeparated body, one record at a time so that a caller can yield to the event loop
 * between slices of a large batch. A record that cannot be encoded is set aside rather
 * than thrown: one bad row must not stop the spool from draining forever.
 */
export class BatchEncoder {
  private readonly chunks: Record<TableName, Map<string, Chunk>> = {
    pings: new Map(),
    order_events: new Map(),
    alert_events: new Map(),
  };
  private readonly rejected: EncodedBatch['rejected'] = [];

  /** Encodes one record into the body of its table and day. */
  add(rec: ArchiveRecord): void {
    const def = DEFS[rec.table] as TableDef<typeof rec.row> | undefined;
    if (!def) {
      this.rejected.push({ record: rec, reason: `unknown table ${String(rec.table)}` });
      return;
    }
    try {
      let line = '';
      for (let i = 0; i < def.columns.length; i++) {
        const c = def.columns[i]!;
        line += (i === 0 ? '' : '\t') + tsvField(c.get(rec.row), c.kind);
      }
      // Every table's `day` column is the day of its `ts`, checked just above.
      const day = dayOf(rec.row.ts);
      const chunks = this.chunks[rec.table];
      let chunk = chunks.get(day);
      if (chunk === undefined) {
        chunk = { lines: [], records: [] };
        chunks.set(day, chunk);
      }
      chunk.lines.push(line);
      chunk.records.push(rec);
    } catch (err) {
      this.rejected.push({ record: rec, reason: (err as Error).message });
    }
  }

  /** The bodies of every table and day that got rows (tables in `TABLES` order, days ascending), and the records set aside. */
  finish(): EncodedBatch {
    const tables: EncodedRows[] = [];
    for (const table of TABLES) {
      const days = [...this.chunks[table].keys()].sort();
      for (const day of days) {
        const chunk = this.chunks[table].get(day)!;
        tables.push({
          table,
          day,
          columns: columnsOf(table),
          rows: chunk.lines.length,
          body: Buffer.from(`${chunk.lines.join('\n')}\n`),
          records: chunk.records,
        });
      }
    }
    return { tables, rejected: this.rejected };
  }
}

/** Encodes `records` in one go (see `BatchEncoder`). */
export function encodeBatch(records: Iterable<ArchiveRecord>): EncodedBatch {
  const encoder = new BatchEncoder();
  for (const rec of records) encoder.add(rec);
  return encoder.finish();
}

/** A string literal for SQL text; 18.16 has no query parameters, so values are quoted here. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** An integer literal for SQL text; refuses anything that is not a safe integer. */
export function sqlInt(value: number): string {
  if (!Number.isSafeInteger(value)) throw new RangeError(`expected an integer, got ${value}`);
  return String(value);
}

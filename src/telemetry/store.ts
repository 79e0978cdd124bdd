/**
 * The narrow port between the archive and a ClickHouse engine. Backends only move SQL
 * text and TabSeparated bytes; every statement (schema, inserts, reads, retention) is
 * written once in the shared modules, so both stores run exactly the same SQL.
 */
import type { TableName } from './schema.js';

/** One ClickHouse engine: embedded chDB (chdb-store.ts) or a server over HTTP (clickhouse-store.ts). */
export interface Store {
  /** Short name for logs and health details, e.g. "chdb" or "clickhouse http://host:8123". */
  readonly name: string;
  /** Runs a statement that returns no rows (DDL, ALTER). */
  exec(sql: string): Promise<void>;
  /** Runs a SELECT and returns its rows as arrays of JSON values (64-bit integers may come back as strings). */
  query(sql: string): Promise<unknown[][]>;
  /** Inserts TabSeparated `body` (one row per line) into `columns` of `table`. */
  insert(table: TableName, columns: readonly string[], body: Buffer): Promise<void>;
  /** True when the engine answers right now; never throws. */
  ping(): Promise<boolean>;
  /** Releases the connection; waits for operations that cannot be abandoned safely. */
  close(): Promise<void>;
}

/** Thrown by a store when the engine cannot be reached or fails; `cause` is the driver's error. */
export class StoreError extends Error {
  constructor(store: string, action: string, cause: unknown) {
    super(`${store}: ${action} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StoreError';
  }
}

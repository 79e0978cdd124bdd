/**
 * Store backend for a ClickHouse server over HTTP (`CLICKHOUSE_URL`), through
 * `@clickhouse/client`. Works with servers as old as Debian's 18.16: only plain SQL,
 * JSONCompact results and TabSeparated inserts are used.
 */
import { Readable } from 'node:stream';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { TableName } from './schema.js';
import { type Store, StoreError } from './store.js';

/** Longest an HTTP request may take before it counts as a failure and is retried by the caller. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A ClickHouse server reached over HTTP. */
export class ClickHouseStore implements Store {
  readonly name: string;
  private readonly client: ClickHouseClient;

  /** `url` is `CLICKHOUSE_URL`; user, password and database may be part of it. */
  constructor(url: string) {
    const shown = new URL(url);
    shown.password = shown.password ? '***' : '';
    this.name = `clickhouse ${shown.origin}`;
    this.client = createClient({
      url,
      request_timeout: REQUEST_TIMEOUT_MS,
      application: 'fieldtrack',
      // Failures surface as StoreError to the drainer, which logs them once per outage
      // through pino; the client's own console warnings would repeat them on every retry.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql });
    } catch (err) {
      throw new StoreError(this.name, 'statement', err);
    }
  }

  async query(sql: string): Promise<unknown[][]> {
    try {
      const rs = await this.client.query({ query: sql, format: 'JSONCompact' });
      const out = await rs.json<unknown[]>();
      return out.data;
    } catch (err) {
      throw new StoreError(this.name, 'query', err);
    }
  }

  async insert(table: TableName, columns: readonly string[], body: Buffer): Promise<void> {
    try {
      await this.client.insert({
        table,
        columns: [...columns] as [string, ...string[]],
        format: 'TabSeparated',
        values: Readable.from([body], { objectMode: false }),
      });
    } catch (err) {
      throw new StoreError(this.name, `insert into ${table}`, err);
    }
  }

  async ping(): Promise<boolean> {
    try {
      const r = await this.client.ping();
      return r.success;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * Store backend for embedded chDB (the default when `CLICKHOUSE_URL` is unset), with its
 * data in `${DATA_DIR}/archive`. It runs on the main thread through chDB's async API: the
 * engine works on libuv threads, and a worker-thread setup crashed the process at exit.
 *
 * chDB binds one data directory per process, and closing a session while an operation is
 * still running aborts the engine, so `close` waits for in-flight operations first.
 */
import { drainPending, Session } from 'chdb';
import type { TableName } from './schema.js';
import { type Store, StoreError } from './store.js';

/**
 * Engine settings given at connect (server configuration, not query settings). ClickHouse's
 * defaults suit a database server that owns its machine; here the engine shares a process
 * with the tracker, so what it may keep is bounded:
 * - idle pool threads: ClickHouse keeps up to 1000, each with its stack, allocator caches
 *   and three open /proc files; in the soak they showed up as resident memory and open
 *   files climbing for minutes after a burst of engine work (the node's own heap stayed
 *   flat). Sixteen are plenty for one writer and occasional track reads.
 * - caches (marks, primary index, compiled expressions, query conditions): gigabytes by
 *   default, filled as the archive grows. Here they are held to tens of megabytes; a
 *   miss costs a track read a trip to disk, never a wrong answer.
 */
export const CHDB_CONNECTION_ARGS: readonly string[] = [
  '--max_thread_pool_free_size=16',
  `--mark_cache_size=${64 * 2 ** 20}`,
  `--primary_index_cache_size=${64 * 2 ** 20}`,
  `--index_mark_cache_size=${16 * 2 ** 20}`,
  `--compiled_expression_cache_size=${16 * 2 ** 20}`,
  `--query_condition_cache_size=${16 * 2 ** 20}`,
];

/** chDB on a local data folder. */
export class ChdbStore implements Store {
  readonly name = 'chdb';
  private readonly session: Session;
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;

  /** Opens (creating if needed) the chDB data folder `path`. */
  constructor(readonly path: string) {
    this.session = new Session(path, { connectionArgs: [...CHDB_CONNECTION_ARGS] });
  }

  private track<T>(op: () => Promise<T>, action: string): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError(this.name, action, new Error('store is closed')));
    const p = op().catch((err: unknown) => {
      throw new StoreError(this.name, action, err);
    });
    this.inflight.add(p);
    const forget = (): void => {
      this.inflight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  async exec(sql: string): Promise<void> {
    await this.track(() => this.session.queryAsync(sql), 'statement');
  }

  async query(sql: string): Promise<unknown[][]> {
    const res = await this.track(() => this.session.queryAsync(sql, { format: 'JSONCompact' }), 'query');
    // An empty result has no body at all rather than an empty JSON document.
    if (res.bytes().length === 0) return [];
    return res.json<{ data: unknown[][] }>().data;
  }

  async insert(table: TableName, columns: readonly string[], body: Buffer): Promise<void> {
    await this.track(
      () => this.session.insert({ table, columns, values: body, format: 'TabSeparated' }),
      `insert into ${table}`,
    );
  }

  async ping(): Promise<boolean> {
    try {
      await this.track(() => this.session.queryAsync('SELECT 1'), 'ping');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    this.session.close();
    // Frees the process-wide engine slot so another data folder can be opened after this one.
    await drainPending();
  }
}

/**
 * Picks the archive store from the configuration: a ClickHouse server when
 * `CLICKHOUSE_URL` is set, else embedded chDB in `${DATA_DIR}/archive`. Either way writes
 * go through the spool in `${DATA_DIR}/spool`, and rows the store refuses for good go to
 * `${DATA_DIR}/dead-letter`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Archive } from './archive.js';
import { ClickHouseStore } from './clickhouse-store.js';
import { DEAD_LETTER_DIR } from './dead-letter.js';
import { SpooledArchive, type SpooledArchiveOptions } from './spooled-archive.js';
import type { Store } from './store.js';

/** The config fields the archive reads. */
export type ArchiveConfig = Pick<
  Config,
  'DATA_DIR' | 'CLICKHOUSE_URL' | 'ARCHIVE_BATCH_ROWS' | 'ARCHIVE_BATCH_MS' | 'SPOOL_MAX_BYTES' | 'RETENTION_DAYS'
>;

/** Makes the store named by the configuration (not yet schema'd). */
export async function openStore(config: ArchiveConfig): Promise<Store> {
  if (config.CLICKHOUSE_URL) return new ClickHouseStore(config.CLICKHOUSE_URL);
  const path = join(config.DATA_DIR, 'archive');
  await mkdir(path, { recursive: true });
  // Loaded only here: the engine's library adds about 150 MiB of resident memory to
  // any process that imports it, which a node archiving to a server should not carry.
  const { ChdbStore } = await import('./chdb-store.js');
  return new ChdbStore(path);
}

/** Opens the node's archive: spool, store, drainer and retention, all started. */
export async function openArchive(config: ArchiveConfig, log: Logger, metrics: Metrics): Promise<Archive> {
  return openSpooledArchive(config, log, metrics);
}

/** The spooled archive's settings as named by the configuration. */
export function archiveOptions(config: ArchiveConfig): SpooledArchiveOptions {
  return {
    spoolDir: join(config.DATA_DIR, 'spool'),
    deadLetterDir: join(config.DATA_DIR, DEAD_LETTER_DIR),
    spoolMaxBytes: config.SPOOL_MAX_BYTES,
    batchRows: config.ARCHIVE_BATCH_ROWS,
    batchMs: config.ARCHIVE_BATCH_MS,
    retentionDays: config.RETENTION_DAYS,
  };
}

/** Like `openArchive`, typed as the implementation (tests and benchmarks use `runRetention`). */
export async function openSpooledArchive(
  config: ArchiveConfig,
  log: Logger,
  metrics: Metrics,
): Promise<SpooledArchive> {
  const store = await openStore(config);
  try {
    return await SpooledArchive.open(store, archiveOptions(config), archiveLogger(log, store), metrics);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** The archive's child logger, tagged with the store in use. */
export function archiveLogger(log: Logger, store: Store): Logger {
  return log.child({ component: 'archive', store: store.name });
}

/**
 * Retention of the archive: whole day partitions older than `RETENTION_DAYS` are dropped,
 * which is cheap in ClickHouse (files are unlinked, nothing is rewritten) and needs no TTL
 * (18.16 has none). Partitions are listed from system.parts; a `Date` partition key shows
 * there as 'YYYY-MM-DD', which is also the literal `DROP PARTITION` takes on both stores.
 */
import type { Logger } from 'pino';
import { dayOf, sqlString, TABLES, type TableName } from './schema.js';
import type { Store } from './store.js';

const DAY_MS = 86_400_000;
/** How often the retention job runs after the start-up run. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/** One dropped partition. */
export interface DroppedPartition {
  table: TableName;
  day: string;
}

/** UTC midnight starting the first day kept when `retentionDays` days are kept as of `now`: today counts as one of them. */
export function firstKeptDayStart(now: number, retentionDays: number): number {
  return Math.floor((now - (retentionDays - 1) * DAY_MS) / DAY_MS) * DAY_MS;
}

/** The first day kept, as the archive's day partitions name it. */
export function firstKeptDay(now: number, retentionDays: number): string {
  return dayOf(firstKeptDayStart(now, retentionDays));
}

/** Drops every day partition of every archive table older than the retention window. */
export async function dropExpiredPartitions(
  store: Store,
  retentionDays: number,
  now: number,
): Promise<DroppedPartition[]> {
  const keepFrom = firstKeptDay(now, retentionDays);
  const dropped: DroppedPartition[] = [];
  for (const table of TABLES) {
    const rows = await store.query(
      `SELECT DISTINCT partition FROM system.parts
       WHERE database = currentDatabase() AND table = ${sqlString(table)} AND active`,
    );
    // 'YYYY-MM-DD' strings sort like the days they name.
    const old = rows.map((r) => String(r[0]).replace(/^'|'$/g, '')).filter((day) => day < keepFrom);
    for (const day of old.sort()) {
      await store.exec(`ALTER TABLE ${table} DROP PARTITION ${sqlString(day)}`);
      dropped.push({ table, day });
    }
  }
  return dropped;
}

/** Runs `dropExpiredPartitions` at start and then hourly; failures are logged and retried next run. */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly retentionDays: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts the schedule with an immediate first run. */
  start(): void {
    this.runNow();
    this.timer = setInterval(() => this.runNow(), RETENTION_INTERVAL_MS);
    this.timer.unref();
  }

  /** Runs once unless a run is already going; resolves when that run is over. */
  runNow(): Promise<void> {
    this.running = this.running.then(async () => {
      try {
        const dropped = await dropExpiredPartitions(this.store, this.retentionDays, this.now());
        if (dropped.length > 0) this.log.info({ dropped }, 'archive retention: dropped old day partitions');
      } catch (err) {
        this.log.warn({ err }, 'archive retention failed; will retry at the next run');
      }
    });
    return this.running;
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}

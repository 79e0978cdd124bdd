/**
 * The archive as the rest of the server sees it: writes go to the local spool (acked once
 * fsynced there), a drainer moves them into the store in batches, reads go to the store,
 * and a retention job drops old day partitions. The store is either backend; this file
 * never knows which.
 */

import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { ComponentHealth } from '../outcome.js';
import type { TrackPoint } from '../protocol.js';
import { type Archive, type ArchiveRecord, type OrderEventRecord, SpoolFullError } from './archive.js';
import { BatchWorker } from './batch-worker.js';
import { DeadLetterFolder } from './dead-letter.js';
import { SpoolDrainer } from './drainer.js';
import { eraseTechnicianRows, queryOrderEvents, queryTrack } from './queries.js';
import { RetentionJob } from './retention.js';
import { createTableStatements } from './schema.js';
import { Spool } from './spool.js';
import type { Store } from './store.js';

/** How often an idle store is pinged so that `/readyz` notices an outage without traffic. */
const PROBE_EVERY_MS = 5000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** How long start-up waits for the schema before going on without the store. */
const SCHEMA_WAIT_MS = 5000;

/** Settings of a spooled archive, normally taken from the configuration. */
export interface SpooledArchiveOptions {
  spoolDir: string;
  /** Where rows the store refuses for good are written (`${DATA_DIR}/dead-letter`). */
  deadLetterDir: string;
  spoolMaxBytes: number;
  batchRows: number;
  batchMs: number;
  retentionDays: number;
  /** Interval of the backlog progress log line (default 5 s). */
  progressEveryMs?: number;
  now?: () => number;
}

/** Creates the archive tables if they do not exist (idempotent, same SQL on both stores). */
export async function createSchema(store: Store): Promise<void> {
  for (const sql of createTableStatements()) await store.exec(sql);
}

/** The `Archive` over a spool and a store; see the module comment. */
export class SpooledArchive implements Archive {
  private closing: Promise<void> | null = null;
  private refusing = false;
  private readonly probe: NodeJS.Timeout;

  private constructor(
    private readonly store: Store,
    private readonly spool: Spool,
    private readonly drainer: SpoolDrainer,
    private readonly retention: RetentionJob,
    private readonly log: Logger,
  ) {
    this.probe = setInterval(() => {
      this.drainer.updateGauges();
      this.store.ping().then(
        (ok) => this.drainer.reportProbe(ok, ok ? null : `${this.store.name} does not answer`),
        () => undefined,
      );
    }, PROBE_EVERY_MS);
    this.probe.unref();
  }

  /**
   * Opens the spool, creates the schema when the store is reachable (else the drainer
   * retries it before its first insert), starts draining and the retention schedule.
   * Takes ownership of `store`: `close` closes it.
   */
  static async open(store: Store, opts: SpooledArchiveOptions, log: Logger, metrics: Metrics): Promise<SpooledArchive> {
    const now = opts.now ?? Date.now;
    const spool = await Spool.open({ dir: opts.spoolDir, maxBytes: opts.spoolMaxBytes, now });
    // Not cached here: the drainer runs it again after a failed insert, so tables that are
    // gone (a new server, an operator's DROP) are created again instead of failing forever.
    const schema = (): Promise<void> => createSchema(store);
    const worker = new BatchWorker();
    worker.warm();
    const drainer = new SpoolDrainer(spool, store, schema, log, metrics, {
      batchRows: opts.batchRows,
      batchMs: opts.batchMs,
      deadLetters: new DeadLetterFolder(opts.deadLetterDir),
      now,
      ...(opts.progressEveryMs === undefined ? {} : { progressEveryMs: opts.progressEveryMs }),
      worker,
    });
    // Start-up waits a little for the schema, not for a server that may be gone for hours:
    // writes are acked into the spool meanwhile, and the drainer creates the schema later.
    let timer: NodeJS.Timeout | undefined;
    const attempt = schema().then(
      () => null,
      (err: unknown) => err as Error,
    );
    const timedOut = new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new Error(`no answer within ${SCHEMA_WAIT_MS} ms`)), SCHEMA_WAIT_MS);
    });
    const failure = await Promise.race([attempt, timedOut]);
    clearTimeout(timer);
    if (failure) {
      drainer.reportProbe(false, failure.message);
      log.warn({ err: failure, store: store.name }, 'archive store unreachable at start; spooling until it answers');
    }
    const retention = new RetentionJob(store, opts.retentionDays, log, now);
    const archive = new SpooledArchive(store, spool, drainer, retention, log);
    if (spool.pendingRows > 0) {
      log.info(
        { rows: spool.pendingRows, bytes: spool.diskBytes },
        'archive: draining rows spooled before the restart',
      );
    }
    drainer.start();
    retention.start();
    return archive;
  }

  async write(records: ArchiveRecord[]): Promise<void> {
    if (this.closing) throw new Error('archive is closed');
    try {
      await this.spool.write(records);
    } catch (err) {
      if (err instanceof SpoolFullError && !this.refusing) {
        // Once per episode: every refused write is already an error answer to a client.
        this.refusing = true;
        this.log.error(
          { bytes: err.bytes, budget: err.budget, rows: this.spool.pendingRows },
          'archive spool over budget: refusing new data until the store drains it',
        );
      }
      throw err;
    }
    this.refusing = false;
    this.drainer.notify();
  }

  track(tech: string, from: number, to: number, limit?: number): Promise<TrackPoint[]> {
    return queryTrack(this.store, tech, from, to, limit);
  }

  orderEvents(order: string): Promise<OrderEventRecord[]> {
    return queryOrderEvents(this.store, order);
  }

  /**
   * Deletes every archived row of `tech`. Rows still spooled would land after a delete,
   * so the spool is drained first (the caller has already stopped new rows of `tech`
   * from arriving); if it does not drain within `timeoutMs` nothing is deleted and this
   * rejects, and the erase can be retried.
   */
  async eraseTechnician(tech: string, timeoutMs = 120_000): Promise<void> {
    if (this.closing) throw new Error('archive is closed');
    const deadline = Date.now() + timeoutMs;
    this.drainer.notify();
    while (this.spool.pendingRows > 0) {
      if (Date.now() > deadline) {
        throw new Error(`archive spool did not drain within ${timeoutMs} ms; nothing was erased, retry later`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await eraseTechnicianRows(this.store, tech, Math.max(1000, deadline - Date.now()));
  }

  health(): ComponentHealth {
    if (this.spool.full) {
      return {
        ok: false,
        detail: `archive spool over budget (${this.spool.diskBytes} of ${this.spool.maxBytes} bytes): new data is refused`,
        // Pings and order transitions are refused with `unavailable`; SOS and alerts go on.
        devices: 'degraded',
      };
    }
    const status = this.drainer.storeStatus;
    if (!status.ok) {
      return {
        ok: false,
        detail: `${this.store.name} unreachable (${status.error}); ${this.spool.pendingRows} rows spooled`,
        // Rows wait in the spool: devices are served as usual until it is over budget.
        devices: 'served',
      };
    }
    return { ok: true, detail: `${this.store.name}; ${this.spool.pendingRows} rows spooled` };
  }

  /** Runs the retention job now (it also runs at start and hourly); for operations and tests. */
  runRetention(): Promise<void> {
    return this.retention.runNow();
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    clearInterval(this.probe);
    await this.retention.stop();
    const deadline = Date.now() + timeoutMs;
    const stopped = this.drainer.stop(deadline);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    // Past the deadline an insert may still hang on a dead server: closing the store ends it
    // (the HTTP client aborts; chDB finishes its local work first), which ends the loop.
    await this.store.close();
    await stopped;
    await this.drainer.closeWorker();
    await this.spool.close();
    if (this.spool.pendingRows > 0) {
      this.log.info(
        { rows: this.spool.pendingRows },
        'archive closed with rows still spooled; they drain at next start',
      );
    }
  }
}

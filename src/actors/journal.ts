/**
 * The node's durable memory of live state (orders, alerts, SOS incidents, last positions)
 * on the telemetry module's AppendLog, in `${DATA_DIR}/journal`.
 *
 * Records are whole states, not deltas (`{k:'o', o: OrderRecord}`, `{k:'a', a: Alert}`,
 * `{k:'p', ...}` for a position), so replay is "last record per key wins": idempotent,
 * order-insensitive across keys, and compaction is simply "write the latest record of
 * every key, then drop the older segments".
 *
 * Durability (README):
 * - Order, alert and SOS changes go through `put`, which resolves after the group-commit
 *   fsync; callers ack only after that.
 * - Last positions go through `notePosition`, which is coalesced: at most one record per
 *   technician per `positionFlushMs` (default 5 s), written without anyone waiting. A
 *   crash loses at most that much position staleness, never an acked change.
 *
 * Compaction keeps a map of the latest record of every key, updated when a record is
 * handed to the log (not when it is committed by an actor), so a snapshot taken right
 * after `rotate` can never miss a record that lives only in a segment about to be trimmed.
 */
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Alert } from '../protocol.js';
import { AppendLog } from '../telemetry/append-log.js';
import type { ComponentHealth } from './api.js';
import type { LivePosition, OrderRecord } from './records.js';

/** One journal record: the whole state of an order, an alert, or a technician's last position. */
export type JournalRecord =
  | { k: 'o'; o: OrderRecord }
  | { k: 'a'; a: Alert }
  | { k: 'p'; id: string; pos: LivePosition; quietSince: number };

/**
 * On disk only: "key `key` no longer exists" (a technician erased, issue 7). Replay drops
 * the key when it meets one, so an erased record cannot come back after a restart even
 * if the compaction that removes its older records had not finished. Never in `latest`:
 * once the older segments are trimmed there is nothing left for it to hide.
 */
interface Tombstone {
  k: 'd';
  key: string;
}

/** Tuning of the journal; defaults suit production. */
export interface JournalOptions {
  /** Longest a technician's last position waits before it is journaled. */
  positionFlushMs?: number;
  /** Journal size on disk past which it is compacted. */
  compactBytes?: number;
  /** Segment size of the underlying AppendLog. */
  segmentBytes?: number;
}

const packr = new Packr({ useRecords: false });

function keyOf(rec: JournalRecord): string {
  switch (rec.k) {
    case 'o':
      return `o:${rec.o.id}`;
    case 'a':
      return `a:${rec.a.id}`;
    case 'p':
      return `p:${rec.id}`;
  }
}

/** The journal of one node; see the module comment. */
export class Journal {
  private readonly latest = new Map<string, JournalRecord>();
  private readonly dirtyPositions = new Set<string>();
  private cancelFlush: (() => void) | null = null;
  private compacting: Promise<void> | null = null;
  /** Size right after the last compaction: a big live state must not trigger compaction after every write. */
  private compactedBytes = 0;
  private failure: Error | null = null;
  private closed = false;
  /** Told about every record once it is durable here (multi-node: mirrored to Redis). */
  onDurable: ((rec: JournalRecord) => void) | null = null;

  private constructor(
    private readonly log: AppendLog,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly positionFlushMs: number,
    private readonly compactBytes: number,
  ) {}

  /** Opens the journal under `dataDir`, replays it and compacts it; returns it with the replayed state. */
  static async open(
    dataDir: string,
    clock: Clock,
    logger: Logger,
    opts: JournalOptions = {},
  ): Promise<{ journal: Journal; records: JournalRecord[] }> {
    const log = await AppendLog.open({
      dir: join(dataDir, 'journal'),
      ...(opts.segmentBytes !== undefined ? { segmentBytes: opts.segmentBytes } : {}),
    });
    const journal = new Journal(
      log,
      clock,
      logger,
      opts.positionFlushMs ?? 5000,
      opts.compactBytes ?? 64 * 1024 * 1024,
    );
    for await (const entry of log.read()) {
      const rec = packr.unpack(entry.record) as JournalRecord | Tombstone;
      if (rec.k === 'd') journal.latest.delete(rec.key);
      else journal.latest.set(keyOf(rec), rec);
    }
    await journal.compact();
    return { journal, records: [...journal.latest.values()] };
  }

  /** Persists a record; resolves once it is fsynced. */
  async put(rec: JournalRecord): Promise<void> {
    this.latest.set(keyOf(rec), rec);
    try {
      await this.log.append(packr.pack(rec));
    } catch (err) {
      this.failure = err as Error;
      throw err;
    }
    this.onDurable?.(rec);
    this.maybeCompact();
  }

  /**
   * Drops an order or alert from the journal's live state (retention): it is left out of
   * the next compaction. Until then replay still sees it, and the caller's retention rule
   * drops it again after a restart.
   */
  forget(kind: 'o' | 'a', id: string): void {
    this.latest.delete(`${kind}:${id}`);
  }

  /**
   * Erases records for good (a technician's data, issue 7): tombstones are fsynced before
   * this resolves, then a compaction rewrites the journal without the erased records and
   * deletes the segments that still held them. Keys are `o:<order>`, `a:<alert>`, `p:<tech>`.
   */
  async erase(keys: Array<{ kind: 'o' | 'a' | 'p'; id: string }>): Promise<void> {
    if (keys.length === 0) return;
    const recs: Uint8Array[] = [];
    // Forgetting and appending in one synchronous step: a compaction snapshot taken in
    // between cannot keep a record whose tombstone went into a segment it trims.
    for (const { kind, id } of keys) {
      const key = `${kind}:${id}`;
      this.latest.delete(key);
      this.dirtyPositions.delete(key);
      recs.push(packr.pack({ k: 'd', key } satisfies Tombstone));
    }
    try {
      await this.log.appendMany(recs);
    } catch (err) {
      this.failure = err as Error;
      throw err;
    }
    await this.compacting?.catch(() => undefined);
    await this.compact();
  }

  /** Remembers a technician's last position; journaled within `positionFlushMs`, nobody waits. */
  notePosition(id: string, pos: LivePosition, quietSince: number): void {
    const key = `p:${id}`;
    this.latest.set(key, { k: 'p', id, pos, quietSince });
    this.dirtyPositions.add(key);
    if (this.cancelFlush === null && !this.closed) {
      this.cancelFlush = this.clock.setTimer(this.clock.now() + this.positionFlushMs, () => {
        this.cancelFlush = null;
        this.flushPositions().catch((err: Error) => this.logger.error({ err }, 'journal: position flush failed'));
      });
    }
  }

  /** Writes every position noted since the last flush. */
  async flushPositions(): Promise<void> {
    if (this.dirtyPositions.size === 0) return;
    const recs: Uint8Array[] = [];
    const written: JournalRecord[] = [];
    for (const key of this.dirtyPositions) {
      const rec = this.latest.get(key);
      if (rec !== undefined) {
        recs.push(packr.pack(rec));
        written.push(rec);
      }
    }
    this.dirtyPositions.clear();
    if (recs.length === 0) return;
    await this.log.appendMany(recs);
    if (this.onDurable !== null) for (const rec of written) this.onDurable(rec);
    this.maybeCompact();
  }

  /** Rewrites the latest record of every key into a fresh segment and drops the older ones. */
  compact(): Promise<void> {
    if (this.compacting === null) {
      this.compacting = (async () => {
        try {
          const start = await this.log.rotate();
          // Captured synchronously right after rotate: everything older is in this snapshot.
          const recs = [...this.latest.values()].map((r) => packr.pack(r));
          if (recs.length > 0) await this.log.appendMany(recs);
          await this.log.trimBefore(start);
          this.compactedBytes = this.log.diskBytes;
        } finally {
          this.compacting = null;
        }
      })();
    }
    return this.compacting;
  }

  private maybeCompact(): void {
    const limit = Math.max(this.compactBytes, 2 * this.compactedBytes);
    if (this.compacting === null && !this.closed && this.log.diskBytes > limit) {
      this.compact().catch((err: Error) => this.logger.error({ err }, 'journal: compaction failed'));
    }
  }

  /** For `/readyz`: the journal accepts writes. */
  health(): ComponentHealth {
    if (this.closed) return { ok: false, detail: 'closed' };
    if (this.failure !== null) return { ok: false, detail: this.failure.message };
    return { ok: true, detail: `${this.log.diskBytes} bytes` };
  }

  /** Bytes of the journal on disk. */
  get diskBytes(): number {
    return this.log.diskBytes;
  }

  /** Flushes pending positions, waits for a running compaction and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.cancelFlush?.();
    this.cancelFlush = null;
    await this.flushPositions().catch((err: Error) => this.logger.error({ err }, 'journal: final flush failed'));
    await this.compacting?.catch(() => undefined);
    this.closed = true;
    await this.log.close();
  }

  /** Stops without flushing anything, as a crash would; for recovery tests. */
  async abandon(): Promise<void> {
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.closed = true;
    await this.log.close().catch(() => undefined);
  }
}

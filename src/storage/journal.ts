/**
 * The node's durable memory of live state (orders, alerts, SOS incidents, last positions)
 * on an AppendLog, in `${DATA_DIR}/journal`.
 *
 * Records are whole states, not deltas (`{k:'o', o: <order>}`, `{k:'a', a: <alert>}`,
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
 * State changes only after a durable append: `put` updates the map of the latest record of
 * every key once the fsync that covers the record succeeded, so a write the disk refused
 * (not acked) can never come back through a later compaction. Compaction holds new puts
 * back while it waits for the ones in flight, snapshots the map and hands the snapshot to
 * the log, then lets them go: every put lands either in the snapshot or after it.
 *
 * Disk faults (README, "When the disk is full"):
 * - A failed write makes `/readyz` report the journal down; the next successful write
 *   clears that. A probe every `probeMs` writes a tiny no-op record while nothing else
 *   does, so readiness comes back when space does even on an idle node.
 * - Safety writes (`lane` 'safety': alerts, SOS) may use the reserve (disk-reserve.ts):
 *   refused for lack of space, they give back part of it and retry. Bulk writes are refused
 *   with `JournalFullError` while the reserve is not whole, so they never eat into it.
 */
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { ComponentHealth } from '../outcome.js';
import { AppendLog, type LogPosition, type OpenFile } from './append-log.js';
import { DiskReserve, isOutOfSpace } from './disk-reserve.js';

/**
 * The record types a journal persists. The journal is generic over them because storage
 * sits below the behaviour layer: what an order or a position holds is the actors' business
 * (actors/records.ts), and the journal reads nothing of a record but its `id`. A neutral
 * module of record types would have dragged behaviour state (an order's exit watch, fired
 * deadlines) down to the base layer, where everything could start depending on it.
 */
export interface JournalKinds {
  order: { readonly id: string };
  alert: { readonly id: string };
  position: unknown;
}

/** One journal record: the whole state of an order, an alert, or a technician's last position. */
export type JournalRecord<K extends JournalKinds> =
  | { k: 'o'; o: K['order'] }
  | { k: 'a'; a: K['alert'] }
  | { k: 'p'; id: string; pos: K['position']; quietSince: number };

/**
 * On disk only: "key `key` no longer exists" (a technician's data erased on request). Replay drops
 * the key when it meets one, so an erased record cannot come back after a restart even
 * if the compaction that removes its older records had not finished. Never in `latest`:
 * once the older segments are trimmed there is nothing left for it to hide.
 */
interface Tombstone {
  k: 'd';
  key: string;
}

/** On disk only: written by the probe to learn whether the journal takes writes again; replay skips it. */
interface Probe {
  k: 'n';
}

/** Which writes may use the disk reserve: safety writes may, bulk writes may not. */
export type Lane = 'safety' | 'bulk';

/** A bulk write refused because the disk is full (the reserve is partly given back to safety writes). */
export class JournalFullError extends Error {
  readonly code = 'ENOSPC';
  constructor(held: number, target: number) {
    super(`disk full: ${held} of ${target} reserved bytes left for safety writes; other writes are refused`);
    this.name = 'JournalFullError';
  }
}

/** Tuning of the journal; defaults suit production. */
export interface JournalOptions {
  /** Longest a technician's last position waits before it is journaled. */
  positionFlushMs?: number;
  /** Journal size on disk past which it is compacted. */
  compactBytes?: number;
  /** Segment size of the underlying AppendLog. */
  segmentBytes?: number;
  /** Bytes held back for safety writes (`JOURNAL_RESERVE_BYTES`); 0: no reserve. */
  reserveBytes?: number;
  /** How often a journal that failed or gave back part of its reserve checks whether space is back. */
  probeMs?: number;
  /** How segment files are opened; tests inject failing files. */
  openFile?: OpenFile;
}

/** Name of the reserve file in DATA_DIR. */
export const RESERVE_FILE = 'journal-reserve';
/** Default of `reserveBytes`. */
export const DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024;
/** Least given back from the reserve per retry of a safety write: a few filesystem blocks. */
const RELEASE_STEP = 16 * 1024;

const packr = new Packr({ useRecords: false });
const PROBE = packr.pack({ k: 'n' } satisfies Probe);

function keyOf(rec: JournalRecord<JournalKinds>): string {
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
export class Journal<K extends JournalKinds> {
  private readonly latest = new Map<string, JournalRecord<K>>();
  private readonly dirtyPositions = new Set<string>();
  private cancelFlush: (() => void) | null = null;
  private compacting: Promise<void> | null = null;
  /** Size right after the last compaction: a big live state must not trigger compaction after every write. */
  private compactedBytes = 0;
  /** The last write failure, until a write succeeds again. */
  private failure: Error | null = null;
  private closed = false;
  /** Puts handed to the log and not yet settled: compaction waits for them. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Puts in flight per key, and the keys dropped (forget, erase) while one was: it must not bring them back. */
  private readonly inflightKeys = new Map<string, number>();
  private readonly droppedInFlight = new Set<string>();
  /** Set while compaction snapshots: puts wait for it. */
  private barrier: Promise<void> | null = null;
  private cancelProbe: (() => void) | null = null;
  /** Told about every record once it is durable here (multi-node: mirrored to Redis). */
  onDurable: ((rec: JournalRecord<K>) => void) | null = null;

  private constructor(
    private readonly log: AppendLog,
    private readonly reserve: DiskReserve,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly positionFlushMs: number,
    private readonly compactBytes: number,
    private readonly probeMs: number,
  ) {}

  /** Opens the journal under `dataDir`, replays it and compacts it; returns it with the replayed state. */
  static async open<K extends JournalKinds>(
    dataDir: string,
    clock: Clock,
    logger: Logger,
    opts: JournalOptions = {},
  ): Promise<{ journal: Journal<K>; records: JournalRecord<K>[] }> {
    const log = await AppendLog.open({
      dir: join(dataDir, 'journal'),
      ...(opts.segmentBytes !== undefined ? { segmentBytes: opts.segmentBytes } : {}),
      ...(opts.openFile !== undefined ? { openFile: opts.openFile } : {}),
    });
    const reserve = await DiskReserve.open(join(dataDir, RESERVE_FILE), opts.reserveBytes ?? DEFAULT_RESERVE_BYTES);
    const journal = new Journal<K>(
      log,
      reserve,
      clock,
      logger,
      opts.positionFlushMs ?? 5000,
      opts.compactBytes ?? 64 * 1024 * 1024,
      opts.probeMs ?? 2000,
    );
    for await (const entry of log.read()) {
      const rec = packr.unpack(entry.record) as JournalRecord<K> | Tombstone | Probe;
      if (rec.k === 'd') journal.latest.delete(rec.key);
      else if (rec.k !== 'n') journal.latest.set(keyOf(rec), rec);
    }
    if (!reserve.whole) {
      logger.error({ held: reserve.held, target: reserve.target }, 'journal: disk full at start, refusing bulk writes');
      journal.armProbe();
    } else {
      // Compaction needs room for a copy of the live state; on a full disk the node starts
      // without it (the old segments stay) rather than not at all.
      await journal.compact().catch((err: Error) => logger.error({ err }, 'journal: compaction at start failed'));
    }
    return { journal, records: [...journal.latest.values()] };
  }

  /**
   * Persists a record; resolves once it is fsynced, and only then is it part of the
   * journal's state. A bulk write is refused (`JournalFullError`) while the reserve is not
   * whole; a safety write refused for lack of space retries with space from the reserve.
   */
  async put(rec: JournalRecord<K>, lane: Lane = 'bulk'): Promise<void> {
    while (this.barrier !== null) await this.barrier;
    if (lane === 'bulk' && !this.reserve.whole) throw new JournalFullError(this.reserve.held, this.reserve.target);
    const key = keyOf(rec);
    const bytes = packr.pack(rec);
    this.inflightKeys.set(key, (this.inflightKeys.get(key) ?? 0) + 1);
    const done = this.appendWithReserve(bytes, lane).then(
      () => {
        if (!this.droppedInFlight.has(key)) this.latest.set(key, rec);
        this.settleKey(key);
        this.succeeded();
      },
      (err: Error) => {
        this.settleKey(key);
        this.failed(err);
        throw err;
      },
    );
    this.inflight.add(done);
    const forget = (): void => {
      this.inflight.delete(done);
    };
    done.then(forget, forget);
    await done;
    this.onDurable?.(rec);
    this.maybeCompact();
  }

  /** Whether bulk writes are accepted: false while the reserve is partly given to safety writes. */
  get acceptsBulk(): boolean {
    return this.reserve.whole;
  }

  private settleKey(key: string): void {
    const n = (this.inflightKeys.get(key) ?? 1) - 1;
    if (n > 0) {
      this.inflightKeys.set(key, n);
      return;
    }
    this.inflightKeys.delete(key);
    this.droppedInFlight.delete(key);
  }

  /** Removes `key` from the live state, also from a put of it still in flight. */
  private drop(key: string): void {
    this.latest.delete(key);
    if (this.inflightKeys.has(key)) this.droppedInFlight.add(key);
  }

  /**
   * Appends; a safety write refused for lack of space gives back part of the reserve and
   * tries again, until it lands or the reserve is used up.
   */
  private async appendWithReserve(bytes: Uint8Array, lane: Lane): Promise<void> {
    for (;;) {
      try {
        await this.log.append(bytes);
        return;
      } catch (err) {
        if (lane !== 'safety' || !isOutOfSpace(err)) throw err;
        const freed = await this.reserve.release(Math.max(RELEASE_STEP, 2 * bytes.length));
        if (freed === 0) throw err;
        this.logger.warn(
          { freed, held: this.reserve.held, target: this.reserve.target },
          'journal: disk full, reserve space given to a safety write',
        );
        this.armProbe();
      }
    }
  }

  /** A write landed: the journal takes writes again. */
  private succeeded(): void {
    if (this.failure === null) return;
    this.logger.info({ previous: this.failure.message }, 'journal: writes succeed again');
    this.failure = null;
  }

  /** A write failed: reported by `/readyz` until a write succeeds; the probe watches for recovery. */
  private failed(err: Error): void {
    if (err instanceof JournalFullError) return;
    if (this.failure === null) this.logger.error({ err }, 'journal: write failed');
    this.failure = err;
    this.armProbe();
  }

  /** Looks again in `probeMs` whether space is back, while the journal is failed or its reserve is not whole. */
  private armProbe(): void {
    if (this.cancelProbe !== null || this.closed) return;
    this.cancelProbe = this.clock.setTimer(this.clock.now() + this.probeMs, () => {
      this.cancelProbe = null;
      this.probe()
        .catch((err: Error) => this.logger.error({ err }, 'journal: probe failed'))
        .finally(() => {
          if (this.failure !== null || !this.reserve.whole) this.armProbe();
        });
    });
  }

  /** Takes the reserve back if it can, then (if still failed) tries a no-op write. */
  private async probe(): Promise<void> {
    if (this.closed) return;
    if (!this.reserve.whole && (await this.reserve.refill())) {
      this.logger.info({ bytes: this.reserve.target }, 'journal: disk reserve restored, bulk writes accepted again');
    }
    if (this.failure !== null && this.reserve.whole) {
      await this.log.append(PROBE).then(
        () => this.succeeded(),
        (err: Error) => this.failed(err),
      );
    }
  }

  /**
   * Drops an order or alert from the journal's live state (retention): it is left out of
   * the next compaction. Until then replay still sees it, and the caller's retention rule
   * drops it again after a restart.
   */
  forget(kind: 'o' | 'a', id: string): void {
    this.drop(`${kind}:${id}`);
  }

  /**
   * Erases records for good (a technician's data, on request): tombstones are fsynced before
   * this resolves, then a compaction rewrites the journal without the erased records and
   * deletes the segments that still held them. Keys are `o:<order>`, `a:<alert>`, `p:<tech>`.
   */
  async erase(keys: Array<{ kind: 'o' | 'a' | 'p'; id: string }>): Promise<void> {
    if (keys.length === 0) return;
    // Not a safety write: the space the reserve gave away stays for those.
    if (!this.reserve.whole) throw new JournalFullError(this.reserve.held, this.reserve.target);
    const recs: Uint8Array[] = [];
    // Forgetting and appending in one synchronous step: a compaction snapshot taken in
    // between cannot keep a record whose tombstone went into a segment it trims.
    for (const { kind, id } of keys) {
      const key = `${kind}:${id}`;
      this.drop(key);
      this.dirtyPositions.delete(key);
      recs.push(packr.pack({ k: 'd', key } satisfies Tombstone));
    }
    try {
      await this.log.appendMany(recs);
    } catch (err) {
      this.failed(err as Error);
      throw err;
    }
    this.succeeded();
    await this.compacting?.catch(() => undefined);
    await this.compact();
  }

  /** Remembers a technician's last position; journaled within `positionFlushMs`, nobody waits. */
  notePosition(id: string, pos: K['position'], quietSince: number): void {
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

  /**
   * Writes every position noted since the last flush. Positions are bulk: while the disk
   * is full they wait (still dirty) for the next flush instead of using the reserve.
   */
  async flushPositions(): Promise<void> {
    if (this.dirtyPositions.size === 0) return;
    if (!this.reserve.whole) {
      this.rearmFlush();
      return;
    }
    const recs: Uint8Array[] = [];
    const written: JournalRecord<K>[] = [];
    const keys = [...this.dirtyPositions];
    for (const key of keys) {
      const rec = this.latest.get(key);
      if (rec !== undefined) {
        recs.push(packr.pack(rec));
        written.push(rec);
      }
    }
    this.dirtyPositions.clear();
    if (recs.length === 0) return;
    try {
      await this.log.appendMany(recs);
    } catch (err) {
      // Still the newest known positions: written by a later flush, or by the next compaction.
      for (const key of keys) if (this.latest.has(key)) this.dirtyPositions.add(key);
      this.failed(err as Error);
      this.rearmFlush();
      return;
    }
    this.succeeded();
    if (this.onDurable !== null) for (const rec of written) this.onDurable(rec);
    this.maybeCompact();
  }

  private rearmFlush(): void {
    if (this.cancelFlush !== null || this.closed) return;
    this.cancelFlush = this.clock.setTimer(this.clock.now() + this.positionFlushMs, () => {
      this.cancelFlush = null;
      this.flushPositions().catch((err: Error) => this.logger.error({ err }, 'journal: position flush failed'));
    });
  }

  /**
   * Rewrites the latest record of every key into a fresh segment and drops the older ones.
   * New puts wait while the puts in flight settle and the snapshot is handed to the log:
   * a put in flight would otherwise be durable in the new segment, missing from the
   * snapshot, and then overwritten by the snapshot's older record of its key.
   */
  compact(): Promise<void> {
    this.compacting ??= this.runCompaction().finally(() => {
      this.compacting = null;
    });
    return this.compacting;
  }

  private async runCompaction(): Promise<void> {
    const { start, snapshot } = await this.snapshotBehindBarrier();
    if (snapshot !== null) {
      try {
        await snapshot;
      } catch (err) {
        this.failed(err as Error);
        throw err;
      }
      this.succeeded();
    }
    await this.log.trimBefore(start);
    this.compactedBytes = this.log.diskBytes;
  }

  /** Starts a new segment and hands it the live state, with new puts held back meanwhile. */
  private async snapshotBehindBarrier(): Promise<{ start: LogPosition; snapshot: Promise<unknown> | null }> {
    let open!: () => void;
    this.barrier = new Promise<void>((r) => {
      open = r;
    });
    try {
      await Promise.allSettled([...this.inflight]);
      const start = await this.log.rotate();
      // Every put handed over before the barrier is settled and applied: `latest` is
      // exactly what is durable, and everything before `start` is in it.
      const recs = [...this.latest.values()].map((r) => packr.pack(r));
      return { start, snapshot: recs.length > 0 ? this.log.appendMany(recs) : null };
    } finally {
      this.barrier = null;
      open();
    }
  }

  private maybeCompact(): void {
    const limit = Math.max(this.compactBytes, 2 * this.compactedBytes);
    if (this.compacting === null && !this.closed && this.reserve.whole && this.log.diskBytes > limit) {
      this.compact().catch((err: Error) => this.logger.error({ err }, 'journal: compaction failed'));
    }
  }

  /** For `/readyz`: the journal accepts writes, all of them (its reserve is whole). */
  health(): ComponentHealth {
    if (this.closed) return { ok: false, detail: 'closed', devices: 'refused' };
    if (this.failure !== null) {
      return { ok: false, detail: `write failed: ${this.failure.message}`, devices: 'refused' };
    }
    if (!this.reserve.whole) {
      // Bulk writes are refused; safety writes (SOS, alerts) use the reserve.
      const detail = new JournalFullError(this.reserve.held, this.reserve.target).message;
      return { ok: false, detail, devices: 'degraded' };
    }
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
    this.cancelProbe?.();
    this.cancelProbe = null;
    await this.log.close();
    await this.reserve.close();
  }

  /** Stops without flushing anything, as a crash would; for recovery tests. */
  async abandon(): Promise<void> {
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.closed = true;
    this.cancelProbe?.();
    this.cancelProbe = null;
    await this.log.close().catch(() => undefined);
    await this.reserve.close().catch(() => undefined);
  }
}

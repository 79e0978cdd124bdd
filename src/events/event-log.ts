/**
 * The node's durable log of events for the dispatch system, in `DATA_DIR/events`: an
 * AppendLog (group commit, CRC frames, torn tail cut at open) of one JSON record per event,
 * `{at, e}` (`at`: when it was stored, for retention; `e`: the event as sent).
 *
 * Each event gets its id (event-id.ts) when it is handed in, so ids follow the order in
 * which the behaviour produced the events; `append` resolves once the fsync covering it is
 * done, and only then are listeners told (webhook delivery, Server-Sent Events), in id
 * order. The actors append an event together with the journal record of the change that
 * caused it and answer the client after both (actors/persistence.ts).
 *
 * Reads (`GET /v1/events`, SSE catch-up, webhook recovery) come from the newest
 * `memoryEvents` events kept in memory, or from disk through a sparse index (the position
 * of every 128th event and of the first event of each segment).
 *
 * Retention: whole segments whose events are all older than `retentionMs` are deleted,
 * but never one holding an event a webhook has not settled yet (`trim`'s `keepFrom`).
 */
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { DispatchEvent } from '../protocol.js';
import { AppendLog, type LogPosition } from '../storage/append-log.js';
import { EventIdGenerator } from './event-id.js';

/** An event before it is stored: everything but the id. */
export type EventDraft = Omit<DispatchEvent, 'id'>;

/** Tuning of the event log; defaults suit production. */
export interface EventLogOptions {
  /** How many of the newest events are kept in memory for fast reads. */
  memoryEvents?: number;
  /** Segment size of the AppendLog: the unit of retention. */
  segmentBytes?: number;
}

interface Stored {
  at: number;
  e: DispatchEvent;
}

interface IndexEntry {
  id: string;
  at: number;
  pos: LogPosition;
}

const INDEX_EVERY = 128;

/** See the module comment. */
export class EventLog {
  private readonly ids = new EventIdGenerator();
  /** Newest events, oldest first. */
  private tail: DispatchEvent[] = [];
  private readonly index: IndexEntry[] = [];
  private sinceIndexed = 0;
  private lastSegment = -1;
  private newestStored: string | null = null;
  /** The newest id handed out, stored or with its fsync still under way. */
  private newestGiven: string | null = null;
  private readonly listeners = new Set<(ev: DispatchEvent) => void>();
  private closed = false;

  private constructor(
    private readonly log: AppendLog,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly memoryEvents: number,
  ) {}

  /** Opens (creating) the log in `dataDir/events` and reads its index and newest events. */
  static async open(dataDir: string, clock: Clock, logger: Logger, opts: EventLogOptions = {}): Promise<EventLog> {
    const log = await AppendLog.open({ dir: join(dataDir, 'events'), segmentBytes: opts.segmentBytes ?? 8 << 20 });
    const events = new EventLog(log, clock, logger, opts.memoryEvents ?? 10_000);
    let count = 0;
    for await (const entry of log.read()) {
      const stored = JSON.parse(entry.record.toString('utf8')) as Stored;
      events.noteStored(stored, entry.pos);
      count++;
    }
    events.ids.resume(events.newestStored);
    events.newestGiven = events.newestStored;
    logger.info({ events: count, newest: events.newestStored }, 'event log opened');
    return events;
  }

  /** Stores an event; resolves with it (id included) once it is durable. */
  append(draft: EventDraft): Promise<DispatchEvent> {
    const at = this.clock.now();
    const ev: DispatchEvent = { id: this.ids.next(at), ...draft };
    this.newestGiven = ev.id;
    const stored: Stored = { at, e: ev };
    return this.log.append(Buffer.from(JSON.stringify(stored))).then((pos) => {
      this.noteStored(stored, pos);
      for (const fn of this.listeners) {
        try {
          fn(ev);
        } catch (err) {
          this.logger.error({ err }, 'event listener failed');
        }
      }
      return ev;
    });
  }

  /** Calls `fn` with every event stored from now on, in id order; returns the unsubscribe. */
  subscribe(fn: (ev: DispatchEvent) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** The newest stored id, or null when the log is empty. */
  get newestId(): string | null {
    return this.newestStored;
  }

  /**
   * The newest id handed out, including an event whose fsync is still under way (null:
   * none): what "every event so far" means to a hand-over's relay flush.
   */
  get newestGivenId(): string | null {
    return this.newestGiven;
  }

  /** The newest stored id (EventReader). */
  newest(): Promise<string | null> {
    return Promise.resolve(this.newestStored);
  }

  /** The oldest id still kept, or null when the log is empty. */
  get oldestId(): string | null {
    return this.index[0]?.id ?? null;
  }

  /** Up to `limit` events with ids after `after` (null: from the oldest kept), in id order. */
  async read(after: string | null, limit: number): Promise<DispatchEvent[]> {
    const first = this.tail[0];
    if (first !== undefined && after !== null && after >= first.id) {
      const from = upperBound(this.tail, after);
      return this.tail.slice(from, from + limit);
    }
    const out: DispatchEvent[] = [];
    if (limit <= 0) return out;
    for await (const ev of this.scan(after)) {
      out.push(ev);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Every kept event with an id after `after` (null: all), in id order, read from disk. */
  async *scan(after: string | null): AsyncGenerator<DispatchEvent> {
    let from: LogPosition | undefined;
    if (after !== null) {
      // The last indexed event at or before `after`: reading starts there.
      let lo = 0;
      let hi = this.index.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((this.index[mid] as IndexEntry).id <= after) lo = mid + 1;
        else hi = mid;
      }
      from = lo > 0 ? (this.index[lo - 1] as IndexEntry).pos : undefined;
    }
    for await (const entry of this.log.read(from)) {
      const { e } = JSON.parse(entry.record.toString('utf8')) as Stored;
      if (after === null || e.id > after) yield e;
    }
  }

  /**
   * Deletes the segments whose events were all stored before `before` (ms) and all have
   * ids before `keepFrom` (the oldest event some webhook still needs; null: none).
   */
  async trim(before: number, keepFrom: string | null): Promise<void> {
    // The newest indexed event that may go: everything in segments before its segment goes.
    let cut: IndexEntry | undefined;
    for (const entry of this.index) {
      if (entry.at >= before || (keepFrom !== null && entry.id >= keepFrom)) break;
      cut = entry;
    }
    if (cut === undefined) return;
    const segment = cut.pos.segment;
    await this.log.trimBefore({ segment, offset: 0 });
    while (this.index.length > 0 && (this.index[0] as IndexEntry).pos.segment < segment) this.index.shift();
  }

  /** Bytes of the log on disk. */
  get diskBytes(): number {
    return this.log.diskBytes;
  }

  /** Waits for appends in flight and closes the file; later appends reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.log.close();
  }

  private noteStored(stored: Stored, pos: LogPosition): void {
    const ev = stored.e;
    this.newestStored = ev.id;
    this.tail.push(ev);
    if (this.tail.length > this.memoryEvents * 2) this.tail = this.tail.slice(-this.memoryEvents);
    if (pos.segment !== this.lastSegment || this.sinceIndexed >= INDEX_EVERY) {
      this.index.push({ id: ev.id, at: stored.at, pos });
      this.lastSegment = pos.segment;
      this.sinceIndexed = 0;
    }
    this.sinceIndexed++;
  }
}

/** Index of the first event with an id after `id` in `events` (sorted by id). */
function upperBound(events: readonly DispatchEvent[], id: string): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((events[mid] as DispatchEvent).id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

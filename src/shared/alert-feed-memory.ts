/**
 * In-process alert feed: the backend for one node without `REDIS_URL`, and the reference
 * behaviour the Redis backend is tested against.
 *
 * Like the Redis stream (trimmed to FEED_MAXLEN), it keeps only the newest `maxLen`
 * changes: every change of every alert stays in it otherwise, and a node that runs for
 * months through alert storms would hold them all in memory. Open alerts are kept apart
 * (the snapshot), so trimming loses no alert, only the replay of old changes.
 */
import type { Alert } from '../protocol.js';
import { type AlertFeed, FEED_MAXLEN, type FeedEntry, type FeedSnapshot } from './alert-feed.js';

/** Positions are zero-padded counters so they order as strings, like stream ids do as pairs. */
function pos(n: number): string {
  return n.toString().padStart(16, '0');
}

/** See the module comment. */
export class MemoryAlertFeed implements AlertFeed {
  /** The changes kept, oldest first, from `kept[head]` on; older slots are dropped now and then. */
  private kept: FeedEntry[] = [];
  private head = 0;
  private appended = 0;
  private trimmed = false;
  private readonly open = new Map<string, Alert>();
  private readonly tails = new Set<(entry: FeedEntry) => void>();

  constructor(private readonly maxLen = FEED_MAXLEN) {}

  async append(alert: Alert): Promise<string> {
    this.appended += 1;
    const entry = { position: pos(this.appended), alert };
    this.kept.push(entry);
    if (this.kept.length - this.head > this.maxLen) {
      this.head += 1;
      this.trimmed = true;
      // Drop the trimmed slots in one copy once they are as many as the kept ones.
      if (this.head >= this.maxLen) {
        this.kept = this.kept.slice(this.head);
        this.head = 0;
      }
    }
    if (alert.state === 'resolved') this.open.delete(alert.id);
    else this.open.set(alert.id, alert);
    for (const t of this.tails) t(entry);
    return entry.position;
  }

  async snapshot(): Promise<FeedSnapshot> {
    return { alerts: [...this.open.values()], position: pos(this.appended) };
  }

  tail(position: string, onEntry: (entry: FeedEntry) => void): () => Promise<void> {
    // Catch-up and subscription happen in one synchronous step, so nothing slips between.
    // From a position older than the oldest change kept, the replay starts at that change.
    for (let i = this.head; i < this.kept.length; i++) {
      const e = this.kept[i] as FeedEntry;
      if (e.position > position) onEntry(e);
    }
    this.tails.add(onEntry);
    return async () => {
      this.tails.delete(onEntry);
    };
  }

  async idsSince(_since: number): Promise<{ ids: Set<string>; complete: boolean }> {
    // Positions here are counters, not times: answer with every change kept, complete
    // while none was trimmed.
    const ids = new Set<string>();
    for (let i = this.head; i < this.kept.length; i++) ids.add((this.kept[i] as FeedEntry).alert.id);
    return { ids, complete: !this.trimmed };
  }

  /** Changes held in memory (the newest `maxLen` at most). */
  get length(): number {
    return this.kept.length - this.head;
  }

  /**
   * Loses every change after `position`, as a Redis replica promoted before it received
   * them would (tests); tails are not told, as they are not by a failover.
   */
  rollback(position: string): void {
    this.kept = this.kept.slice(this.head).filter((e) => e.position <= position);
    this.head = 0;
    // Rebuilt from the changes kept: a test trims nothing, so that is all of them.
    this.open.clear();
    for (const { alert } of this.kept) {
      if (alert.state === 'resolved') this.open.delete(alert.id);
      else this.open.set(alert.id, alert);
    }
  }

  async close(): Promise<void> {
    this.tails.clear();
  }
}

/**
 * In-process alert feed: the backend for one node without `REDIS_URL`, and the reference
 * behaviour the Redis backend is tested against.
 */
import type { Alert } from '../protocol.js';
import type { AlertFeed, FeedEntry, FeedSnapshot } from './alert-feed.js';

/** Positions are zero-padded counters so they order as strings, like stream ids do as pairs. */
function pos(n: number): string {
  return n.toString().padStart(16, '0');
}

/** See the module comment. */
export class MemoryAlertFeed implements AlertFeed {
  private readonly entries: FeedEntry[] = [];
  private readonly open = new Map<string, Alert>();
  private readonly tails = new Set<(entry: FeedEntry) => void>();

  async append(alert: Alert): Promise<string> {
    const entry = { position: pos(this.entries.length + 1), alert };
    this.entries.push(entry);
    if (alert.state === 'resolved') this.open.delete(alert.id);
    else this.open.set(alert.id, alert);
    for (const t of this.tails) t(entry);
    return entry.position;
  }

  async snapshot(): Promise<FeedSnapshot> {
    return { alerts: [...this.open.values()], position: pos(this.entries.length) };
  }

  tail(position: string, onEntry: (entry: FeedEntry) => void): () => Promise<void> {
    // Catch-up and subscription happen in one synchronous step, so nothing slips between.
    for (const e of this.entries) if (e.position > position) onEntry(e);
    this.tails.add(onEntry);
    return async () => {
      this.tails.delete(onEntry);
    };
  }

  async idsSince(_since: number): Promise<{ ids: Set<string>; complete: boolean }> {
    // Positions here are counters, not times: answer with the whole history, which is kept.
    return { ids: new Set(this.entries.map((e) => e.alert.id)), complete: true };
  }

  /**
   * Loses every change after `position`, as a Redis replica promoted before it received
   * them would (tests); tails are not told, as they are not by a failover.
   */
  rollback(position: string): void {
    this.entries.splice(this.entries.findIndex((e) => e.position > position) >>> 0);
    this.open.clear();
    for (const { alert } of this.entries) {
      if (alert.state === 'resolved') this.open.delete(alert.id);
      else this.open.set(alert.id, alert);
    }
  }

  async close(): Promise<void> {
    this.tails.clear();
  }
}

/**
 * What the pull API and the Server-Sent Events stream read events through. On one node
 * the event log itself (event-log.ts) is the reader; with several nodes, the Redis stream
 * every node relays its log into (event-stream-redis.ts).
 */
import type { DispatchEvent } from '../protocol.js';

/** Reads stored events in id order and follows new ones. */
export interface EventReader {
  /** Up to `limit` events with ids after `after` (null: from the oldest kept), in id order. */
  read(after: string | null, limit: number): Promise<DispatchEvent[]>;
  /** Calls `fn` with each event stored from now on, in id order; returns the unsubscribe. */
  subscribe(fn: (ev: DispatchEvent) => void): () => void;
  /** The newest stored id, or null when none is (where a stream without a cursor starts). */
  newest(): Promise<string | null>;
}

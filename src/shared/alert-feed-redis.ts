/**
 * Redis Streams alert feed: every change is appended with XADD (trimmed with `MAXLEN ~`) and
 * the open-alert hash is updated in the same Lua script, so a MULTI reading the hash and the
 * stream's last id gives a snapshot exactly consistent with a stream position. Each tail is
 * a dedicated connection looping on `XREAD BLOCK` from the last id it delivered, so a Redis
 * restart or a reconnect resumes where it stopped instead of losing changes (pub/sub would).
 *
 * Fenced: the append carries the fencing token this node holds for the alert's technician,
 * and the script refuses it (nothing written) when a newer token was issued since
 * (fencing.ts): a node that lost the technician cannot add a duplicate rung or alert. The
 * refused alert is reported with the refusal: the cluster hands it to the technician's
 * owner, which merges it only if it lacks it (an SOS acked here is not lost).
 */
import type { Redis } from 'ioredis';
import type { Alert } from '../protocol.js';
import type { AlertFeed, FeedEntry, FeedSnapshot } from './alert-feed.js';
import { FenceTokens, fenceKey, StaleWriteError } from './fencing.js';
import { type OnCorrupt, readRecord, storedAlertCheck } from './record-schemas.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';

/**
 * Appends to the stream and updates the open-alert hash atomically; returns the new id, or
 * nil when ARGV[5] (the writer's fencing token) is older than the technician's fence KEYS[3].
 */
const APPEND = `
local fence = tonumber(redis.call('HGET', KEYS[3], 'token') or '0')
if tonumber(ARGV[5]) < fence then return nil end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'a', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[2]) else redis.call('HDEL', KEYS[2], ARGV[4]) end
return id
`;

/** How a Redis alert feed is set up. */
export interface RedisAlertFeedOptions {
  readonly url: RedisTarget | string;
  /** This node's fencing tokens (none: every append carries 0). */
  readonly fences?: FenceTokens;
  /** Key prefix, so several deployments (or tests) can share one Redis. */
  readonly prefix: string;
  /** Approximate number of changes kept in the stream for replay. */
  readonly maxLen: number;
  /** How long one XREAD blocks before looping (also bounds how long a stop waits). */
  readonly blockMs?: number;
  /** Told about backend errors a tail recovered from (logging hook). */
  readonly onError?: (err: Error) => void;
  /** Told about a stored alert that fails the alert schema; it is skipped (logging hook). */
  readonly onCorrupt?: OnCorrupt;
}

/** See the module comment. */
export class RedisAlertFeed implements AlertFeed {
  private readonly redis: Redis;
  private readonly streamKey: string;
  private readonly openKey: string;
  private readonly readers = new Set<Redis>();
  private readonly fences: FenceTokens;

  constructor(private readonly opts: RedisAlertFeedOptions) {
    this.fences = opts.fences ?? new FenceTokens();
    // Commands issued in the same tick go out as one pipeline (no per-call round trip wait).
    this.redis = redisClient(opts.url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
    this.redis.on('error', (err: Error) => opts.onError?.(err));
    this.streamKey = `${opts.prefix}alerts:stream`;
    this.openKey = `${opts.prefix}alerts:open`;
  }

  async append(alert: Alert): Promise<string> {
    const open = alert.state === 'resolved' ? '0' : '1';
    // The token is taken now, when the write is issued: a write queued while Redis is
    // unreachable goes out later with the token its node held when it made the change.
    const token = this.fences.get(alert.tech);
    const id = await this.redis.eval(
      APPEND,
      3,
      this.streamKey,
      this.openKey,
      fenceKey(this.opts.prefix, alert.tech),
      String(this.opts.maxLen),
      JSON.stringify(alert),
      open,
      alert.id,
      String(token),
    );
    if (id === null) {
      // Reported with the alert, so the cluster gets it to the technician's owner.
      this.fences.refused({ what: 'alert', tech: alert.tech, token, alert });
      throw new StaleWriteError('alert', alert.tech);
    }
    return String(id);
  }

  async snapshot(): Promise<FeedSnapshot> {
    const replies = await this.redis
      .multi()
      .hgetall(this.openKey)
      .xrevrange(this.streamKey, '+', '-', 'COUNT', 1)
      .exec();
    if (replies === null) throw new Error('alert feed snapshot: transaction aborted');
    const [hashReply, lastReply] = replies;
    if (hashReply?.[0]) throw hashReply[0];
    if (lastReply?.[0]) throw lastReply[0];
    const hash = (hashReply?.[1] ?? {}) as Record<string, string>;
    const last = (lastReply?.[1] ?? []) as [string, string[]][];
    const alerts = Object.values(hash)
      .map((raw) => readRecord(storedAlertCheck, raw, 'alert feed open alerts', this.opts.onCorrupt))
      .filter((a): a is Alert => a !== null);
    return { alerts, position: last[0]?.[0] ?? '0-0' };
  }

  tail(position: string, onEntry: (entry: FeedEntry) => void): () => Promise<void> {
    const reader = this.redis.duplicate({ enableAutoPipelining: false });
    reader.on('error', (err: Error) => this.opts.onError?.(err));
    this.readers.add(reader);
    let stopped = false;
    let last = position;
    const blockMs = this.opts.blockMs ?? 2000;
    const loop = (async () => {
      while (!stopped) {
        try {
          const res = (await reader.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', this.streamKey, last)) as
            | [string, [string, string[]][]][]
            | null;
          for (const [, entries] of res ?? []) {
            for (const [id, fields] of entries) {
              last = id;
              // A malformed entry is reported and skipped rather than crashing the tail.
              const raw = fields[fields.indexOf('a') + 1];
              const alert = readRecord(storedAlertCheck, raw ?? '', 'alert feed stream', this.opts.onCorrupt);
              if (alert !== null) onEntry({ position: id, alert });
            }
          }
        } catch (err) {
          if (stopped) break;
          this.opts.onError?.(err as Error);
          // ioredis reconnects by itself; pause so an outage is not a busy loop.
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    return async () => {
      stopped = true;
      reader.disconnect();
      this.readers.delete(reader);
      await loop;
    };
  }

  async idsSince(since: number): Promise<{ ids: Set<string>; complete: boolean }> {
    const ids = new Set<string>();
    const first = (await this.redis.xrange(this.streamKey, '-', '+', 'COUNT', 1)) as [string, string[]][];
    const oldest = first[0] === undefined ? null : Number(first[0][0].split('-')[0]);
    let from = `${Math.max(0, Math.floor(since))}-0`;
    for (;;) {
      const page = (await this.redis.xrange(this.streamKey, from, '+', 'COUNT', 1000)) as [string, string[]][];
      for (const [, fields] of page) {
        const raw = fields[fields.indexOf('a') + 1];
        const alert = readRecord(storedAlertCheck, raw ?? '', 'alert feed stream', this.opts.onCorrupt);
        if (alert !== null) ids.add(alert.id);
      }
      const last = page.at(-1);
      if (page.length < 1000 || last === undefined) break;
      from = `(${last[0]}`;
    }
    // Trimmed history: entries older than the oldest kept one are gone.
    return { ids, complete: oldest === null || oldest <= since };
  }

  async close(): Promise<void> {
    for (const r of this.readers) r.disconnect();
    this.readers.clear();
    await closeRedis(this.redis);
  }
}

/**
 * The one stream of events of a multi-node deployment: a Redis Stream (`<prefix>events`)
 * into which every node relays its own event log, in order (event-relay.ts). The pull API,
 * the Server-Sent Events stream and the node delivering webhooks all read this stream, so
 * each of them sees every node's events, in one order, on every node.
 *
 * Ids: the relay script gives each entry an explicit stream id `<ms>-<seq>` with `seq`
 * below 10,000 (the node's clock, never before the newest id: when it is, the id takes the
 * newest id's millisecond and the next sequence), so the public id is that stream id in
 * the fixed-width form of event-id.ts (`1767258000000-0003`). Public ids are therefore
 * unique, stable (the stream id never changes) and sort as strings in stream order, which
 * is what `?after=` and `Last-Event-ID` need, exactly as on one node.
 *
 * Idempotent relay: the same script records, per relaying node, the newest local id it
 * relayed (`<prefix>events:relayed`), and skips events at or before it, so a relay repeated
 * after a crash (the node did not learn its batch landed) adds nothing twice.
 *
 * Following: one dedicated connection loops on `XREAD BLOCK` from the newest id it saw and
 * tells subscribers, in stream order (they then read with `read`, from their own cursor).
 */
import type { Redis } from 'ioredis';
import { type DispatchEvent, EventTypes } from '../protocol.js';
import { closeRedis, type RedisTarget, redisClient } from '../shared/redis-target.js';
import { formatEventId } from './event-id.js';
import type { EventReader } from './event-reader.js';

/**
 * KEYS: stream, relayed hash, last-id key. ARGV: node, now (ms), then per event: local id,
 * body. Appends the events after the node's relayed mark, in order; returns how many.
 */
const RELAY = `
local done = redis.call('HGET', KEYS[2], ARGV[1])
local last = redis.call('GET', KEYS[3])
local ms, seq = -1, -1
if last then
  local dash = string.find(last, '-', 1, true)
  ms = tonumber(string.sub(last, 1, dash - 1))
  seq = tonumber(string.sub(last, dash + 1))
end
local now = tonumber(ARGV[2])
local added = 0
local mark = done
for i = 3, #ARGV, 2 do
  local lid = ARGV[i]
  if not done or lid > done then
    if now > ms then
      ms = now
      seq = 0
    elseif seq + 1 >= 10000 then
      ms = ms + 1
      seq = 0
    else
      seq = seq + 1
    end
    local id = string.format('%d-%d', ms, seq)
    redis.call('XADD', KEYS[1], id, 'e', ARGV[i + 1], 'n', ARGV[1], 'l', lid)
    added = added + 1
    mark = lid
  end
end
if added > 0 then
  redis.call('SET', KEYS[3], string.format('%d-%d', ms, seq))
  redis.call('HSET', KEYS[2], ARGV[1], mark)
end
return added
`;

/** Stream id (`ms-seq`) of public id `id` (`<13 digits>-<4 digits>`). */
export function streamIdOf(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${Number(ms)}-${Number(seq)}`;
}

/** Public id of stream id `sid`. */
export function publicIdOf(sid: string): string {
  const [ms, seq] = sid.split('-') as [string, string];
  return formatEventId(Number(ms), Number(seq));
}

type Entry = [string, string[]];

const TYPES = new Set<string>(EventTypes);

/** The event of a stream entry, or null when the entry is malformed (reported). */
function eventOf(entry: Entry, onCorrupt: (problem: string) => void): DispatchEvent | null {
  const [sid, fields] = entry;
  const raw = fields[fields.indexOf('e') + 1];
  let body: unknown;
  try {
    body = JSON.parse(raw ?? '');
  } catch {
    onCorrupt(`entry ${sid}: not JSON`);
    return null;
  }
  const b = body as Partial<DispatchEvent> | null;
  if (
    typeof b !== 'object' ||
    b === null ||
    typeof b.type !== 'string' ||
    !TYPES.has(b.type) ||
    typeof b.ts !== 'number' ||
    typeof b.data !== 'object' ||
    (b.order !== undefined && typeof b.order !== 'string') ||
    (b.tech !== undefined && typeof b.tech !== 'string')
  ) {
    onCorrupt(`entry ${sid}: not an event`);
    return null;
  }
  return { id: publicIdOf(sid), ...(b as Omit<DispatchEvent, 'id'>) };
}

/** How the stream is set up. */
export interface RedisEventStreamOptions {
  readonly url: RedisTarget | string;
  /** Key prefix (`fieldtrack:`), so deployments (or tests) can share one Redis. */
  readonly prefix: string;
  /** Told about errors the follower recovered from. */
  readonly onError?: (err: Error) => void;
  /** Told about an entry that is not an event; it is skipped. */
  readonly onCorrupt?: (problem: string) => void;
  /** How long one XREAD blocks before looping. */
  readonly blockMs?: number;
}

/** See the module comment. */
export class RedisEventStream implements EventReader {
  private readonly redis: Redis;
  private reader: Redis | null = null;
  private readonly key: string;
  private readonly relayedKey: string;
  private readonly lastKey: string;
  private readonly listeners = new Set<(ev: DispatchEvent) => void>();
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: RedisEventStreamOptions) {
    this.redis = redisClient(opts.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
    this.redis.on('error', (err: Error) => opts.onError?.(err));
    this.key = `${opts.prefix}events`;
    this.relayedKey = `${opts.prefix}events:relayed`;
    this.lastKey = `${opts.prefix}events:last`;
  }

  private corrupt = (problem: string): void => this.opts.onCorrupt?.(problem);

  /** Starts following the stream (from its newest entry, once Redis answers). */
  start(): void {
    const reader = this.redis.duplicate({ enableAutoPipelining: false, maxRetriesPerRequest: null });
    reader.on('error', (err: Error) => this.opts.onError?.(err));
    this.reader = reader;
    const blockMs = this.opts.blockMs ?? 2000;
    let from: string | null = null;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          if (from === null) {
            const last = (await reader.xrevrange(this.key, '+', '-', 'COUNT', 1)) as Entry[];
            from = last[0]?.[0] ?? '0-0';
          }
          const res = (await reader.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', this.key, from)) as
            | [string, Entry[]][]
            | null;
          for (const [, entries] of res ?? []) {
            for (const entry of entries) {
              from = entry[0];
              const ev = eventOf(entry, this.corrupt);
              if (ev === null) continue;
              for (const fn of this.listeners) fn(ev);
            }
          }
        } catch (err) {
          if (this.stopped) break;
          this.opts.onError?.(err as Error);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
  }

  /**
   * Relays events of node `node` (its local ids and bodies, in local order) with `now` as
   * the clock; those at or before the node's relayed mark are skipped. Resolves with how
   * many were added.
   */
  async relay(node: string, now: number, events: readonly DispatchEvent[]): Promise<number> {
    const args: string[] = [node, String(Math.floor(now))];
    for (const ev of events) {
      const { id, ...body } = ev;
      args.push(id, JSON.stringify(body));
    }
    return Number(await this.redis.eval(RELAY, 3, this.key, this.relayedKey, this.lastKey, ...args));
  }

  /** The newest local id relayed by node `node`, or null. */
  async relayedUpTo(node: string): Promise<string | null> {
    return this.redis.hget(this.relayedKey, node);
  }

  /** The newest id ever given (also after trimming), read from Redis; null when none. */
  async lastId(): Promise<string | null> {
    const last = await this.redis.get(this.lastKey);
    return last === null ? null : publicIdOf(last);
  }

  /** The newest id given (EventReader): where a stream without a cursor starts. */
  newest(): Promise<string | null> {
    return this.lastId();
  }

  async read(after: string | null, limit: number): Promise<DispatchEvent[]> {
    if (limit <= 0) return [];
    const from = after === null ? '-' : `(${streamIdOf(after)}`;
    const out: DispatchEvent[] = [];
    let start = from;
    // Malformed entries are skipped, so a page may need another read to fill.
    while (out.length < limit) {
      const want = limit - out.length;
      const page = (await this.redis.xrange(this.key, start, '+', 'COUNT', want)) as Entry[];
      for (const entry of page) {
        const ev = eventOf(entry, this.corrupt);
        if (ev !== null) out.push(ev);
      }
      const last = page.at(-1);
      if (page.length < want || last === undefined) break;
      start = `(${last[0]}`;
    }
    return out;
  }

  /** Every kept event after `after` (null: all), in id order, page by page. */
  async *scan(after: string | null): AsyncGenerator<DispatchEvent> {
    let cursor = after;
    for (;;) {
      const page = await this.read(cursor, 1000);
      for (const ev of page) yield ev;
      const last = page.at(-1);
      if (page.length < 1000 || last === undefined) return;
      cursor = last.id;
    }
  }

  subscribe(fn: (ev: DispatchEvent) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /**
   * Drops entries stored before `before` (ms), never `keepFrom` (the oldest event a webhook
   * still needs; null: none) nor anything after it.
   */
  async trim(before: number, keepFrom: string | null): Promise<void> {
    let min: [number, number] = [Math.max(0, Math.floor(before)), 0];
    if (keepFrom !== null) {
      const [km, ks] = keepFrom.split('-').map(Number) as [number, number];
      if (km < min[0] || (km === min[0] && ks < min[1])) min = [km, ks];
    }
    await this.redis.xtrim(this.key, 'MINID', '~', `${min[0]}-${min[1]}`);
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.listeners.clear();
    this.reader?.disconnect();
    // A read queued while Redis is down may never settle: do not wait on it for long.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    await closeRedis(this.redis);
  }
}

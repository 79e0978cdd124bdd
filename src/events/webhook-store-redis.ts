/**
 * Webhooks in Redis (multi-node mode): the subscriptions every node serves, and the marks
 * of the one node delivering them (shared-webhooks.ts), under `<prefix>`:
 *
 * - `webhooks` (hash id → the subscription, secret included: the delivering node signs
 *   with it; keep Redis private as you keep DATA_DIR), `webhooks:version` (grows on every
 *   change a dispatch system makes: create, delete, redeliver), `webhooks:delivered` (hash
 *   id → events delivered, all time) and `webhooks:stats` (hash id → `{pending, lastError}`
 *   as the delivering node last published them).
 * - Per webhook `webhook:<id>:low` (every event before it is settled), `webhook:<id>:ok`
 *   (sorted set, all scores 0, of the ids settled at or after `low`), `webhook:<id>:dead`
 *   (hash id → dead event) and `webhook:<id>:re` (hash id → the dead event put back into delivery).
 *
 * The delivering node's writes are fenced: each carries the token of its delivery lease
 * and the script refuses it when a newer token was issued (another node delivers now), so
 * a node frozen past its lease cannot mark anything once it wakes. They also do nothing for
 * a webhook deleted meanwhile.
 */
import type { Redis } from 'ioredis';
import { closeRedis, type RedisTarget, redisClient } from '../shared/redis-target.js';
import type { DeadEvent } from './delivery.js';
import type { StoredWebhook, WebhookState } from './webhook-store.js';

/** The lease a node holds while it delivers every webhook. */
export const DELIVERY_LEASE = 'events:deliver';

/** KEYS: fence, hooks. ARGV: token, hook id. Shared head of the fenced scripts. */
const FENCED = `
if tonumber(redis.call('HGET', KEYS[1], 'token') or '0') ~= tonumber(ARGV[1]) then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
`;

/** KEYS: fence, hooks, ok, re, delivered. ARGV: token, hook, event id. */
const DELIVERED = `${FENCED}
redis.call('ZADD', KEYS[3], 0, ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
redis.call('HINCRBY', KEYS[5], ARGV[2], 1)
return 1
`;

/** KEYS: fence, hooks, ok, re, dead. ARGV: token, hook, event id, dead event. */
const DEAD = `${FENCED}
redis.call('ZADD', KEYS[3], 0, ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
return 1
`;

/** KEYS: fence, hooks, ok, low. ARGV: token, hook, below. */
const COMPACT = `${FENCED}
redis.call('SET', KEYS[4], ARGV[3])
redis.call('ZREMRANGEBYLEX', KEYS[3], '-', '(' .. ARGV[3])
return 1
`;

/** KEYS: hooks, dead, re, ok, version. ARGV: hook, then ids (none: every dead event). The ids moved. */
const REQUEUE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return nil end
local ids = {}
if #ARGV == 1 then ids = redis.call('HKEYS', KEYS[2]) else for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end end
local moved = {}
for _, id in ipairs(ids) do
  local d = redis.call('HGET', KEYS[2], id)
  if d then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('HSET', KEYS[3], id, d)
    moved[#moved + 1] = id
  end
end
if #moved > 0 then redis.call('INCR', KEYS[5]) end
return moved
`;

/** KEYS: hooks, version, delivered, stats, then the webhook's keys. ARGV: hook. 1 if it existed. */
const REMOVE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('INCR', KEYS[2])
return 1
`;

/** What the delivering node last published about a webhook. */
export interface PublishedStats {
  pending: number;
  lastError: string | null;
}

/** The outcome of a fenced write: done, the webhook is gone, or this node's lease is stale. */
export type FencedWrite = 'ok' | 'gone' | 'stale';

const fenced = (n: unknown): FencedWrite => (n === 1 ? 'ok' : n === 0 ? 'gone' : 'stale');

/** See the module comment. */
export class RedisWebhookStore {
  private readonly redis: Redis;

  constructor(
    target: RedisTarget | string,
    private readonly prefix: string,
    onError?: (err: Error) => void,
    private readonly onCorrupt: (problem: string) => void = () => {},
  ) {
    this.redis = redisClient(target, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
    this.redis.on('error', (err: Error) => onError?.(err));
  }

  private get hooksKey(): string {
    return `${this.prefix}webhooks`;
  }
  private get versionKey(): string {
    return `${this.prefix}webhooks:version`;
  }
  private get deliveredKey(): string {
    return `${this.prefix}webhooks:delivered`;
  }
  private get statsKey(): string {
    return `${this.prefix}webhooks:stats`;
  }
  private get fenceKey(): string {
    return `${this.prefix}fence:${DELIVERY_LEASE}`;
  }
  private key(id: string, what: 'low' | 'ok' | 'dead' | 're'): string {
    return `${this.prefix}webhook:${id}:${what}`;
  }

  /** How many webhooks there are. */
  count(): Promise<number> {
    return this.redis.hlen(this.hooksKey);
  }

  /** Stores a new subscription and tells the delivering node. */
  async create(hook: StoredWebhook): Promise<void> {
    await this.redis.multi().hset(this.hooksKey, hook.id, JSON.stringify(hook)).incr(this.versionKey).exec();
  }

  /** Every subscription (malformed ones reported and skipped). */
  async hooks(): Promise<StoredWebhook[]> {
    const all = await this.redis.hgetall(this.hooksKey);
    const out: StoredWebhook[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const hook = this.parseHook(id, raw);
      if (hook !== null) out.push(hook);
    }
    return out;
  }

  /** One subscription, or null. */
  async hook(id: string): Promise<StoredWebhook | null> {
    const raw = await this.redis.hget(this.hooksKey, id);
    return raw === null ? null : this.parseHook(id, raw);
  }

  private parseHook(id: string, raw: string): StoredWebhook | null {
    try {
      const h = JSON.parse(raw) as StoredWebhook;
      if (
        h.id === id &&
        typeof h.url === 'string' &&
        Array.isArray(h.events) &&
        typeof h.secret === 'string' &&
        typeof h.createdAt === 'number' &&
        (h.after === null || typeof h.after === 'string')
      ) {
        return h;
      }
    } catch {
      // reported below
    }
    this.onCorrupt(`webhook ${id}: not a subscription`);
    return null;
  }

  /** Deletes a subscription with its marks; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const keys = [this.key(id, 'low'), this.key(id, 'ok'), this.key(id, 'dead'), this.key(id, 're')];
    const n = await this.redis.eval(
      REMOVE,
      4 + keys.length,
      this.hooksKey,
      this.versionKey,
      this.deliveredKey,
      this.statsKey,
      ...keys,
      id,
    );
    return n === 1;
  }

  /** The dead events of webhook `id`, oldest first. */
  async deadOf(id: string): Promise<DeadEvent[]> {
    const all = await this.redis.hgetall(this.key(id, 'dead'));
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as DeadEvent)
      .sort((a, b) => (a.event.id < b.event.id ? -1 : 1));
  }

  /** How many dead events each of `ids` has. */
  async deadCounts(ids: readonly string[]): Promise<number[]> {
    if (ids.length === 0) return [];
    return Promise.all(ids.map((id) => this.redis.hlen(this.key(id, 'dead'))));
  }

  /** Moves dead events (all, or `ids`) of webhook `id` back into delivery; the ids moved, or null without such a webhook. */
  async requeue(id: string, ids?: readonly string[]): Promise<string[] | null> {
    const moved = await this.redis.eval(
      REQUEUE,
      5,
      this.hooksKey,
      this.key(id, 'dead'),
      this.key(id, 're'),
      this.key(id, 'ok'),
      this.versionKey,
      id,
      ...(ids ?? []),
    );
    return moved === null ? null : (moved as string[]).sort();
  }

  /** Changes made by dispatch systems so far (the delivering node syncs when it grows). */
  async version(): Promise<string> {
    return (await this.redis.get(this.versionKey)) ?? '0';
  }

  /** Events delivered, all time, by webhook. */
  async deliveredCounts(): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.deliveredKey);
    return new Map(Object.entries(all).map(([id, n]) => [id, Number(n)]));
  }

  /** What the delivering node last published, by webhook. */
  async stats(): Promise<Map<string, PublishedStats>> {
    const all = await this.redis.hgetall(this.statsKey);
    const out = new Map<string, PublishedStats>();
    for (const [id, raw] of Object.entries(all)) {
      try {
        out.set(id, JSON.parse(raw) as PublishedStats);
      } catch {
        this.onCorrupt(`webhook ${id}: stats not JSON`);
      }
    }
    return out;
  }

  /** The delivering node publishes its pending counts and last errors. */
  async publishStats(stats: ReadonlyMap<string, PublishedStats>): Promise<void> {
    if (stats.size === 0) return;
    const flat: string[] = [];
    for (const [id, s] of stats) flat.push(id, JSON.stringify(s));
    await this.redis.hset(this.statsKey, ...flat);
  }

  /** The delivery state of every webhook, for the node that starts delivering. */
  async states(): Promise<Map<string, WebhookState>> {
    const out = new Map<string, WebhookState>();
    for (const hook of await this.hooks()) {
      const [low, ok, dead, re] = await Promise.all([
        this.redis.get(this.key(hook.id, 'low')),
        this.redis.zrange(this.key(hook.id, 'ok'), '0', '-1'),
        this.redis.hgetall(this.key(hook.id, 'dead')),
        this.redis.hgetall(this.key(hook.id, 're')),
      ]);
      out.set(hook.id, {
        hook,
        below: low,
        settled: new Set(ok),
        dead: new Map(Object.entries(dead).map(([id, raw]) => [id, JSON.parse(raw) as DeadEvent])),
        requeued: new Map(Object.entries(re).map(([id, raw]) => [id, (JSON.parse(raw) as DeadEvent).event])),
      });
    }
    return out;
  }

  /** Event `e` delivered to webhook `w`, by the holder of delivery token `token`. */
  async delivered(token: number, w: string, e: string): Promise<FencedWrite> {
    const n = await this.redis.eval(
      DELIVERED,
      5,
      this.fenceKey,
      this.hooksKey,
      this.key(w, 'ok'),
      this.key(w, 're'),
      this.deliveredKey,
      String(token),
      w,
      e,
    );
    return fenced(n);
  }

  /** An event of webhook `w` given up on. */
  async dead(token: number, w: string, d: DeadEvent): Promise<FencedWrite> {
    const n = await this.redis.eval(
      DEAD,
      5,
      this.fenceKey,
      this.hooksKey,
      this.key(w, 'ok'),
      this.key(w, 're'),
      this.key(w, 'dead'),
      String(token),
      w,
      d.event.id,
      JSON.stringify(d),
    );
    return fenced(n);
  }

  /** Every event of webhook `w` before `below` is settled: its marks below are dropped. */
  async compact(token: number, w: string, below: string): Promise<FencedWrite> {
    const n = await this.redis.eval(
      COMPACT,
      4,
      this.fenceKey,
      this.hooksKey,
      this.key(w, 'ok'),
      this.key(w, 'low'),
      String(token),
      w,
      below,
    );
    return fenced(n);
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}

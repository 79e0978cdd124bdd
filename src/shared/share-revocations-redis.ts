/**
 * Revocations of customer tracking links shared by every node (`REDIS_URL`): the hash
 * `<prefix>share:revoked` (order -> revocation time in ms) and the pub/sub channel
 * `<prefix>share:revoked`. A revocation is one Lua script that keeps the later time, drops
 * the entries whose links have all expired anyway (`maxLinkMs` after their revocation) and
 * publishes `<at>:<order>`; `revoke` resolves once Redis answered it, so it is as durable
 * as Redis's append-only file is configured to make it. Every node:
 * - reads the hash when it checks a presented link (`revokedAt`: one HGET), so a link
 *   revoked on any node is `410` on every node once the `DELETE` was answered;
 * - hears the channel and tells `onRevoked` (the streams of that order end), and after
 *   every (re)connection of its subscriber reads the whole hash, since pub/sub drops what
 *   is published while a node is disconnected; what it knew that Redis lost (a failover to
 *   a replica that lacked the last writes) it writes back;
 * - keeps what it learned (`known`): while Redis is unreachable `revokedAt` answers from
 *   that, and a node that has not read the hash once since it started answers
 *   `RevocationsUnavailable`; `revoke` never claims success without Redis.
 */
import type { Redis } from 'ioredis';
import { isValidId } from '../protocol/checks.js';
import type { OnCorrupt } from './record-schemas.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';
import { RevocationsUnavailable, type ShareRevocations } from './share-revocations.js';

/**
 * KEYS: the hash. ARGV: order, at, cutoff (entries older are dropped), channel.
 * Returns the order's revocation time as stored (the later of ARGV[2] and the one there).
 */
const REVOKE = `
local stored = ARGV[2]
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if old ~= nil and old >= tonumber(ARGV[2]) then stored = redis.call('HGET', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], stored)
local cutoff = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local t = tonumber(all[i + 1])
  if t ~= nil and t < cutoff then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('PUBLISH', ARGV[4], stored .. ':' .. ARGV[1])
return stored
`;

/** A revocation time as stored: a positive integer of milliseconds. */
const TIME = /^[0-9]{1,16}$/;

/** Longest a read or a revocation waits for Redis before falling back (read) or failing (revoke). */
const COMMAND_TIMEOUT_MS = 2000;
/** Pause before reading the hash again after a failed attempt (the subscriber is up, commands are not yet). */
const RESYNC_RETRY_MS = 500;

export interface RedisShareRevocationsOptions {
  readonly target: RedisTarget | string;
  readonly prefix: string;
  /** How long a link lives at most (SHARE_LINK_HOURS): a revocation older than that is forgotten. */
  readonly maxLinkMs: number;
  readonly now: () => number;
  /** Told once per outage when Redis becomes unreachable. */
  readonly onError?: (err: Error) => void;
  /** Told about an entry of the hash or a message that is not a revocation; it is ignored. */
  readonly onCorrupt?: OnCorrupt;
  /** Told after each full read of the hash (at start and after every reconnection), with what it found and wrote back. */
  readonly onSynced?: (found: number, restored: number) => void;
  /**
   * Revocations this node made before it used Redis (its `DATA_DIR` store from when it ran
   * alone): known at once and written to the hash by the first full read, as anything else
   * the node knew and Redis lacks, so links revoked then stay dead on every node.
   */
  readonly carried?: ReadonlyMap<string, number>;
}

/** See the module comment. */
export class RedisShareRevocations implements ShareRevocations {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly key: string;
  private readonly channel: string;
  private readonly mirror = new Map<string, number>();
  private readonly listeners: Array<(order: string, at: number) => void> = [];
  /** Whether the whole hash was read at least once since the start. */
  private synced = false;
  /** Resolves on the first full read (a node just started waits for it before answering). */
  private readonly firstSync: Promise<void>;
  private markSynced: () => void = () => {};
  private closed = false;
  private reported = false;

  constructor(private readonly o: RedisShareRevocationsOptions) {
    this.firstSync = new Promise((resolve) => {
      this.markSynced = resolve;
    });
    for (const [order, at] of o.carried ?? []) this.mirror.set(order, at);
    this.key = `${o.prefix}share:revoked`;
    this.channel = `${o.prefix}share:revoked`;
    // No offline queue: while Redis is down a read falls back at once and a revocation fails
    // at once (503) instead of waiting in a queue and being applied later, unknown to the caller.
    this.redis = redisClient(o.target, {
      enableOfflineQueue: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
    });
    this.sub = redisClient(o.target, { maxRetriesPerRequest: null });
    for (const conn of [this.redis, this.sub]) {
      conn.on('error', (err: Error) => this.report(err));
    }
    this.redis.on('ready', () => {
      this.reported = false;
    });
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.heard(message);
    });
    // After every (re)connection: subscribe (again), then read the hash, so nothing
    // published while disconnected is missed.
    this.sub.on('ready', () => void this.resync());
  }

  async revokedAt(order: string): Promise<number | undefined> {
    if (!this.synced) {
      // Just started: its connections may be a moment from ready. Wait for them a little
      // rather than answer 503 to the first customers after a restart.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.firstSync, new Promise((r) => (timer = setTimeout(r, COMMAND_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    if (this.redis.status === 'ready') {
      try {
        const raw = await this.redis.hget(this.key, order);
        const at = raw === null ? undefined : this.parseTime(raw, order);
        if (at !== undefined) this.learn(order, at, true);
        return this.mirror.get(order);
      } catch (err) {
        this.report(err as Error);
      }
    }
    if (!this.synced) throw new RevocationsUnavailable(`redis connection ${this.redis.status}`);
    return this.mirror.get(order);
  }

  known(order: string): number | undefined {
    return this.mirror.get(order);
  }

  async revoke(order: string, at: number): Promise<number> {
    if (this.redis.status !== 'ready') throw new RevocationsUnavailable(`redis connection ${this.redis.status}`);
    let raw: unknown;
    try {
      raw = await this.redis.eval(REVOKE, 1, this.key, order, String(at), String(this.cutoff()), this.channel);
    } catch (err) {
      this.report(err as Error);
      throw new RevocationsUnavailable((err as Error).message);
    }
    const stored = typeof raw === 'string' ? this.parseTime(raw, order) : undefined;
    if (stored === undefined) throw new RevocationsUnavailable(`unexpected answer ${JSON.stringify(raw)}`);
    // This node's own streams are ended by the caller; the others hear the channel.
    this.learn(order, stored, false);
    return stored;
  }

  onRevoked(fn: (order: string, at: number) => void): void {
    this.listeners.push(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sub.disconnect();
    await closeRedis(this.redis);
  }

  /** Revocations older than this have outlived every link they killed. */
  private cutoff(): number {
    return this.o.now() - this.o.maxLinkMs;
  }

  private report(err: Error): void {
    if (this.reported || this.closed) return;
    this.reported = true;
    this.o.onError?.(err);
  }

  private parseTime(raw: string, order: string): number | undefined {
    const at = TIME.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isSafeInteger(at) && at > 0) return at;
    this.o.onCorrupt?.('share revocations', `revocation of ${JSON.stringify(order)} is not a time`);
    return undefined;
  }

  /** Records a revocation this node learned of; tells the listeners when it is new and `tell`. */
  private learn(order: string, at: number, tell: boolean): void {
    const before = this.mirror.get(order);
    if (before !== undefined && before >= at) return;
    this.mirror.set(order, at);
    if (!tell) return;
    for (const fn of this.listeners) {
      try {
        fn(order, at);
      } catch (err) {
        this.o.onError?.(err as Error);
      }
    }
  }

  /** A message of the channel: `<at>:<order>` (it crossed a network: checked). */
  private heard(message: string): void {
    const colon = message.indexOf(':');
    const order = colon > 0 ? message.slice(colon + 1) : '';
    if (!isValidId(order)) {
      this.o.onCorrupt?.('share revocations channel', 'message is not <time>:<order id>');
      return;
    }
    const at = this.parseTime(message.slice(0, colon), order);
    if (at !== undefined) this.learn(order, at, true);
  }

  /** Subscribes, reads the whole hash into what this node knows, and writes back what Redis lost. */
  private async resync(): Promise<void> {
    while (!this.closed && this.sub.status === 'ready') {
      try {
        await this.sub.subscribe(this.channel);
        const all = await this.redis.hgetall(this.key);
        const cutoff = this.cutoff();
        for (const [id, at] of this.mirror) if (at < cutoff) this.mirror.delete(id);
        const lost: Array<[string, number]> = [];
        for (const [order, at] of this.mirror) {
          const there = all[order];
          if (there === undefined || !TIME.test(there) || Number(there) < at) lost.push([order, at]);
        }
        for (const [order, raw] of Object.entries(all)) {
          if (!isValidId(order)) {
            this.o.onCorrupt?.('share revocations', 'a field is not an order id');
            continue;
          }
          const at = this.parseTime(raw, order);
          if (at !== undefined && at >= cutoff) this.learn(order, at, true);
        }
        for (const [order, at] of lost) {
          await this.redis.eval(REVOKE, 1, this.key, order, String(at), String(cutoff), this.channel);
        }
        this.synced = true;
        this.markSynced();
        this.o.onSynced?.(Object.keys(all).length, lost.length);
        return;
      } catch (err) {
        this.report(err as Error);
        await new Promise((r) => setTimeout(r, RESYNC_RETRY_MS));
      }
    }
  }
}

/**
 * Redis state mirror: per technician a hash of open orders `<prefix>t:<tech>:o` and a
 * string `<prefix>t:<tech>:p` with the last position; a set `<prefix>busy` names the
 * technicians with open orders, kept exact by the same Lua script that writes an order,
 * which also records each order's technician in the hash `<prefix>order-tech` (so any node
 * can route a request about an order to the node that owns its technician).
 * Writes are auto-pipelined on one connection, so they land in the order they were
 * issued, and are not awaited by anyone on a client's path. While Redis is unreachable
 * they wait in ioredis's offline queue (the node's outbox) and go out on reconnect.
 *
 * Fenced: each order and position write carries the fencing token this node holds for the
 * technician and is refused (nothing written) when a newer one was issued (fencing.ts).
 * A refusal is reported with the record and token the write carried, so the cluster can
 * get an acked order to the technician's owner instead of losing it.
 */
import type { Redis } from 'ioredis';
import { FenceTokens, fenceKey, type StaleRecord } from './fencing.js';
import {
  type MirroredOrder,
  mirroredOrderCheck,
  mirroredPositionCheck,
  type OnCorrupt,
  readRecord,
} from './record-schemas.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';
import type { MirroredTech, StateMirror } from './state-mirror.js';

/** KEYS: orders, busy, order-tech, fence. ARGV: id, json ('' drops it), tech, token. 0 when stale. */
const PUT_ORDER = `
if tonumber(ARGV[4]) < tonumber(redis.call('HGET', KEYS[4], 'token') or '0') then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if redis.call('HLEN', KEYS[1]) > 0 then redis.call('SADD', KEYS[2], ARGV[3]) else redis.call('SREM', KEYS[2], ARGV[3]) end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
`;

/** KEYS: position, fence. ARGV: json, token. 0 when stale. */
const PUT_POSITION = `
if tonumber(ARGV[2]) < tonumber(redis.call('HGET', KEYS[2], 'token') or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

/** See the module comment. */
export class RedisStateMirror implements StateMirror {
  private readonly redis: Redis;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    url: RedisTarget | string,
    private readonly prefix: string,
    private readonly onError?: (err: Error) => void,
    /** Told about a mirrored record that fails its schema; it is left out of `load`. */
    private readonly onCorrupt?: OnCorrupt,
    /** This node's fencing tokens (none: every write carries 0). */
    private readonly fences: FenceTokens = new FenceTokens(),
  ) {
    this.redis = redisClient(url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
    this.redis.on('error', (err: Error) => onError?.(err));
  }

  /** Tracks a fenced write; a refusal is reported with what it carried (`stale`), not an error of the connection. */
  private fenced(stale: StaleRecord, p: Promise<unknown>): void {
    const tracked = p
      .then((stored) => {
        if (stored === 0) this.fences.refused(stale);
      })
      .catch((err: Error) => this.onError?.(err))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  putOrder(tech: string, id: string, value: unknown): void {
    const json = value === null ? '' : JSON.stringify(value);
    const p = this.prefix;
    const keys = [`${p}t:${tech}:o`, `${p}busy`, `${p}order-tech`, fenceKey(p, tech)];
    const token = this.fences.get(tech);
    this.fenced(
      { what: 'order', tech, token, id, value },
      this.redis.eval(PUT_ORDER, 4, ...keys, id, json, tech, String(token)),
    );
  }

  putPosition(tech: string, value: unknown): void {
    const keys = [`${this.prefix}t:${tech}:p`, fenceKey(this.prefix, tech)];
    const token = this.fences.get(tech);
    this.fenced(
      { what: 'position', tech, token },
      this.redis.eval(PUT_POSITION, 2, ...keys, JSON.stringify(value), String(token)),
    );
  }

  async load(tech: string): Promise<MirroredTech> {
    const [orders, position] = await Promise.all([
      this.redis.hvals(`${this.prefix}t:${tech}:o`),
      this.redis.get(`${this.prefix}t:${tech}:p`),
    ]);
    return {
      orders: orders
        .map((raw) => readRecord(mirroredOrderCheck, raw, 'state mirror order', this.onCorrupt))
        .filter((o): o is MirroredOrder => o !== null),
      position: readRecord(mirroredPositionCheck, position, 'state mirror position', this.onCorrupt),
    };
  }

  techOf(id: string): Promise<string | null> {
    return this.redis.hget(`${this.prefix}order-tech`, id);
  }

  busy(): Promise<string[]> {
    return this.redis.smembers(`${this.prefix}busy`);
  }

  async eraseTech(tech: string): Promise<void> {
    await this.flush();
    const p = this.prefix;
    await this.redis.del(`${p}t:${tech}:o`, `${p}t:${tech}:p`);
    await this.redis.srem(`${p}busy`, tech);
    // The order index is keyed by order: find this technician's entries by scanning it.
    // An erase is rare and the scan is incremental, so it never blocks Redis for long.
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(`${p}order-tech`, cursor, 'COUNT', 1000);
      cursor = next;
      const mine: string[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i + 1] === tech) mine.push(flat[i]!);
      if (mine.length > 0) await this.redis.hdel(`${p}order-tech`, ...mine);
    } while (cursor !== '0');
  }

  async flush(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  async close(): Promise<void> {
    await this.flush();
    await closeRedis(this.redis);
  }
}

/**
 * Redis leases: one string key per lease holding the owner id, with a PX expiry kept by
 * Redis itself (so it runs out even if every node that knew about it is dead), and beside
 * it a hash `<prefix>fence:<key>` (never expiring) with the newest fencing token issued and
 * the node it went to (leases.ts, fencing.ts). Every operation is one Lua script, so
 * checking the owner, moving the lease and issuing a token are one atomic step: a node that
 * lost its lease can never extend, move or delete someone else's.
 *
 * Every lease operation times out after LEASE_OP_TIMEOUT_MS (ioredis `commandTimeout`):
 * while Redis is unreachable a node learns soon that it cannot confirm a lease instead of
 * waiting for a reconnect. (A confirmation only counts from when its request was sent, so
 * a slow answer can never stretch a lease: src/cluster/cluster-link.ts.)
 */
import type { Redis } from 'ioredis';
import type { Leases } from './leases.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';

/** KEYS: lease, fence. ARGV: owner, ttl. The token when held (kept if `owner` had it last), else nil. */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur ~= false and cur ~= ARGV[1] then return nil end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local f = redis.call('HMGET', KEYS[2], 'owner', 'token')
if f[1] == ARGV[1] and f[2] then return tonumber(f[2]) end
local token = redis.call('HINCRBY', KEYS[2], 'token', 1)
redis.call('HSET', KEYS[2], 'owner', ARGV[1])
return token
`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS: lease, fence. ARGV: owner, to, ttl. The new holder gets a new token. */
const TRANSFER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'token', 1)
  redis.call('HSET', KEYS[2], 'owner', ARGV[2])
  return 1
end
return 0
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/** Longest a lease operation may take before it counts as failed (a half-open connection). */
const LEASE_OP_TIMEOUT_MS = 2000;

/** See the module comment. */
export class RedisLeases implements Leases {
  private readonly redis: Redis;

  /** `prefix` namespaces the keys so deployments (or tests) can share one Redis. */
  constructor(
    target: RedisTarget | string,
    private readonly prefix: string,
    onError?: (err: Error) => void,
    /** Told the server's address on every (re)connect: which primary a lease was taken on. */
    onReady?: (address: string) => void,
  ) {
    // Renewals of many technicians in one tick go out as one pipeline.
    this.redis = redisClient(
      target,
      { enableAutoPipelining: true, maxRetriesPerRequest: 1, commandTimeout: LEASE_OP_TIMEOUT_MS },
      { followFailover: true },
    );
    this.redis.on('error', (err: Error) => onError?.(err));
    this.redis.on('ready', () => onReady?.(`${this.redis.stream.remoteAddress}:${this.redis.stream.remotePort}`));
  }

  private key(key: string): string {
    return `${this.prefix}lease:${key}`;
  }

  private fence(key: string): string {
    return `${this.prefix}fence:${key}`;
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<number | null> {
    const token = await this.redis.eval(ACQUIRE, 2, this.key(key), this.fence(key), owner, String(ttlMs));
    return typeof token === 'number' ? token : null;
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key(key), owner, String(ttlMs))) === 1;
  }

  async transfer(key: string, owner: string, to: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(TRANSFER, 2, this.key(key), this.fence(key), owner, to, String(ttlMs))) === 1;
  }

  async release(key: string, owner: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key(key), owner)) === 1;
  }

  async holder(key: string): Promise<string | null> {
    return this.redis.get(this.key(key));
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}

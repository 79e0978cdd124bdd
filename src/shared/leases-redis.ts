/**
 * Redis leases: one string key per lease holding the owner id, with a PX expiry kept by
 * Redis itself (so it runs out even if every node that knew about it is dead). Acquire is
 * `SET NX PX` unless already ours; renew, transfer and release check the owner in a Lua script so a
 * node that lost its lease can never extend or delete someone else's.
 */
import { Redis } from 'ioredis';
import type { Leases } from './leases.js';

const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

const TRANSFER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
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

/** See the module comment. */
export class RedisLeases implements Leases {
  private readonly redis: Redis;

  /** `prefix` namespaces the keys so deployments (or tests) can share one Redis. */
  constructor(
    url: string,
    private readonly prefix: string,
    onError?: (err: Error) => void,
  ) {
    // Renewals of many actors in one tick go out as one pipeline.
    this.redis = new Redis(url, { enableAutoPipelining: true });
    this.redis.on('error', (err: Error) => onError?.(err));
  }

  private key(key: string): string {
    return `${this.prefix}lease:${key}`;
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(ACQUIRE, 1, this.key(key), owner, String(ttlMs))) === 1;
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key(key), owner, String(ttlMs))) === 1;
  }

  async transfer(key: string, owner: string, to: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(TRANSFER, 1, this.key(key), owner, to, String(ttlMs))) === 1;
  }

  async release(key: string, owner: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key(key), owner)) === 1;
  }

  async holder(key: string): Promise<string | null> {
    return this.redis.get(this.key(key));
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

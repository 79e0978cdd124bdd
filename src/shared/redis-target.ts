/**
 * Where the shared Redis is: one server (`REDIS_URL`), or a primary found through Redis
 * Sentinel (`REDIS_SENTINELS` and `REDIS_SENTINEL_NAME`), in which case ioredis asks the
 * sentinels for the current primary on every (re)connect and so follows a failover by
 * itself. Every Redis connection of the shared state is made here, so both forms reach
 * every backend the same way.
 */
import { Redis, type RedisOptions } from 'ioredis';

/** One Redis server, or a Sentinel-monitored primary. */
export type RedisTarget =
  | { readonly url: string }
  | {
      readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
      readonly name: string;
      /** Password of the data nodes, if any (the sentinels are assumed open on a private network). */
      readonly password?: string;
    };

/** How a connection behaves beyond ioredis' own options. */
export interface ClientRole {
  /**
   * Drop the connection and ask the sentinels again as soon as they announce a new primary
   * (`+switch-master`), rather than at the next error. For the leases connection: a primary
   * that stalled (paused, swapping) past the sentinels' down-after is replaced while it
   * still answers as primary to the connections it had, for the 10-20 s until the sentinels
   * turn it into a replica; a node kept on it and a node that connected since would each
   * hold the same technician's lease, and both run its SOS ladder. Only leases decide who
   * runs what, so only their connection needs it (the other connections' writes to a
   * stalled primary are the lost writes of any failover: see the README).
   */
  readonly followFailover?: boolean;
}

/** A new ioredis connection to `target` with `options` (a plain URL is taken as `{url}`). */
export function redisClient(target: RedisTarget | string, options: RedisOptions = {}, role: ClientRole = {}): Redis {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target;
  if ('url' in t) return new Redis(t.url, options);
  return new Redis({
    ...options,
    ...(role.followFailover ? { failoverDetector: true } : {}),
    sentinels: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: t.name,
    ...(t.password !== undefined ? { password: t.password } : {}),
    // After a failover the old primary may still answer as a replica for a moment: a
    // READONLY error reconnects, which asks the sentinels again.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  });
}

/** A short description of `target` for logs and `/readyz` (no secrets). */
export function describeTarget(target: RedisTarget): string {
  if ('url' in target) {
    try {
      const u = new URL(target.url);
      return `${u.hostname}:${u.port || '6379'}`;
    } catch {
      return 'redis';
    }
  }
  return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}

/**
 * Closes `redis` without waiting on a Redis that is down: QUIT (so replies in flight land)
 * when connected, for at most `waitMs`; then, or at once when not connected, drops it.
 */
export async function closeRedis(redis: Redis, waitMs = 2000): Promise<void> {
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      redis.quit().catch(() => undefined),
      new Promise((r) => {
        timer = setTimeout(r, waitMs);
      }),
    ]);
    clearTimeout(timer);
  }
  redis.disconnect();
}

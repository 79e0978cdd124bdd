/**
 * A throwaway cluster for tests: one real redis-server and N real fieldtrack server
 * processes sharing it through REDIS_URL, each with its own DATA_DIR, as an operator would
 * run them behind a load balancer.
 */
import { SENTINEL_NAME, SentinelRedis } from './redis-sentinel.js';
import { RedisServer } from './redis-server.js';
import { ServerProcess } from './server-process.js';

/** A running cluster; `nodes[i]` can be crashed or stopped and `start`ed again. */
export class Cluster {
  private constructor(
    readonly redis: RedisServer,
    readonly nodes: ServerProcess[],
    private readonly env: Record<string, string>,
  ) {}

  /** Starts Redis and `n` nodes, all with `env` added to their environment. */
  static async launch(n: number, env: Record<string, string> = {}): Promise<Cluster> {
    const redis = await RedisServer.launch();
    const cluster = new Cluster(redis, [], env);
    try {
      for (let i = 0; i < n; i++) cluster.nodes.push(await cluster.startNode());
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** Starts one more node on the cluster's Redis (a fresh DATA_DIR unless `dataDir` is given). */
  startNode(dataDir?: string): Promise<ServerProcess> {
    return ServerProcess.start({
      env: { REDIS_URL: this.redis.url, ...this.env },
      ...(dataDir !== undefined ? { dataDir } : {}),
    });
  }

  /** Kills every node and Redis, and removes their folders. */
  async destroy(): Promise<void> {
    for (const node of this.nodes) {
      if (node.exitCode === undefined) await node.crash().catch(() => undefined);
      node.cleanup();
    }
    await this.redis.destroy();
  }
}

/** `n` fieldtrack nodes on a Redis primary, its replica and a sentinel (REDIS_SENTINELS), with `env` added. */
export async function launchOnSentinel(
  n: number,
  env: Record<string, string>,
  opts: { holdableReplication?: boolean } = {},
): Promise<{ redis: SentinelRedis; nodes: ServerProcess[]; destroy(): Promise<void> }> {
  const redis = await SentinelRedis.launch(opts);
  const nodes: ServerProcess[] = [];
  const destroy = async (): Promise<void> => {
    for (const node of nodes) await node.crash().catch(() => undefined);
    for (const node of nodes) node.cleanup();
    await redis.destroy();
  };
  try {
    const all = { REDIS_SENTINELS: redis.sentinels, REDIS_SENTINEL_NAME: SENTINEL_NAME, ...env };
    for (let i = 0; i < n; i++) nodes.push(await ServerProcess.start({ env: all }));
  } catch (err) {
    await destroy();
    throw err;
  }
  return { redis, nodes, destroy };
}

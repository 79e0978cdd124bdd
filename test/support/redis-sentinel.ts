/**
 * A throwaway Redis with failover for tests: a primary, a replica of it and one Redis
 * Sentinel (Debian's `redis-sentinel`, installed with apt-get when missing) watching them
 * on free loopback ports, with short failure detection so a failover takes seconds.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { aptInstall } from './apt.js';
import { freePort } from './clickhouse-server.js';
import { DaemonServer } from './daemon.js';
import { eventually } from './eventually.js';
import { RedisServer } from './redis-server.js';

const BINARY = '/usr/bin/redis-sentinel';
/** The name the sentinel monitors the primary under (REDIS_SENTINEL_NAME). */
export const SENTINEL_NAME = 'fieldtrack';

function locateBinary(): string {
  if (existsSync(BINARY)) return BINARY;
  aptInstall('redis-sentinel');
  if (!existsSync(BINARY)) throw new Error('redis-sentinel: apt-get installed the package but no binary was found');
  return BINARY;
}

/** One running sentinel process. */
class Sentinel extends DaemonServer {
  constructor(
    dir: string,
    readonly port: number,
  ) {
    super(dir, 'redis-sentinel');
  }

  async start(binary: string): Promise<void> {
    const daemon = this.spawn(binary, [join(this.dir, 'sentinel.conf')]);
    await eventually(
      'redis-sentinel answers',
      async () => {
        if (daemon.proc.exitCode !== null) {
          const log = await readFile(join(this.dir, 'sentinel.log'), 'utf8').catch(() => '');
          throw new Error(`redis-sentinel exited: ${daemon.stderr()}\n${log.slice(-2000)}`);
        }
        const c = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
        try {
          await c.connect();
          return (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) !== null;
        } finally {
          c.disconnect();
        }
      },
      30_000,
      100,
    );
  }
}

/** A primary, its replica and a sentinel; `sentinels` is the value for REDIS_SENTINELS. */
export class SentinelRedis {
  private constructor(
    readonly servers: RedisServer[],
    private readonly sentinel: Sentinel,
  ) {}

  get sentinels(): string {
    return `127.0.0.1:${this.sentinel.port}`;
  }

  static async launch(): Promise<SentinelRedis> {
    const binary = locateBinary();
    const primary = await RedisServer.launch();
    const replica = await RedisServer.launch([`replicaof 127.0.0.1 ${primary.port}`]);
    const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-sentinel-'));
    const sentinel = new Sentinel(dir, await freePort());
    await writeFile(
      join(dir, 'sentinel.conf'),
      [
        'bind 127.0.0.1',
        `port ${sentinel.port}`,
        `dir ${dir}`,
        `logfile ${join(dir, 'sentinel.log')}`,
        'daemonize no',
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primary.port} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    );
    await sentinel.start(binary);
    const out = new SentinelRedis([primary, replica], sentinel);
    await eventually('replica in sync', async () => (await out.role(replica)) === 'slave', 30_000, 100);
    return out;
  }

  /** `master` or `slave`, as the server reports itself. */
  async role(server: RedisServer): Promise<string | null> {
    const c = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await c.connect();
      const info = await c.info('replication');
      if (/master_link_status:down/.test(info)) return 'syncing';
      return /role:(\w+)/.exec(info)?.[1] ?? null;
    } catch {
      return null;
    } finally {
      c.disconnect();
    }
  }

  /** The server that is primary now, by the sentinel's word. */
  async primaryPort(): Promise<number> {
    const c = new Redis({ port: this.sentinel.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      const addr = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string];
      return Number(addr[1]);
    } finally {
      c.disconnect();
    }
  }

  async destroy(): Promise<void> {
    await this.sentinel.destroy();
    for (const s of this.servers) await s.destroy();
  }
}

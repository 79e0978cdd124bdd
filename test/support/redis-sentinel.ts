/**
 * A throwaway Redis with failover for tests: a primary, a replica of it and one Redis
 * Sentinel (Debian's `redis-sentinel`, installed with apt-get when missing) watching them
 * on free loopback ports, with short failure detection so a failover takes seconds.
 * With `holdableReplication` the first primary is reached through a TCP proxy (the
 * sentinel monitors it at the proxy's address, and the replica replicates from there), so
 * a test can hold its replication stream back (`holdReplication`): Redis replication is
 * asynchronous, and a failover then promotes a replica that lacks the writes the primary
 * acked last.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { aptInstall } from './apt.js';
import { freePort } from './clickhouse-server.js';
import { DaemonServer } from './daemon.js';
import { eventually } from './eventually.js';
import { RedisServer } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

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
        const c = probe(this.port);
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

/**
 * A one-off connection for a check (lazy: `connect()` first). Its failures reach the caller
 * through the rejected command; the listener keeps ioredis from also printing each one as an
 * unhandled error event (a campaign probes servers it has just killed).
 */
function probe(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  c.on('error', () => undefined);
  return c;
}

/** A primary, its replica and a sentinel; `sentinels` is the value for REDIS_SENTINELS. */
export class SentinelRedis {
  private constructor(
    readonly servers: RedisServer[],
    private readonly sentinel: Sentinel,
    /** In front of the first primary (`servers[0]`), with `holdableReplication`. */
    private readonly front: TcpProxy | null,
  ) {}

  get sentinels(): string {
    return `127.0.0.1:${this.sentinel.port}`;
  }

  static async launch(opts: { holdableReplication?: boolean } = {}): Promise<SentinelRedis> {
    const binary = locateBinary();
    const primary = await RedisServer.launch();
    const front = opts.holdableReplication === true ? await TcpProxy.start(primary.port) : null;
    const primaryPort = front?.port ?? primary.port;
    const replica = await RedisServer.launch([`replicaof 127.0.0.1 ${primaryPort}`]);
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
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primaryPort} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    );
    await sentinel.start(binary);
    const out = new SentinelRedis([primary, replica], sentinel, front);
    await eventually('replica in sync', async () => (await out.role(replica)) === 'slave', 30_000, 100);
    return out;
  }

  /**
   * From now on the replica receives nothing more from the first primary, though its link
   * stays up (so the sentinel still promotes it when the primary dies).
   */
  holdReplication(): void {
    if (this.front === null) throw new Error('launched without holdableReplication');
    this.front.holdReplication();
  }

  /** The replication offset `server` reports: how much of the primary's write stream it has. */
  async replicationOffset(server: RedisServer): Promise<number> {
    const c = probe(server.port);
    try {
      await c.connect();
      const info = await c.info('replication');
      const offset = /slave_repl_offset:(\d+)/.exec(info)?.[1] ?? /master_repl_offset:(\d+)/.exec(info)?.[1];
      if (offset === undefined) throw new Error(`no replication offset in INFO of port ${server.port}`);
      return Number(offset);
    } finally {
      c.disconnect();
    }
  }

  /** `master` or `slave`, as the server reports itself. */
  async role(server: RedisServer): Promise<string | null> {
    const c = probe(server.port);
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
  async primary(): Promise<RedisServer> {
    const port = await this.primaryPort();
    const server = port === this.front?.port ? this.servers[0] : this.servers.find((s) => s.port === port);
    if (server === undefined) throw new Error(`the sentinel names an unknown primary on port ${port}`);
    return server;
  }

  /** The port the sentinel gives for the primary now (the proxy's, for the first primary). */
  async primaryPort(): Promise<number> {
    const c = probe(this.sentinel.port);
    try {
      await c.connect();
      const addr = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string];
      return Number(addr[1]);
    } finally {
      c.disconnect();
    }
  }

  /**
   * Copies the sentinel's log (`sentinel.log`: every failover, `+switch-master` and the like,
   * with millisecond times) and each server's (`redis-<port>.log`) into `to`, before
   * `destroy` removes them with their temp folders.
   */
  async keepLogs(to: string): Promise<void> {
    await copyFile(join(this.sentinel.dir, 'sentinel.log'), join(to, 'sentinel.log'));
    for (const s of this.servers) await copyFile(join(s.dir, 'redis.log'), join(to, `redis-${s.port}.log`));
  }

  async destroy(): Promise<void> {
    await this.sentinel.destroy();
    await this.front?.close();
    for (const s of this.servers) await s.destroy();
  }
}

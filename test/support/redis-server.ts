import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptInstall } from './apt.js';
import { freePort } from './clickhouse-server.js';
import { DaemonServer } from './daemon.js';

const BINARY = '/usr/bin/redis-server';

/** Finds the server binary, installing the Debian package when it is missing. */
function locateBinary(): string {
  if (existsSync(BINARY)) return BINARY;
  aptInstall('redis-server');
  if (!existsSync(BINARY)) throw new Error('redis-server: apt-get installed the package but no binary was found');
  return BINARY;
}

function configText(dir: string, port: number, extra: string[] = []): string {
  // Every write is fsynced to the append-only file, so even `kill` (SIGKILL) keeps what
  // was acknowledged: an outage test can restart on the same data.
  return [
    'bind 127.0.0.1',
    `port ${port}`,
    `dir ${dir}`,
    `logfile ${join(dir, 'redis.log')}`,
    'daemonize no',
    'save ""',
    'appendonly yes',
    'appendfsync always',
    'protected-mode yes',
    ...extra,
    '',
  ].join('\n');
}

/** A running (or stopped) throwaway server; `url` stays the same across stop/start. */
export class RedisServer extends DaemonServer {
  private constructor(
    dir: string,
    readonly port: number,
    private readonly binary: string,
  ) {
    super(dir, 'redis-server');
  }

  /** Endpoint for `REDIS_URL`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Creates the temp folder and config, starts the server and waits for `PING`. */
  static async launch(extra: string[] = []): Promise<RedisServer> {
    const binary = locateBinary();
    const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-redis-'));
    const server = new RedisServer(dir, await freePort(), binary);
    await writeFile(join(dir, 'redis.conf'), configText(dir, server.port, extra));
    await server.start();
    return server;
  }

  /** Starts the server process (again) and resolves once it answers `PING`. */
  async start(timeoutMs = 30_000): Promise<void> {
    const daemon = this.spawn(this.binary, [join(this.dir, 'redis.conf')]);
    const proc = daemon.proc;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        this.proc = null;
        const log = await readFile(join(this.dir, 'redis.log'), 'utf8').catch(() => '');
        throw new Error(
          `redis-server exited during start-up (${proc.exitCode ?? proc.signalCode}):\n${daemon.stderr()}\n${log.slice(-4000)}`,
        );
      }
      if (await this.ping()) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server did not answer PING within ${timeoutMs} ms:\n${daemon.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** True when the server answers `PING` with `+PONG` right now (a raw RESP exchange, no client library). */
  ping(): Promise<boolean> {
    return new Promise((resolve) => {
      let reply = '';
      const sock = connect({ host: '127.0.0.1', port: this.port });
      const done = (ok: boolean): void => {
        sock.destroy();
        resolve(ok);
      };
      sock.setTimeout(1000, () => done(false));
      sock.on('error', () => done(false));
      sock.on('connect', () => sock.write('PING\r\n'));
      sock.on('data', (d: Buffer) => {
        reply += d.toString();
        // A server still loading its append-only file answers -LOADING: not ready yet.
        if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
      });
    });
  }
}

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptInstall } from './apt.js';
import { DaemonServer } from './daemon.js';

const CANDIDATES: [string, string[]][] = [
  ['/usr/bin/clickhouse-server', []],
  ['/usr/sbin/clickhouse-server', []],
  ['/usr/bin/clickhouse', ['server']],
];

/** Finds the server binary, installing the Debian package when none is present. */
function locateBinary(): [string, string[]] {
  const found = CANDIDATES.find(([path]) => existsSync(path));
  if (found) return found;
  aptInstall('clickhouse-server');
  const installed = CANDIDATES.find(([path]) => existsSync(path));
  if (!installed) {
    throw new Error('clickhouse-server: apt-get installed the package but no server binary was found');
  }
  return installed;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released for the server). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function configXml(dir: string, httpPort: number, tcpPort: number): string {
  // Only the HTTP and native ports are configured: without <interserver_http_port>,
  // <mysql_port> and friends the server opens nothing else.
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/server.log</log>
    <errorlog>${dir}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
`;
}

const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;

/** A running (or stopped) throwaway server; `url` stays the same across stop/start. */
export class ClickHouseServer extends DaemonServer {
  private constructor(
    dir: string,
    readonly httpPort: number,
    readonly tcpPort: number,
    private readonly binary: [string, string[]],
  ) {
    super(dir, 'clickhouse-server');
  }

  /** HTTP endpoint for `CLICKHOUSE_URL`. */
  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Creates the temp folder and config, starts the server and waits for `/ping`. */
  static async launch(): Promise<ClickHouseServer> {
    const binary = locateBinary();
    const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-ch-'));
    for (const sub of ['data', 'tmp', 'user_files', 'format_schemas', 'log']) await mkdir(join(dir, sub));
    const server = new ClickHouseServer(dir, await freePort(), await freePort(), binary);
    await writeFile(join(dir, 'config.xml'), configXml(dir, server.httpPort, server.tcpPort));
    await writeFile(join(dir, 'users.xml'), USERS_XML);
    await server.start();
    return server;
  }

  /** Starts the server process (again) and resolves once `GET /ping` answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    const [path, args] = this.binary;
    const daemon = this.spawn(path, [...args, `--config-file=${join(this.dir, 'config.xml')}`]);
    const proc = daemon.proc;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        this.proc = null;
        const log = await readFile(join(this.dir, 'log', 'server.err.log'), 'utf8').catch(() => '');
        throw new Error(
          `clickhouse-server exited during start-up (${proc.exitCode ?? proc.signalCode}):\n${daemon.stderr()}\n${log.slice(-4000)}`,
        );
      }
      if (await this.ping()) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`clickhouse-server did not answer /ping within ${timeoutMs} ms:\n${daemon.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** True when the server answers `GET /ping` right now. */
  async ping(): Promise<boolean> {
    try {
      // No keep-alive: an idle kept-alive socket makes a graceful stop wait several seconds.
      const res = await fetch(`${this.url}/ping`, {
        signal: AbortSignal.timeout(1000),
        headers: { connection: 'close' },
      });
      await res.text();
      return res.ok;
    } catch {
      return false;
    }
  }
}

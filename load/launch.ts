/**
 * Starts a server under test (the full fieldtrack node or the bare baseline) as a child
 * process on a free loopback port and reads its CPU time and resident memory from /proc,
 * so both servers are measured the same way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { SignJWT } from 'jose';
import { NODE_RUNTIME_FLAGS } from '../src/node-flags.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled full server and the compiled baseline. */
export const ENTRY = { full: join(here, '..', 'src', 'main.js'), baseline: join(here, 'baseline.js') } as const;

/** Secret the bench signs tokens with and passes to the server. */
export const BENCH_SECRET = 'fieldtrack-bench-secret-0123456789abcdef0123456789';

/** Signs an HS256 token valid for a day. */
export function mint(sub: string, role: string, secret = BENCH_SECRET): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 86_400)
    .sign(new TextEncoder().encode(secret));
}

/** CPU seconds (user+system) in a /proc `stat` line. */
function statCpuSec(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: utime is the 12th, stime the 13th (0-based 11, 12); ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Nanoseconds the main thread of process `pid` has spent runnable but waiting for a CPU
 * (the second field of its schedstat): how much the machine kept the node from running.
 * NaN where the kernel does not report it.
 */
export function runQueueWaitNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user+system) and resident bytes of a process, from /proc. */
export function procStats(pid: number): { cpuSec: number; rssBytes: number } {
  const cpuSec = statCpuSec(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSec, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
}

/**
 * CPU seconds (user+system) of a process's main thread alone, from /proc: in a node, the
 * thread that runs the event loop and acks devices (worker threads and libuv's pool not
 * counted).
 */
export function mainThreadCpuSec(pid: number): number {
  return statCpuSec(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
}

/** A running server under test. */
export interface RunningServer {
  kind: keyof typeof ENTRY;
  child: ChildProcess;
  port: number;
  /** The server's DATA_DIR (removed by `stop`). */
  dataDir: string;
  httpUrl: string;
  wsUrl: string;
  stats(): { cpuSec: number; rssBytes: number };
  /** The Prometheus text of `/metrics` (full server only). */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** Reads one sample value from Prometheus text, summing every label set. */
export function metricValue(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Spawns `kind` with `env` and resolves once it logged `listening` with its port.
 * `nodeArgs` go before the script (for example `--cpu-prof`, which NODE_OPTIONS refuses).
 */
export async function launch(
  kind: keyof typeof ENTRY,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldtrack-bench-'));
  // The runtime flags `npm start` uses, for the baseline too: both run as a node would.
  const child = spawn(process.execPath, [...NODE_RUNTIME_FLAGS, ...nodeArgs, ENTRY[kind]], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TRACKER_JWT_SECRET: BENCH_SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_SEC: '100000',
      RATE_LIMIT_BURST: '100000',
      IDLE_TIMEOUT_SEC: '960',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        try {
          const parsed = JSON.parse(line) as { msg?: string; port?: number };
          if (parsed.msg === 'listening' && typeof parsed.port === 'number') resolve(parsed.port);
        } catch {
          // Not a log line; ignore.
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}): ${stderr.join('')}`)));
  });
  child.stdout?.resume();
  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    kind,
    child,
    port,
    dataDir,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}`,
    stats: () => procStats(child.pid as number),
    metrics: async () => (await fetch(`${httpUrl}/metrics`)).text(),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A latency histogram of the simulator (1 to 120,000,000 units, 3 digits): one shape for workers and their merge. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/**
 * Memory per connected device: starts a fresh full node (as the bench does, launch.ts)
 * for each step, connects N devices through the simulator's workers (sim-worker.ts, the
 * same connect path as `npm run bench`: with `orders`, each device's order is created
 * first, assigned and not started), and reads the node's memory before and 1 s after.
 *
 * Per step it reports, divided by the devices connected:
 * - `rssBytes`: resident growth without a forced GC, the bench's own figure (sim.ts);
 * - `heapBytes`: live JS heap growth, both sides after full GCs;
 * - `rssAfterGcBytes`: resident growth once both sides were collected;
 * - `nativeBytes`: resident minus committed JS heap (uWS sockets, malloc), after GC.
 * The node runs with `--inspect` on a loopback port so that this script can force its
 * GCs and read `process.memoryUsage()` through the DevTools protocol; `--snapshot DIR`
 * also writes a heap snapshot before and after connecting for a retainer analysis.
 *
 * Run: npx tsc -p . && node dist/load/device-memory.js [--devices 5000,15000] [--orders both|yes|no]
 * Writes load/results/device-memory.json. Every step is bounded (connects within 5 minutes).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { BENCH_SECRET, launch, type RunningServer } from './launch.js';
import type { WorkerPlan } from './sim-worker.js';

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, 'sim-worker.js');
const RESULTS = join(here, '..', '..', 'load', 'results', 'device-memory.json');
/** Devices per simulator process, as sim.ts spreads them. */
const PER_PROCESS = 4000;
const CONNECT_TIMEOUT_MS = 300_000;
/** As the bench: resident memory is read 1 s after the last device connected. */
const SETTLE_MS = 1000;

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '5000,15000' },
    orders: { type: 'string', default: 'both' },
    snapshot: { type: 'string' },
  },
});
const counts = (values.devices as string).split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 40_000) throw new Error(`--devices: ${s} is not a count from 1 to 40000`);
  return n;
});
const orderModes: boolean[] = (() => {
  switch (values.orders) {
    case 'both':
      return [false, true];
    case 'yes':
      return [true];
    case 'no':
      return [false];
    default:
      throw new Error('--orders: both, yes or no');
  }
})();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A minimal DevTools-protocol session with the node under test. */
class Inspector {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private chunkSink: ((chunk: string) => void) | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: { chunk?: string };
      };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk' && m.params?.chunk !== undefined) {
        this.chunkSink?.(m.params.chunk);
        return;
      }
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error.message));
      else w.resolve(m.result);
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
          webSocketDebuggerUrl: string;
        }[];
        const url = list[0]?.webSocketDebuggerUrl;
        if (url === undefined) throw new Error('no inspector target');
        const ws = new WebSocket(url, { maxPayload: 1 << 30 });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        return new Inspector(ws);
      } catch (err) {
        if (Date.now() > until) throw err;
        await sleep(100);
      }
    }
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`inspector: ${method} took more than 2 minutes`));
      }, 120_000);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** `process.memoryUsage()` of the node. */
  async memory(): Promise<NodeJS.MemoryUsage> {
    const r = (await this.call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    })) as { result: { value: string } };
    return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
  }

  async collect(): Promise<void> {
    for (let i = 0; i < 3; i++) await this.call('HeapProfiler.collectGarbage');
  }

  async snapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.chunkSink = (chunk) => out.write(chunk);
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    this.chunkSink = null;
    await new Promise<void>((resolve) => out.end(resolve));
  }

  close(): void {
    this.ws.close();
  }
}

/** The node's memory at one moment: resident without GC, then heap and resident after GC. */
interface Reading {
  rss: number;
  heapUsedGc: number;
  heapTotalGc: number;
  rssGc: number;
}

async function read(server: RunningServer, insp: Inspector): Promise<Reading> {
  const rss = server.stats().rssBytes;
  await insp.collect();
  const m = await insp.memory();
  return { rss, heapUsedGc: m.heapUsed, heapTotalGc: m.heapTotal, rssGc: server.stats().rssBytes };
}

/** Starts the workers of `devices` and resolves once every one has connected its devices. */
async function connectDevices(server: RunningServer, devices: number, orders: boolean): Promise<ChildProcess[]> {
  const processes = Math.max(2, Math.ceil(devices / PER_PROCESS));
  const children = Array.from({ length: processes }, (_, index) => {
    const plan: WorkerPlan = {
      index,
      wsUrl: server.wsUrl,
      httpUrl: server.httpUrl,
      target: 'full',
      localAddress: `127.0.0.${2 + index}`,
      devices: Math.floor(devices / processes) + (index < devices % processes ? 1 : 0),
      pingHz: 0.1,
      window: 0,
      jobShare: 0,
      orders,
      sosPerSec: 0,
      consoles: 0,
      secret: BENCH_SECRET,
      durationSec: 1,
      drainMs: 1000,
    };
    return fork(WORKER, [JSON.stringify(plan)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  });
  const connected = children.map(
    (c) =>
      new Promise<number>((resolve, reject) => {
        c.on('message', (m: { type: string; counters?: { connected: number } }) => {
          if (m.type === 'connected') resolve(m.counters?.connected ?? 0);
        });
        c.once('exit', () => reject(new Error('device-memory: a simulator worker died while connecting')));
      }),
  );
  for (const c of children) c.send({ type: 'connect' });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('device-memory: devices did not connect within 5 minutes')),
      CONNECT_TIMEOUT_MS,
    );
  });
  try {
    const n = (await Promise.race([Promise.all(connected), timeout])).reduce((a, b) => a + b, 0);
    if (n !== devices) throw new Error(`device-memory: ${n} of ${devices} devices connected`);
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return children;
}

/** One step's figures. */
interface Step {
  devices: number;
  orders: boolean;
  idle: Reading;
  connected: Reading;
  perDevice: { rssBytes: number; heapBytes: number; rssAfterGcBytes: number; nativeBytes: number };
  seconds: number;
}

async function step(devices: number, orders: boolean): Promise<Step> {
  const began = Date.now();
  const port = await freePort();
  const server = await launch('full', {}, [`--inspect=127.0.0.1:${port}`]);
  let children: ChildProcess[] = [];
  const insp = await Inspector.connect(port);
  try {
    const tag = `${devices}-${orders ? 'orders' : 'bare'}`;
    await sleep(SETTLE_MS);
    const idle = await read(server, insp);
    if (values.snapshot) await insp.snapshot(join(values.snapshot, `idle-${tag}.heapsnapshot`));
    children = await connectDevices(server, devices, orders);
    await sleep(SETTLE_MS);
    const connected = await read(server, insp);
    if (values.snapshot) await insp.snapshot(join(values.snapshot, `connected-${tag}.heapsnapshot`));
    const per = (a: number, b: number): number => Math.round((b - a) / devices);
    const native = (r: Reading): number => r.rssGc - r.heapTotalGc;
    return {
      devices,
      orders,
      idle,
      connected,
      perDevice: {
        rssBytes: per(idle.rss, connected.rss),
        heapBytes: per(idle.heapUsedGc, connected.heapUsedGc),
        rssAfterGcBytes: per(idle.rssGc, connected.rssGc),
        nativeBytes: per(native(idle), native(connected)),
      },
      seconds: Math.round((Date.now() - began) / 1000),
    };
  } finally {
    insp.close();
    for (const c of children) c.kill('SIGKILL');
    await server.stop();
  }
}

async function main(): Promise<void> {
  if (values.snapshot) await mkdir(values.snapshot, { recursive: true });
  const steps: Step[] = [];
  for (const orders of orderModes) {
    for (const n of counts) {
      const s = await step(n, orders);
      steps.push(s);
      const p = s.perDevice;
      console.log(
        `${n} devices${orders ? ' with assigned orders' : ''}: rss ${p.rssBytes} B/device (after GC ${p.rssAfterGcBytes}), heap ${p.heapBytes}, native ${p.nativeBytes} (${s.seconds} s)`,
      );
    }
  }
  await writeFile(RESULTS, `${JSON.stringify({ measuredAt: new Date().toISOString(), steps }, null, 2)}\n`);
  console.log(`wrote ${RESULTS}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

/**
 * Archive benchmark, for each store (embedded chDB, a throwaway Debian clickhouse-server):
 *
 * 1. ack latency: concurrent writers each spool one ping at a time for a fixed time with
 *    the default batch settings (the drainer runs meanwhile, as in production); latency
 *    percentiles come from an HDR histogram, and the share of the acked rows already
 *    archived when the writers stop tells how much of the writer's work the acks shared
 *    the loop with;
 * 2. drain rate: a backlog is spooled while nothing drains, then the archive is reopened
 *    with the default batch settings and timed until the spool is empty;
 * 3. busy drain: the archive (default settings) while the main thread is busy, the way a
 *    loaded node's is: every event-loop turn spends `--busy-ms` of CPU (standing in for
 *    message handling) and spools the pings offered since the last turn (`--rate` a
 *    second, one write each). After a warm-up, reports pings acked and rows archived per
 *    second and how fast the backlog (rows spooled, not yet archived) grows: an archive
 *    that keeps up holds it at about a batch or two; a stalling one archives fewer rows
 *    than it acks, and its backlog grows for as long as the load lasts.
 *
 * And once, without a store: spool write calls/s, log records/s and main-thread time per
 * write with `--writers` concurrent writers spooling one ping each at a time (how many
 * writes share a record, and what a ping's spool write costs the event loop).
 *
 * `--baseline DIR` runs every phase a second time with the modules of another built
 * checkout (e.g. the commit before a change: `git archive <rev> | tar -x -C DIR`, link
 * node_modules, `npx tsc -p DIR`), so that before and after come from one run on one
 * machine. `--stores` and `--phases` pick a subset (the server store installs Debian's
 * clickhouse-server when it is missing).
 *
 * Prints Markdown tables and writes JSON to load/results/archive-bench.json (or `--out`).
 * Bounded in time: every phase has a fixed duration or size, and a watchdog ends a stuck
 * run.
 *
 * Usage: node dist/load/archive-bench.js [--seconds 10] [--writers 64] [--backlog 300000]
 *   [--rate 8000] [--busy-ms 50] [--busy-seconds 20] [--stores chdb,server] [--phases ack,drain,busy,spool]
 *   [--baseline DIR] [--out FILE]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance as nodePerformance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import type { Counter, Gauge } from 'prom-client';
import type * as ConfigModule from '../src/config.js';
import { createLogger } from '../src/log.js';
import type * as MetricsModule from '../src/metrics.js';
import type * as AppendLogModule from '../src/storage/append-log.js';
import type { ArchiveRecord } from '../src/telemetry/archive.js';
import type * as FactoryModule from '../src/telemetry/archive-factory.js';
import type * as SpoolModule from '../src/telemetry/spool.js';
import { ClickHouseServer } from '../test/support/clickhouse-server.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    writers: { type: 'string', default: '64' },
    backlog: { type: 'string', default: '300000' },
    rate: { type: 'string', default: '8000' },
    'busy-ms': { type: 'string', default: '50' },
    'busy-seconds': { type: 'string', default: '20' },
    stores: { type: 'string', default: 'chdb,server' },
    baseline: { type: 'string' },
    out: { type: 'string', default: 'archive-bench.json' },
    phases: { type: 'string', default: 'ack,drain,busy,spool' },
  },
});
const SECONDS = Number(args.seconds);
const WRITERS = Number(args.writers);
const BACKLOG = Number(args.backlog);
const RATE = Number(args.rate);
const BUSY_MS = Number(args['busy-ms']);
const BUSY_SECONDS = Number(args['busy-seconds']);
const BUSY_WARMUP_S = 5;
const STORES = new Set(args.stores.split(','));
const PHASES = new Set(args.phases.split(','));
/** Time left for the busy phase's archive to drain at close: the backlog is the result, not to be waited out. */
const BUSY_CLOSE_MS = 1000;
const WATCHDOG_MS =
  120_000 + STORES.size * (args.baseline ? 2 : 1) * ((3 * SECONDS + BUSY_WARMUP_S + BUSY_SECONDS) * 1000 + 60_000);

const log = createLogger('silent');

/** The modules a phase runs on: this checkout's, or the baseline's. */
interface Impl {
  label: string;
  loadConfig: typeof ConfigModule.loadConfig;
  Metrics: typeof MetricsModule.Metrics;
  openSpooledArchive: typeof FactoryModule.openSpooledArchive;
  Spool: typeof SpoolModule.Spool;
  AppendLog: typeof AppendLogModule.AppendLog;
}

/** Loads the modules of the checkout whose build output is `dist` (a folder holding src/). */
async function loadImpl(label: string, dist: string): Promise<Impl> {
  const load = (path: string): Promise<unknown> => import(pathToFileURL(join(dist, path)).href);
  const config = (await load('src/config.js')) as typeof ConfigModule;
  const metrics = (await load('src/metrics.js')) as typeof MetricsModule;
  const factory = (await load('src/telemetry/archive-factory.js')) as typeof FactoryModule;
  const spool = (await load('src/telemetry/spool.js')) as typeof SpoolModule;
  const appendLog = (await load('src/storage/append-log.js')) as typeof AppendLogModule;
  return {
    label,
    loadConfig: config.loadConfig,
    Metrics: metrics.Metrics,
    openSpooledArchive: factory.openSpooledArchive,
    Spool: spool.Spool,
    AppendLog: appendLog.AppendLog,
  };
}

interface AckResult {
  writers: number;
  acks: number;
  acksPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackP999Ms: number;
  ackMaxMs: number;
  /** Share of the acked rows the archive had inserted when the writers stopped: the writer's work happened alongside the acks. */
  archivedDuring: number;
}

interface DrainResult {
  backlogRows: number;
  drainSeconds: number;
  drainRowsPerSec: number;
}

/** Every phase that ran on one store with one checkout's code. */
interface StoreResult {
  store: string;
  code: string;
  ack: AckResult | null;
  drain: DrainResult | null;
  busy: BusyResult | null;
}

interface BusyResult {
  offeredPerSec: number;
  ackedPerSec: number;
  archivedPerSec: number;
  /** Rows spooled, not yet archived, when the measured window started and ended. */
  spooledAtStart: number;
  spooledAtEnd: number;
  /** How fast that backlog grew over the window: about zero when the archive keeps up. */
  backlogGrowthPerSec: number;
  /** Mean length of an event-loop turn during the phase. */
  turnMs: number;
}

interface SpoolResult {
  code: string;
  writers: number;
  writeCallsPerSec: number;
  logRecordsPerSec: number;
  rowsPerRecord: number;
  /** Main-thread time per write call (event-loop active time over the phase): what a ping's spool write costs the loop. */
  mainThreadUsPerWrite: number;
}

function ping(tech: string, ts: number): ArchiveRecord {
  return { table: 'pings', row: { tech, ts, lat: 48.1, lon: 11.5, acc: 4, spd: 1.2, hdg: 80, bat: 0.7 } };
}

async function gauge(g: Gauge): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

async function counterSum(c: Counter): Promise<number> {
  return (await c.get()).values.reduce((s, v) => s + v.value, 0);
}

const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function withDataDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function ackLatency(impl: Impl, env: Record<string, string>): Promise<AckResult> {
  return withDataDir(async (dataDir) => {
    const metrics = new impl.Metrics();
    const archive = await impl.openSpooledArchive(impl.loadConfig({ ...env, DATA_DIR: dataDir }), log, metrics);
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000 });
    const t0 = Date.now() - 3_600_000;
    let acks = 0;
    const end = performance.now() + SECONDS * 1000;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; performance.now() < end; i++) {
        const started = performance.now();
        await archive.write([ping(`bench-${w}`, t0 + i)]);
        histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
        acks++;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    const elapsed = (performance.now() - started) / 1000;
    const archived = await counterSum(metrics.rowsArchived);
    await archive.close(30_000);
    const ms = (p: number): number => Math.round(histogram.getValueAtPercentile(p) / 10) / 100;
    const result = {
      writers: WRITERS,
      acks,
      acksPerSec: Math.round(acks / elapsed),
      ackP50Ms: ms(50),
      ackP99Ms: ms(99),
      ackP999Ms: ms(99.9),
      ackMaxMs: Math.round(histogram.maxValue / 10) / 100,
      archivedDuring: round(archived / acks, 2),
    };
    histogram.destroy();
    return result;
  });
}

async function drainRate(impl: Impl, baseEnv: Record<string, string>): Promise<DrainResult> {
  return withDataDir(async (dataDir) => {
    const env = { ...baseEnv, DATA_DIR: dataDir };
    // Fill: batches would wait 10 minutes, so everything stays in the spool.
    const filling = await impl.openSpooledArchive(
      impl.loadConfig({ ...env, ARCHIVE_BATCH_MS: '600000', ARCHIVE_BATCH_ROWS: '1000000' }),
      log,
      new impl.Metrics(),
    );
    const t0 = Date.now() - 3_600_000;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < BACKLOG; i += 1000) {
      writes.push(filling.write(Array.from({ length: 1000 }, (_, j) => ping(`drain-${j % 50}`, t0 + i + j))));
      if (writes.length >= 32) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await filling.close(0);

    const metrics = new impl.Metrics();
    const started = performance.now();
    const archive = await impl.openSpooledArchive(impl.loadConfig(env), log, metrics);
    const deadline = Date.now() + 60_000;
    while ((await gauge(metrics.spoolRows)) > 0) {
      if (Date.now() > deadline) throw new Error('backlog did not drain within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    await archive.close();
    return {
      backlogRows: BACKLOG,
      drainSeconds: round(seconds, 2),
      drainRowsPerSec: Math.round(BACKLOG / seconds),
    };
  });
}

/** Spins the CPU for `ms`: the stand-in for a turn's worth of message handling. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

/** Counters of the busy phase at one moment. */
interface BusySample {
  at: number;
  offered: number;
  acked: number;
  turns: number;
  archived: number;
  spooled: number;
}

async function busyDrain(impl: Impl, env: Record<string, string>): Promise<BusyResult> {
  return withDataDir(async (dataDir) => {
    const metrics = new impl.Metrics();
    const archive = await impl.openSpooledArchive(impl.loadConfig({ ...env, DATA_DIR: dataDir }), log, metrics);
    const t0 = Date.now() - 3_600_000;
    let offered = 0;
    let acked = 0;
    let failed = 0;
    let turns = 0;
    const sample = async (): Promise<BusySample> => {
      const counts = { at: performance.now(), offered, acked, turns };
      return { ...counts, archived: await counterSum(metrics.rowsArchived), spooled: await gauge(metrics.spoolRows) };
    };
    const started = performance.now();
    // The first seconds are not counted: the first batch waits ARCHIVE_BATCH_MS and the
    // schema is created then. What counts is whether the archive keeps up afterwards.
    const measureFrom = started + BUSY_WARMUP_S * 1000;
    const end = measureFrom + BUSY_SECONDS * 1000;
    let first: Promise<BusySample> | null = null;
    await new Promise<void>((done) => {
      const turn = (): void => {
        const now = performance.now();
        if (now >= end) {
          done();
          return;
        }
        if (first === null && now >= measureFrom) first = sample();
        turns++;
        spin(BUSY_MS);
        const due = Math.floor(((performance.now() - started) * RATE) / 1000);
        for (; offered < due; offered++) {
          // 2000 technicians, each one ping per write, as the actors spool them.
          archive.write([ping(`busy-${offered % 2000}`, t0 + offered)]).then(
            () => acked++,
            () => failed++,
          );
        }
        setImmediate(turn);
      };
      setImmediate(turn);
    });
    const last = await sample();
    const from = await first!;
    await archive.close(BUSY_CLOSE_MS);
    if (failed > 0) throw new Error(`busy drain: ${failed} writes failed`);
    const seconds = (last.at - from.at) / 1000;
    const perSec = (key: keyof BusySample): number => Math.round((last[key] - from[key]) / seconds);
    return {
      offeredPerSec: perSec('offered'),
      ackedPerSec: perSec('acked'),
      archivedPerSec: perSec('archived'),
      spooledAtStart: from.spooled,
      spooledAtEnd: last.spooled,
      backlogGrowthPerSec: perSec('spooled'),
      turnMs: round((last.at - from.at) / (last.turns - from.turns), 1),
    };
  });
}

/** Spool write calls/s and log records/s with WRITERS concurrent one-ping writers; no store. */
async function spoolRecords(impl: Impl): Promise<SpoolResult> {
  // Unmeasured first: whichever code runs first would otherwise pay for the warm-up.
  await spoolWrites(impl, 1);
  return spoolWrites(impl, Math.min(5, SECONDS));
}

async function spoolWrites(impl: Impl, seconds: number): Promise<SpoolResult> {
  return withDataDir(async (dir) => {
    const spool = await impl.Spool.open({ dir, maxBytes: 1 << 30 });
    const t0 = Date.now() - 3_600_000;
    let writes = 0;
    const started = performance.now();
    const end = started + seconds * 1000;
    const loopBefore = nodePerformance.eventLoopUtilization();
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; performance.now() < end; i++) {
        await spool.write([ping(`spool-${w}`, t0 + i)]);
        writes++;
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    const elapsed = (performance.now() - started) / 1000;
    const busyMs = nodePerformance.eventLoopUtilization(loopBefore).active;
    await spool.close();
    const logOnDisk = await impl.AppendLog.open({ dir });
    let records = 0;
    for await (const _ of logOnDisk.read()) records++;
    await logOnDisk.close();
    return {
      code: impl.label,
      writers: WRITERS,
      writeCallsPerSec: Math.round(writes / elapsed),
      logRecordsPerSec: Math.round(records / elapsed),
      rowsPerRecord: round(writes / records, 1),
      mainThreadUsPerWrite: round((busyMs * 1000) / writes, 1),
    };
  });
}

/** The ClickHouse version inside the chdb package, as the engine reports it. */
async function chdbVersion(): Promise<string> {
  const { query } = await import('chdb');
  return query('SELECT version()', 'TabSeparated').trim();
}

/** The version the ClickHouse server at `url` reports. */
async function serverVersion(url: string): Promise<string> {
  const res = await fetch(`${url}/?query=${encodeURIComponent('SELECT version()')}`);
  if (!res.ok) throw new Error(`SELECT version() answered ${res.status}`);
  return (await res.text()).trim();
}

/** Runs the chosen phases on one store, with each checkout's code in turn. */
async function bench(store: string, env: Record<string, string>, impls: Impl[]): Promise<StoreResult[]> {
  const fullEnv = { TRACKER_INSECURE_DEV: '1', ...env };
  const out: StoreResult[] = [];
  for (const impl of impls) {
    out.push({
      store,
      code: impl.label,
      ack: PHASES.has('ack') ? await ackLatency(impl, fullEnv) : null,
      drain: PHASES.has('drain') ? await drainRate(impl, fullEnv) : null,
      busy: PHASES.has('busy') ? await busyDrain(impl, fullEnv) : null,
    });
  }
  return out;
}

function table(header: string[], rows: (string | number)[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('');
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`archive-bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const impls = [await loadImpl('this checkout', join(import.meta.dirname, '..'))];
  if (args.baseline) impls.push(await loadImpl(`baseline ${args.baseline}`, join(resolve(args.baseline), 'dist')));

  const spool: SpoolResult[] = [];
  if (PHASES.has('spool')) for (const impl of impls) spool.push(await spoolRecords(impl));
  const results: StoreResult[] = [];
  if (STORES.has('chdb')) results.push(...(await bench(`chdb ${await chdbVersion()}`, {}, impls)));
  if (STORES.has('server')) {
    const server = await ClickHouseServer.launch();
    try {
      const store = `clickhouse-server ${await serverVersion(server.url)}`;
      results.push(...(await bench(store, { CLICKHOUSE_URL: server.url }, impls)));
    } finally {
      await server.destroy();
    }
  }

  const withAck = results.filter((r) => r.ack || r.drain);
  if (withAck.length > 0) {
    const dash = (n: number | undefined): number | string => n ?? '-';
    table(
      [
        'store',
        'code',
        'writers',
        'acks/s',
        'ack p50 ms',
        'ack p99 ms',
        'ack p99.9 ms',
        'ack max ms',
        'archived by then',
        'backlog rows',
        'drain s',
        'drain rows/s',
      ],
      withAck.map(({ store, code, ack, drain }) => [
        store,
        code,
        dash(ack?.writers),
        dash(ack?.acksPerSec),
        dash(ack?.ackP50Ms),
        dash(ack?.ackP99Ms),
        dash(ack?.ackP999Ms),
        dash(ack?.ackMaxMs),
        ack ? `${Math.round(ack.archivedDuring * 100)}%` : '-',
        dash(drain?.backlogRows),
        dash(drain?.drainSeconds),
        dash(drain?.drainRowsPerSec),
      ]),
    );
  }
  const withBusy = results.filter((r) => r.busy);
  if (withBusy.length > 0) {
    console.log(
      `Busy main thread, ${BUSY_SECONDS} s after ${BUSY_WARMUP_S} s of warm-up: ${BUSY_MS} ms of CPU per loop turn, ${RATE} pings/s offered, one write each`,
    );
    table(
      ['store', 'code', 'loop turn ms', 'acked/s', 'archived rows/s', 'backlog start → end', 'backlog growth rows/s'],
      withBusy.map(({ store, code, busy: b }) => [
        store,
        code,
        b!.turnMs,
        b!.ackedPerSec,
        b!.archivedPerSec,
        `${b!.spooledAtStart} → ${b!.spooledAtEnd}`,
        b!.backlogGrowthPerSec,
      ]),
    );
  }
  if (spool.length > 0) {
    console.log(`Spool alone: ${WRITERS} concurrent writers, one ping per write`);
    table(
      ['code', 'write calls/s', 'log records/s', 'rows per record', 'main thread µs per write'],
      spool.map((s) => [s.code, s.writeCallsPerSec, s.logRecordsPerSec, s.rowsPerRecord, s.mainThreadUsPerWrite]),
    );
  }
  if (spool.length > 1) {
    const [now, before] = spool as [SpoolResult, SpoolResult];
    console.log(
      `spool, this checkout / baseline: write calls/s ${round(now.writeCallsPerSec / before.writeCallsPerSec, 2)}x (bounded by fsync rounds), main-thread time per write ${round(now.mainThreadUsPerWrite / before.mainThreadUsPerWrite, 2)}x, log records per write ${round(1 / now.rowsPerRecord, 3)} / ${round(1 / before.rowsPerRecord, 3)}`,
    );
  }

  const out = join(import.meta.dirname, '..', '..', 'load', 'results');
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, args.out),
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        seconds: SECONDS,
        defaults: 'ARCHIVE_BATCH_ROWS=10000 ARCHIVE_BATCH_MS=1000',
        busy: { warmupSeconds: BUSY_WARMUP_S, seconds: BUSY_SECONDS, busyMsPerTurn: BUSY_MS, offeredPerSec: RATE },
        baseline: args.baseline ?? null,
        results,
        spool,
      },
      null,
      2,
    )}\n`,
  );
  clearTimeout(watchdog);
}

await main();

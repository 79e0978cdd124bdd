/**
 * Archive benchmark, for each store (embedded chDB, a throwaway Debian clickhouse-server):
 *
 * 1. ack latency: concurrent writers each spool one ping at a time for a fixed time with
 *    the default batch settings (the drainer runs meanwhile, as in production); latency
 *    percentiles come from an HDR histogram;
 * 2. drain rate: a backlog is spooled while nothing drains, then the archive is reopened
 *    with the default batch settings and timed until the spool is empty.
 *
 * Prints a Markdown table and writes JSON to load/results/archive-bench.json. Bounded in
 * time: every phase has a fixed duration or size, and a watchdog ends a stuck run.
 *
 * Usage: node dist/load/archive-bench.js [--seconds 10] [--writers 64] [--backlog 300000]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { type Config, loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { ArchiveRecord } from '../src/telemetry/archive.js';
import { openSpooledArchive } from '../src/telemetry/archive-factory.js';
import { ClickHouseServer } from '../test/support/clickhouse-server.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    writers: { type: 'string', default: '64' },
    backlog: { type: 'string', default: '300000' },
  },
});
const SECONDS = Number(args.seconds);
const WRITERS = Number(args.writers);
const BACKLOG = Number(args.backlog);
const WATCHDOG_MS = 110_000;

const log = createLogger('silent');

interface Result {
  store: string;
  writers: number;
  acks: number;
  acksPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackP999Ms: number;
  ackMaxMs: number;
  backlogRows: number;
  drainSeconds: number;
  drainRowsPerSec: number;
}

function ping(tech: string, ts: number): ArchiveRecord {
  return { table: 'pings', row: { tech, ts, lat: 48.1, lon: 11.5, acc: 4, spd: 1.2, hdg: 80, bat: 0.7 } };
}

async function spoolRows(metrics: Metrics): Promise<number> {
  return (await metrics.spoolRows.get()).values[0]?.value ?? 0;
}

async function ackLatency(
  config: Config,
): Promise<Pick<Result, 'acks' | 'acksPerSec' | 'ackP50Ms' | 'ackP99Ms' | 'ackP999Ms' | 'ackMaxMs'>> {
  const archive = await openSpooledArchive(config, log, new Metrics());
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
  await archive.close(30_000);
  const ms = (p: number): number => Math.round(histogram.getValueAtPercentile(p) / 10) / 100;
  const result = {
    acks,
    acksPerSec: Math.round(acks / elapsed),
    ackP50Ms: ms(50),
    ackP99Ms: ms(99),
    ackP999Ms: ms(99.9),
    ackMaxMs: Math.round(histogram.maxValue / 10) / 100,
  };
  histogram.destroy();
  return result;
}

async function drainRate(
  baseEnv: Record<string, string>,
): Promise<Pick<Result, 'drainSeconds' | 'drainRowsPerSec' | 'backlogRows'>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fieldtrack-bench-'));
  try {
    const env = { ...baseEnv, DATA_DIR: dataDir };
    // Fill: batches would wait 10 minutes, so everything stays in the spool.
    const filling = await openSpooledArchive(
      loadConfig({ ...env, ARCHIVE_BATCH_MS: '600000', ARCHIVE_BATCH_ROWS: '1000000' }),
      log,
      new Metrics(),
    );
    const t0 = Date.now() - 3_600_000;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < BACKLOG; i += 1000) {
      writes.push(filling.write(Array.from({ length: 1000 }, (_, j) => ping(`drain-${j % 50}`, t0 + i + j))));
      if (writes.length >= 32) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await filling.close(0);

    const metrics = new Metrics();
    const started = performance.now();
    const archive = await openSpooledArchive(loadConfig(env), log, metrics);
    const deadline = Date.now() + 60_000;
    while ((await spoolRows(metrics)) > 0) {
      if (Date.now() > deadline) throw new Error('backlog did not drain within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    await archive.close();
    return {
      backlogRows: BACKLOG,
      drainSeconds: Math.round(seconds * 100) / 100,
      drainRowsPerSec: Math.round(BACKLOG / seconds),
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
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

async function bench(store: string, env: Record<string, string>): Promise<Result> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fieldtrack-bench-'));
  try {
    const latency = await ackLatency(loadConfig({ TRACKER_INSECURE_DEV: '1', ...env, DATA_DIR: dataDir }));
    const drain = await drainRate({ TRACKER_INSECURE_DEV: '1', ...env });
    return { store, writers: WRITERS, ...latency, ...drain };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`archive-bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const results: Result[] = [await bench(`chdb ${await chdbVersion()}`, {})];
  const server = await ClickHouseServer.launch();
  try {
    results.push(await bench(`clickhouse-server ${await serverVersion(server.url)}`, { CLICKHOUSE_URL: server.url }));
  } finally {
    await server.destroy();
  }

  const header =
    '| store | writers | acks/s | ack p50 ms | ack p99 ms | ack p99.9 ms | ack max ms | backlog rows | drain s | drain rows/s |';
  console.log(header);
  console.log(
    `|${header
      .split('|')
      .slice(1, -1)
      .map(() => '---')
      .join('|')}|`,
  );
  for (const r of results) {
    console.log(
      `| ${r.store} | ${r.writers} | ${r.acksPerSec} | ${r.ackP50Ms} | ${r.ackP99Ms} | ${r.ackP999Ms} | ${r.ackMaxMs} | ${r.backlogRows} | ${r.drainSeconds} | ${r.drainRowsPerSec} |`,
    );
  }
  const out = join(import.meta.dirname, '..', '..', 'load', 'results');
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, 'archive-bench.json'),
    `${JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, defaults: 'ARCHIVE_BATCH_ROWS=10000 ARCHIVE_BATCH_MS=1000', results }, null, 2)}\n`,
  );
  clearTimeout(watchdog);
}

await main();

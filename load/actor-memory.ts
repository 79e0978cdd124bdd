/**
 * Memory cost of idle technicians: creates 100k technicians (one ping each) through the
 * real Tracker, forces GC and reports bytes per technician (heap and RSS deltas / N),
 * first with their actors live, then after passivation stopped them (plain records only).
 *
 * Run: npx tsc -p . && node --expose-gc dist/load/actor-memory.js [count]
 * Writes load/results/actor-memory.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorTracker } from '../src/actors/index.js';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { ComponentHealth } from '../src/outcome.js';
import type { TrackPoint } from '../src/protocol.js';
import { memorySharedState } from '../src/shared/shared-state.js';
import type { ArchiveRecord, OrderEventRecord } from '../src/telemetry/archive.js';

const N = Number(process.argv[2] ?? 100_000);
const CONCURRENCY = 2000;

/** An archive that accepts and forgets: the figure is about actors, not archived rows. */
const nullArchive = {
  async write(_records: ArchiveRecord[]): Promise<void> {},
  async track(): Promise<TrackPoint[]> {
    return [];
  },
  async orderEvents(): Promise<OrderEventRecord[]> {
    return [];
  },
  health(): ComponentHealth {
    return { ok: true };
  },
};

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) g();
}

function sample(): { heap: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-actor-memory-'));
  const clock = new ManualClock();
  const config = loadConfig({ TRACKER_INSECURE_DEV: '1', DATA_DIR: dir, LOG_LEVEL: 'silent' });
  const tracker = await ActorTracker.start({
    config,
    clock,
    log: createLogger('silent'),
    metrics: new Metrics(),
    archive: nullArchive,
    shared: memorySharedState(clock),
  });
  await tracker.settle();
  const base = sample();

  const t0 = clock.now();
  for (let i = 0; i < N; i += CONCURRENCY) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + CONCURRENCY); j++) {
      const lat = 45 + (j % 1000) / 1000;
      const lon = 4 + Math.floor(j / 1000) / 1000;
      batch.push(tracker.onDeviceMessage(`tech-${j}`, { t: 'ping', seq: 0, ts: t0, lat, lon, acc: 10 }));
    }
    const outs = await Promise.all(batch);
    if (outs.some((o) => !(o as { ok: boolean }).ok)) throw new Error('a ping was refused');
  }
  await tracker.settle();
  const live = sample();
  const liveActors = tracker.techs.liveCount;

  // Let passivation stop every idle actor; only the plain records stay.
  clock.advance(config.PASSIVATE_AFTER_MS * 1.5);
  await tracker.settle();
  const passive = sample();
  const passiveActors = tracker.techs.liveCount;

  const per = (s: { heap: number; rss: number }) => ({
    heapBytesPerTechnician: Math.round((s.heap - base.heap) / N),
    rssBytesPerTechnician: Math.round((s.rss - base.rss) / N),
  });
  const result = {
    technicians: N,
    node: process.version,
    date: new Date().toISOString(),
    liveActors: { actorsInMemory: liveActors, ...per(live) },
    passivated: { actorsInMemory: passiveActors, ...per(passive) },
    baseline: base,
  };
  console.log(
    `${N} technicians: ${result.liveActors.heapBytesPerTechnician} B heap / ${result.liveActors.rssBytesPerTechnician} B rss each with live actors; ` +
      `${result.passivated.heapBytesPerTechnician} B heap / ${result.passivated.rssBytesPerTechnician} B rss each once passivated`,
  );
  await mkdir(join(process.cwd(), 'load', 'results'), { recursive: true });
  await writeFile(join(process.cwd(), 'load', 'results', 'actor-memory.json'), `${JSON.stringify(result, null, 2)}\n`);
  await tracker.close();
  await rm(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

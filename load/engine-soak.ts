/**
 * The embedded archive engine on its own, without the node: chDB with the store's
 * settings (CHDB_CONNECTION_ARGS) takes the drainer's insert pattern (one batch of
 * `--rows` pings a second) for a bounded time, and this process's resident memory, the
 * engine's own tracked memory and its part counts are sampled every 10 s. It tells how
 * long the engine takes to reach its steady resident size, which sets the soak's warm-up.
 * Writes `load/results/engine-soak.json`; exits 1 when the series still grows once warm.
 *
 * `node dist/load/engine-soak.js [--minutes 15] [--rows 300] [--warmup-minutes 10]`
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChdbStore } from '../src/telemetry/chdb-store.js';
import { BatchEncoder, createTableStatements, dayOf } from '../src/telemetry/schema.js';
import { procStats } from './launch.js';
import { growthVerdict } from './soak-verdict.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '15' },
    rows: { type: 'string', default: '300' },
    'warmup-minutes': { type: 'string', default: '10' },
  },
});
const minutes = Number(values.minutes);
const rowsPerSec = Number(values.rows);
const warmupSec = Number(values['warmup-minutes']) * 60;
if (!(minutes > 0 && minutes <= 60)) throw new Error('--minutes is between 0 and 60');
if (!(rowsPerSec > 0)) throw new Error('--rows must be positive');
if (!(warmupSec >= 0 && warmupSec < minutes * 60)) throw new Error('--warmup-minutes must be shorter than the run');

interface Sample {
  atSec: number;
  rssMiB: number;
  engineTrackedMiB: number;
  activeParts: number;
  outdatedParts: number;
}

const rss = (): number => procStats(process.pid).rssBytes / 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-engine-soak-'));
const store = new ChdbStore(dir);
for (const sql of createTableStatements()) await store.exec(sql);

const startedAt = Date.now();
let inserted = 0;
let inserting = false;
const inserter = setInterval(() => {
  if (inserting) return; // one insert at a time, as the drainer does
  inserting = true;
  const encoder = new BatchEncoder();
  const now = Date.now();
  for (let i = 0; i < rowsPerSec; i++) {
    encoder.add({
      table: 'pings',
      row: { tech: `tech-${i}`, ts: now, lat: 48.85 + i * 1e-5, lon: 2.35, acc: 5, spd: 1, hdg: 90, bat: 0.5 },
    });
  }
  const [pings] = encoder.finish().tables;
  if (pings === undefined) throw new Error('no rows encoded');
  store.insert('pings', pings.columns, pings.body).then(
    () => {
      inserted += pings.rows;
      inserting = false;
    },
    (err: unknown) => {
      process.stderr.write(`insert failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}, 1000);

const samples: Sample[] = [];
async function sample(): Promise<void> {
  const [[tracked]] = (await store.query("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'")) as [
    [number],
  ];
  const parts = (await store.query(
    `SELECT active, count() FROM system.parts WHERE table = 'pings' AND partition = '${dayOf(Date.now())}' GROUP BY active`,
  )) as [number, number][];
  const count = (active: number): number => Number(parts.find(([a]) => Number(a) === active)?.[1] ?? 0);
  const s: Sample = {
    atSec: Math.round((Date.now() - startedAt) / 1000),
    rssMiB: +rss().toFixed(1),
    engineTrackedMiB: +(Number(tracked) / 2 ** 20).toFixed(1),
    activeParts: count(1),
    outdatedParts: count(0),
  };
  samples.push(s);
  process.stderr.write(
    `t=${s.atSec}s rss=${s.rssMiB} MiB engine=${s.engineTrackedMiB} MiB parts=${s.activeParts} ` +
      `outdated=${s.outdatedParts} rows=${inserted}\n`,
  );
}
const sampler = setInterval(() => void sample(), 10_000);
await new Promise((r) => setTimeout(r, minutes * 60_000));
clearInterval(inserter);
clearInterval(sampler);
await sample();
await store.close();
rmSync(dir, { recursive: true, force: true });

const warm = samples.filter((s) => s.atSec >= warmupSec);
const rssVerdict = growthVerdict(warm.map((s) => [s.atSec, s.rssMiB]));
// Where the climb stops: the first sample at or above the warm phase's first-third median.
const settledAtSec = samples.find((s) => s.rssMiB >= rssVerdict.firstThirdMedian)?.atSec ?? null;
const report = {
  when: new Date().toISOString(),
  minutes,
  rowsPerSec,
  warmupSec,
  inserted,
  rssMiB: { atStart: samples[0]?.rssMiB, ...rssVerdict },
  settledAtSec,
  engineTrackedMiB: growthVerdict(warm.map((s) => [s.atSec, s.engineTrackedMiB])),
  samples,
};
const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results', 'engine-soak.json');
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
const { samples: _omitted, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
process.exit(rssVerdict.growing ? 1 : 0);

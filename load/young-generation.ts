/**
 * `npm run bench:young`: what the node's young-generation size (`--max-semi-space-size`,
 * src/node-flags.ts) does to the ping path. For each size, in alternating rounds so that
 * whatever else the machine does falls on every size alike, a fresh node runs the bench's
 * closed loop (2,000 devices, one ping in flight each) and reports acks/s, server CPU per
 * ping, the share of the time in GC pauses and the resident memory once the devices are
 * connected. Writes `load/results/young-generation.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launch } from './launch.js';
import { runSim } from './sim.js';
import { median } from './soak-verdict.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '16,64' },
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !(rounds >= 1) || !(seconds >= 1)) {
  throw new Error('--sizes wants MiB as integers (16,64), --rounds and --seconds positive numbers');
}

interface Run {
  semiSpaceMiB: number;
  round: number;
  acksPerSec: number;
  cpuUsPerPing: number;
  gcShare: number | null;
  rssConnectedMiB: number;
}

const runs: Run[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const size of sizes) {
    // After the node's own flags (load/launch.ts): the last value of a V8 flag wins.
    const server = await launch('full', {}, [`--max-semi-space-size=${size}`]);
    try {
      const r = await runSim(server, { devices: 2000, pingHz: 0, window: 1, seconds, jobShare: 0 });
      runs.push({
        semiSpaceMiB: size,
        round,
        acksPerSec: r.acksPerSec,
        cpuUsPerPing: Math.round(r.server.cpuSecPer1000Pings * 1000 * 10) / 10,
        gcShare: r.server.gc?.share ?? null,
        rssConnectedMiB: Math.round(r.server.rssConnectedBytes / 2 ** 20),
      });
      process.stderr.write(`${JSON.stringify(runs.at(-1))}\n`);
    } finally {
      await server.stop();
    }
  }
}

const bySize = sizes.map((size) => {
  const mine = runs.filter((r) => r.semiSpaceMiB === size);
  return {
    semiSpaceMiB: size,
    medianAcksPerSec: median(mine.map((r) => r.acksPerSec)),
    medianCpuUsPerPing: median(mine.map((r) => r.cpuUsPerPing)),
    medianGcShare: median(mine.map((r) => r.gcShare ?? Number.NaN)),
    medianRssConnectedMiB: median(mine.map((r) => r.rssConnectedMiB)),
  };
});
const result = { at: new Date().toISOString(), devices: 2000, seconds, rounds, bySize, runs };
const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results', 'young-generation.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(bySize, null, 2)}\n`);

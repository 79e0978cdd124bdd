/**
 * Soak test: steady load plus connection churn on the full server for a bounded time,
 * sampling the server's resident memory, JS heap and open file descriptors. After a
 * warm-up, a steady climb of any of them means a leak. Stops by itself, writes
 * `load/results/soak.json` and exits 1 when the verdict is "growing".
 *
 * `npm run soak -- --minutes 25 --devices 300 --hz 1 --churn 10 [--archive chdb|server]`
 * (churn: connections closed and reopened per second; `--archive server` runs the
 * archive on a throwaway clickhouse-server instead of the embedded chDB, to tell the
 * node's own memory from the embedded engine's).
 */
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeviceClient, SafetyClient } from '../src/client/index.js';
import { ClickHouseServer } from '../test/support/clickhouse-server.js';
import { launch, metricValue, mint } from './launch.js';
import { growthVerdict, type Series } from './soak-verdict.js';

interface Sample {
  atSec: number;
  rssMiB: number;
  heapMiB: number;
  externalMiB: number;
  fds: number;
  acked: number;
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: process.env.SOAK_MINUTES ?? '25' },
    devices: { type: 'string', default: '300' },
    hz: { type: 'string', default: '1' },
    churn: { type: 'string', default: '10' },
    'warmup-minutes': { type: 'string', default: '' },
    archive: { type: 'string', default: 'chdb' },
    out: { type: 'string', default: '' },
  },
});
const minutes = Number(values.minutes);
const devices = Number(values.devices);
const hz = Number(values.hz);
const churnPerSec = Number(values.churn);
// The embedded ClickHouse engine's resident size settles about 8 minutes into a run (its
// allocator and part cleanup cycles; measured with the engine alone, without the node),
// so by default the first 40% of the run, at most 10 minutes, is warm-up.
const warmupSec = values['warmup-minutes'] ? Number(values['warmup-minutes']) * 60 : Math.min(600, minutes * 24);
for (const [name, n] of Object.entries({ minutes, devices, hz, churn: churnPerSec })) {
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number`);
}
if (minutes > 60) throw new Error('--minutes is at most 60: a soak is bounded');
if (values.archive !== 'chdb' && values.archive !== 'server') throw new Error('--archive is chdb or server');
const here = dirname(fileURLToPath(import.meta.url));
const outFile = values.out || join(here, '..', '..', 'load', 'results', `soak-${values.archive}.json`);

/** Open descriptors of `pid` by kind (socket, pipe, anon_inode:[eventfd], or a file's folder). */
function fdKinds(pid: number, dataDir: string): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while listing
    }
    let kind = target.replace(/\[\d+\]$/, '');
    if (target.startsWith('/'))
      kind = dirname(target)
        .replace(dataDir, 'DATA_DIR')
        .replace(/\d{4,}/g, 'N');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

const ch = values.archive === 'server' ? await ClickHouseServer.launch() : undefined;
const server = await launch('full', { LOG_LEVEL: 'info', ...(ch ? { CLICKHOUSE_URL: ch.url } : {}) });
const pid = server.child.pid as number;
const startedAt = Date.now();
const endAt = startedAt + minutes * 60_000;
let acked = 0;
let errors = 0;
let reconnects = 0;

const clients: DeviceClient[] = [];
async function connect(i: number): Promise<DeviceClient> {
  const c = new DeviceClient({ url: server.wsUrl, token: await mint(`soak-${i}`, 'device') });
  await c.connect();
  return c;
}
for (let i = 0; i < devices; i++) clients.push(await connect(i));
const consoleClient = new SafetyClient({ url: server.wsUrl, token: await mint('soak-console', 'safety') });
await consoleClient.connect();

let lat = 48.85;
const pinger = setInterval(() => {
  lat += 0.00001;
  for (const c of clients) {
    c.ping({ ts: Date.now(), lat, lon: 2.35 }).then(
      (r) => {
        if (r.t === 'ack') acked++;
        else errors++;
      },
      () => {
        // Closed by churn while the ping was in flight: not an error of the server.
      },
    );
  }
}, 1000 / hz);

let cursor = 0;
const churner = setInterval(() => {
  for (let k = 0; k < churnPerSec; k++) {
    const i = cursor++ % devices;
    const old = clients[i] as DeviceClient;
    void old.close().then(async () => {
      clients[i] = await connect(i);
      reconnects++;
    });
  }
}, 1000);

const samples: Sample[] = [];
let fdsAtWarm: Record<string, number> | undefined;
const sample = async (): Promise<void> => {
  const { rssBytes } = server.stats();
  const metrics = await server.metrics();
  const mib = (bytes: number): number => +(bytes / 2 ** 20).toFixed(1);
  const s: Sample = {
    atSec: Math.round((Date.now() - startedAt) / 1000),
    rssMiB: mib(rssBytes),
    heapMiB: mib(metricValue(metrics, 'fieldtrack_nodejs_heap_size_used_bytes')),
    externalMiB: mib(metricValue(metrics, 'fieldtrack_nodejs_external_memory_bytes')),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    acked,
  };
  samples.push(s);
  if (fdsAtWarm === undefined && s.atSec >= warmupSec) fdsAtWarm = fdKinds(pid, server.dataDir);
  process.stderr.write(
    `t=${s.atSec}s rss=${s.rssMiB} MiB heap=${s.heapMiB} MiB external=${s.externalMiB} MiB fds=${s.fds} ` +
      `acked=${acked} errors=${errors} reconnects=${reconnects}\n`,
  );
};
await sample();
const sampler = setInterval(() => void sample(), 10_000);

await new Promise((r) => setTimeout(r, endAt - Date.now()));
clearInterval(pinger);
clearInterval(churner);
clearInterval(sampler);
await sample();
const fdsAtEnd = fdKinds(pid, server.dataDir);
await Promise.allSettled([...clients.map((c) => c.close()), consoleClient.close()]);
await server.stop();
await ch?.destroy();

const warm = samples.filter((s) => s.atSec >= warmupSec);
const series = (pick: (s: Sample) => number): Series => warm.map((s) => [s.atSec, pick(s)]);
const verdicts = {
  rssMiB: growthVerdict(series((s) => s.rssMiB)),
  heapMiB: growthVerdict(series((s) => s.heapMiB)),
  fds: growthVerdict(series((s) => s.fds)),
};
const fdGrowth: Record<string, number> = {};
for (const kind of new Set([...Object.keys(fdsAtWarm ?? {}), ...Object.keys(fdsAtEnd)])) {
  const d = (fdsAtEnd[kind] ?? 0) - (fdsAtWarm?.[kind] ?? 0);
  if (d !== 0) fdGrowth[kind] = d;
}
const growing = Object.values(verdicts).some((v) => v.growing);
const report = {
  when: new Date().toISOString(),
  archive: values.archive,
  minutes,
  devices,
  hz,
  churnPerSec,
  warmupSec,
  acked,
  errors,
  reconnects,
  verdict: acked === 0 ? 'not measured' : errors > 0 ? 'errors' : growing ? 'growing' : 'flat',
  verdicts,
  fdsAtWarm,
  fdsAtEnd,
  fdGrowth,
  samples,
};
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
const { samples: _omitted, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
process.stderr.write(`soak: ${report.verdict}; written to ${outFile}\n`);
process.exit(report.verdict === 'flat' ? 0 : 1);

/**
 * Soak test: steady load plus connection churn on the full server for a bounded time,
 * sampling the server's resident memory and open file descriptors from /proc. After a
 * warm-up, growth of either means a leak. Stops by itself.
 *
 * `npm run soak -- --minutes 10 --devices 300 --hz 1 --churn 10`
 * (churn: connections closed and reopened per second).
 */
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DeviceClient, SafetyClient } from '../src/client/index.js';
import { launch, mint } from './launch.js';

interface Sample {
  atSec: number;
  rssMiB: number;
  fds: number;
  acked: number;
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: process.env.SOAK_MINUTES ?? '10' },
    devices: { type: 'string', default: '300' },
    hz: { type: 'string', default: '1' },
    churn: { type: 'string', default: '10' },
    'warmup-minutes': { type: 'string', default: '' },
  },
});
const minutes = Number(values.minutes);
const devices = Number(values.devices);
const hz = Number(values.hz);
const churnPerSec = Number(values.churn);
const warmupSec = values['warmup-minutes'] ? Number(values['warmup-minutes']) * 60 : Math.min(120, minutes * 12);
for (const [name, n] of Object.entries({ minutes, devices, hz, churn: churnPerSec })) {
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number`);
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

const server = await launch('full', { LOG_LEVEL: 'info' });
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
const sample = (): void => {
  const { rssBytes } = server.stats();
  samples.push({
    atSec: Math.round((Date.now() - startedAt) / 1000),
    rssMiB: +(rssBytes / 2 ** 20).toFixed(1),
    fds: fdCount(pid),
    acked,
  });
  const s = samples.at(-1) as Sample;
  process.stderr.write(
    `t=${s.atSec}s rss=${s.rssMiB} MiB fds=${s.fds} acked=${acked} errors=${errors} reconnects=${reconnects}\n`,
  );
};
sample();
const sampler = setInterval(sample, 10_000);

await new Promise((r) => setTimeout(r, endAt - Date.now()));
clearInterval(pinger);
clearInterval(churner);
clearInterval(sampler);
sample();
await Promise.allSettled([...clients.map((c) => c.close()), consoleClient.close()]);
await server.stop();

const warm = samples.filter((s) => s.atSec >= warmupSec);
const first = warm[0] ?? (samples[0] as Sample);
const last = samples.at(-1) as Sample;
const maxWarm = Math.max(...warm.map((s) => s.rssMiB));
const report = {
  minutes,
  devices,
  hz,
  churnPerSec,
  warmupSec,
  acked,
  errors,
  reconnects,
  rssMiB: {
    atWarm: first.rssMiB,
    end: last.rssMiB,
    maxAfterWarm: maxWarm,
    growthAfterWarm: +(last.rssMiB - first.rssMiB).toFixed(1),
  },
  fds: { atWarm: first.fds, end: last.fds, growthAfterWarm: last.fds - first.fds },
  samples,
};
console.log(JSON.stringify(report, null, 2));

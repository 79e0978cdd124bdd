/**
 * `npm run bench:share`: does a node holding many open customer streams
 * (`/t/<token>/stream`) answer its devices as fast as without them? Issue 17's target:
 * 5,000 open streams must not raise the device ack p99 by more than 10%.
 *
 * One node; `--devices` technicians, each with a departed order, pinging at `--hz` towards
 * their customer (so every ping changes the state of an order that has streams); each
 * order gets a link. After a warm-up, `--rounds` rounds each run `--seconds` with no stream
 * open, then the same with `--streams` streams open, spread evenly over the orders (each
 * receives every change of its order, as a customer's page would; they are read in a
 * process of their own, share-stream-readers.ts), then close them. Alternating the two
 * arms in short phases, rather than one long phase each, spreads over both whatever else
 * the machine does meanwhile. Each arm's acks are pooled over its rounds (a ping belongs
 * to the phase it was sent in). The ack p99 is measured twice per arm: by the devices
 * (send to ack, in this process) and by the node itself
 * (`fieldtrack_ack_latency_seconds`, a bucket bound). Each round has a third, control arm
 * that is not part of the verdict: the same streams opened at another process
 * (share-stream-blaster.ts) that writes them as the node would, while the node serves the
 * devices with no stream open; it tells how much of the rise is the machine's (loopback,
 * the customers' process, a second busy CPU) and how much the node's own. `npm run bench`
 * runs it as one of its scenarios (its section of bench.md, `share` in bench.json);
 * `npm run bench:share` runs it alone and writes `load/results/share-streams.json`.
 */

import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeviceClient } from '../src/client/index.js';
import { latencyHistogram, launch, metricValue, mint, procStats, runQueueWaitNs } from './launch.js';
import { windowQuantileBound, windowsQuantileBound } from './prom-histogram.js';

/** The scenario's size; the defaults are the issue's (5,000 streams), `npm run bench` runs them. */
export interface ShareBenchOptions {
  devices: number;
  streams: number;
  /** Length of each phase. */
  seconds: number;
  rounds: number;
  /** Pings per second per device. */
  hz: number;
  /** Write a V8 CPU profile of the node into this folder. */
  cpuProfile?: string;
}

export const SHARE_BENCH_DEFAULTS: ShareBenchOptions = { devices: 500, streams: 5000, seconds: 10, rounds: 3, hz: 1 };

/** The scenario's target: the device ack p99 with the streams open at most this times without. */
export const SHARE_TARGET_RATIO = 1.1;
/** The customers' process runs at this niceness (the lowest priority), and under SCHED_IDLE where `chrt` can set it. */
const READERS_NICE = 19;
/** Past this share of a round with some task waiting for a CPU, the machine was too busy for a verdict. */
const BUSY_STALL_SHARE = 0.5;
/** After the streams opened or closed (as the node counts them), this long before a phase starts. */
const SETTLE_MS = 2000;
const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round2 = (x: number) => Math.round(x * 100) / 100;
/**
 * Microseconds some task on this machine waited for `what` (Linux pressure stall
 * information), so a phase's result shows how busy the shared machine was; null without PSI.
 */
const stalledUs = (what: 'cpu' | 'io'): number | null => {
  try {
    const some = /^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${what}`, 'utf8'));
    return some ? Number(some[1]) : null;
  } catch {
    return null;
  }
};
const pressure = () => ({ cpu: stalledUs('cpu'), io: stalledUs('io') });
/** The share of `ms` during which some task waited, from two `pressure()` readings. */
const stalledShare = (a: number | null, b: number | null, ms: number) =>
  a === null || b === null ? null : round2((b - a) / 1000 / ms);
const cpuSec = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
/**
 * Puts every thread of process `pid` under SCHED_IDLE (`chrt`, util-linux): it then runs
 * only on a CPU nothing else wants, and a node or device thread that wakes takes the CPU
 * from it at once, which nice 19 alone does not promise. Phones are on other machines; this
 * is as close as one machine gets. Returns the policy the readers ended up with.
 */
const idleSchedule = (pid: number): 'SCHED_IDLE' | 'nice 19 (chrt failed)' => {
  try {
    execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(pid)], { stdio: 'pipe' });
    return 'SCHED_IDLE';
  } catch (err) {
    process.stderr.write(`share-streams: chrt --idle failed (${(err as Error).message}); readers at nice 19 only\n`);
    return 'nice 19 (chrt failed)';
  }
};

/** Runs the scenario (see the module comment) on a node of its own and returns its figures. */
export async function runShareBench(o: ShareBenchOptions) {
  const { devices: DEVICES, streams: STREAMS, seconds: SECONDS, rounds: ROUNDS, hz: HZ } = o;
  const perOrder = Math.ceil(STREAMS / DEVICES);
  const profile = o.cpuProfile;
  const node = await launch(
    'full',
    {
      SHARE_MAX_STREAMS: String(STREAMS + 100),
      SHARE_MAX_STREAMS_PER_ORDER: String(perOrder + 1),
    },
    profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [],
  );
  const dispatch = await mint('bench-dispatch', 'dispatch');
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(node.httpUrl + path, {
      method,
      headers: { authorization: `Bearer ${dispatch}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<{ token: string }>;
  };

  process.stderr.write(
    `share-streams: ${DEVICES} devices at ${HZ} Hz, ${STREAMS} streams, ${ROUNDS} rounds of ${SECONDS} s without and ${SECONDS} s with\n`,
  );
  const devices: Array<{ client: DeviceClient; home: { lat: number; lon: number }; step: number }> = [];
  const tokens: string[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const home = { lat: 52.3 + (i % 50) * 0.01, lon: 13.1 + Math.floor(i / 50) * 0.01 };
    await api('PUT', `/v1/orders/o-${i}`, {
      technician: `t-${i}`,
      ...home,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 60,
    });
    tokens.push((await api('POST', `/v1/orders/o-${i}/share`)).token);
    const client = new DeviceClient({ url: node.wsUrl, token: await mint(`t-${i}`, 'device') });
    await client.connect();
    await client.depart(`o-${i}`);
    devices.push({ client, home, step: 0 });
  }

  /** The phase a ping is sent in records its ack there (by send time); null between phases. */
  type Recording = { hist: ReturnType<typeof latencyHistogram>; acked: number };
  let current = null as Recording | null;
  /** Pings answered with an error, by code: the load is what was acked, not what was sent. */
  const refused: Record<string, number> = {};
  let running = true;
  const pinger = (async () => {
    let ts = Date.now();
    while (running) {
      const round = Date.now();
      for (const [i, d] of devices.entries()) {
        // Spread over the period, as phones are: all devices at once is a burst past the
        // node's in-flight floor (SHED_MIN_IN_FLIGHT), and most of it would be refused.
        const wait = round + (i * 1000) / HZ / devices.length - Date.now();
        if (wait >= 1) await sleep(wait);
        if (!running) break;
        ts = Math.max(ts + 1, Date.now());
        d.step++;
        // From 20 km north towards home, 10 m per ping: every ping moves the position and the ETA.
        const north = Math.max(0, 20_000 - d.step * 10) / 111_195;
        const sent = performance.now();
        const into = current;
        void d.client.ping({ ts, lat: d.home.lat + north, lon: d.home.lon, acc: 5 }).then((reply) => {
          if (reply.t !== 'ack') {
            refused[reply.code] = (refused[reply.code] ?? 0) + 1;
            return;
          }
          if (into === null) return;
          into.acked++;
          into.hist.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)));
        });
      }
      await sleep(Math.max(0, 1000 / HZ - (Date.now() - round)));
    }
  })();

  // The customers read their streams in a process of their own (share-stream-readers.ts).
  const readers = fork(join(here, 'share-stream-readers.js'), [
    JSON.stringify({ httpUrl: node.httpUrl, tokens, streams: STREAMS }),
  ]);
  // The customers stand for phones elsewhere: on this machine they get a CPU only after the
  // node and the devices, so that waking them (each write to a stream does) does not take
  // the node's CPU. Their events per second show whether they kept up.
  setPriority(readers.pid as number, READERS_NICE);
  const readersPolicy = idleSchedule(readers.pid as number);
  const ask = (t: string, answer: string, extra: { url?: string } = {}) =>
    new Promise<{ t: string; open?: number; failed?: number; events?: number }>((resolve) => {
      const on = (m: { t: string }) => {
        if (m.t !== answer) return;
        readers.off('message', on);
        resolve(m);
      };
      readers.on('message', on);
      readers.send({ t, ...extra });
    });
  // The control arm's server (share-stream-blaster.ts): the same streams and writes from a
  // process that is not the node, frames as long as the node's.
  const stateBody = await (await fetch(`${node.httpUrl}/t/${tokens[0]}/state`)).text();
  const blaster = fork(join(here, 'share-stream-blaster.js'), [
    JSON.stringify({ tokens, hz: HZ, frameBytes: Buffer.byteLength(`data: ${stateBody}\n\n`) }),
  ]);
  const blasterUrl = await new Promise<string>((resolve, reject) => {
    blaster.once('message', (m: { t: string; port: number }) => resolve(`http://127.0.0.1:${m.port}`));
    blaster.once('exit', () => reject(new Error('the control arm server exited before listening')));
  });
  const cpuNow = () => ({
    node: node.stats().cpuSec,
    devices: cpuSec(process.cpuUsage()),
    readers: procStats(readers.pid as number).cpuSec,
    nodeWaitNs: runQueueWaitNs(node.child.pid as number),
    devicesWaitNs: runQueueWaitNs(process.pid),
  });
  /** Waits until the node counts `open` streams (`fieldtrack_share_streams`), then SETTLE_MS more. */
  const settle = async (open: number) => {
    const deadline = Date.now() + 60_000;
    while (metricValue(await node.metrics(), 'fieldtrack_share_streams') !== open) {
      if (Date.now() > deadline) throw new Error(`the node never counted ${open} open streams`);
      await sleep(100);
    }
    await sleep(SETTLE_MS);
  };

  type Arm = {
    hist: ReturnType<typeof latencyHistogram>;
    acked: number;
    windows: Array<{ before: string; after: string }>;
    cpu: { node: number; devices: number; readers: number; nodeWaitNs: number; devicesWaitNs: number };
    events: number;
    rounds: Array<{
      clientP99Ms: number;
      nodeP99BoundMs: number | null;
      nodeWaitMsPerSec: number;
      stalled: { cpu: number | null; io: number | null };
    }>;
  };
  const arm = (): Arm => ({
    hist: latencyHistogram(),
    acked: 0,
    windows: [],
    cpu: { node: 0, devices: 0, readers: 0, nodeWaitNs: 0, devicesWaitNs: 0 },
    events: 0,
    rounds: [],
  });
  const arms = { quiet: arm(), streams: arm(), control: arm() };
  const armName = (a: Arm) =>
    a === arms.quiet
      ? 'no streams'
      : a === arms.streams
        ? `${STREAMS} streams`
        : `control: ${STREAMS} streams elsewhere`;
  /** One phase of `SECONDS` into `a`: its acks (by send time), the node's histogram, CPU and events. */
  const phase = async (a: Arm) => {
    const own = { hist: latencyHistogram(), acked: 0 };
    const before = await node.metrics();
    const cpuBefore = cpuNow();
    const eventsBefore = (await ask('count', 'events')).events ?? 0;
    const stallsBefore = pressure();
    current = own;
    await sleep(SECONDS * 1000);
    current = null;
    const stallsAfter = pressure();
    const cpuAfter = cpuNow();
    const eventsAfter = (await ask('count', 'events')).events ?? 0;
    // The last pings' acks, before the next phase's change of streams.
    await sleep(500);
    const after = await node.metrics();
    a.hist.add(own.hist);
    a.acked += own.acked;
    a.windows.push({ before, after });
    for (const k of ['node', 'devices', 'readers', 'nodeWaitNs', 'devicesWaitNs'] as const)
      a.cpu[k] += cpuAfter[k] - cpuBefore[k];
    a.events += eventsAfter - eventsBefore;
    const nodeP99 = windowQuantileBound(before, after, 'fieldtrack_ack_latency_seconds', 0.99);
    const round = {
      clientP99Ms: own.hist.getValueAtPercentile(99) / 1000,
      nodeP99BoundMs: nodeP99 === null ? null : nodeP99 * 1000,
      // Milliseconds per second the node's main thread waited for a CPU while runnable.
      nodeWaitMsPerSec: round2((cpuAfter.nodeWaitNs - cpuBefore.nodeWaitNs) / 1e6 / SECONDS),
      // Share of the phase during which some task on the machine waited for a CPU, for the disk.
      stalled: {
        cpu: stalledShare(stallsBefore.cpu, stallsAfter.cpu, SECONDS * 1000),
        io: stalledShare(stallsBefore.io, stallsAfter.io, SECONDS * 1000),
      },
    };
    a.rounds.push(round);
    process.stderr.write(`${armName(a)}: ${JSON.stringify(round)}\n`);
  };
  const summary = (a: Arm, name: string) => {
    const nodeP99 = windowsQuantileBound(a.windows, 'fieldtrack_ack_latency_seconds', 0.99);
    const measured = SECONDS * ROUNDS;
    return {
      phase: name,
      acks: a.acked,
      clientP50Ms: a.hist.getValueAtPercentile(50) / 1000,
      clientP99Ms: a.hist.getValueAtPercentile(99) / 1000,
      nodeP99BoundMs: nodeP99 === null ? null : nodeP99 * 1000,
      // Share of one core each process used during the phases (the machine has two).
      cpuCores: {
        node: round2(a.cpu.node / measured),
        devices: round2(a.cpu.devices / measured),
        readers: round2(a.cpu.readers / measured),
      },
      // Milliseconds per second the main thread of the node, of the devices' process, waited
      // for a CPU while runnable (their schedstat): the machine's share of the latency.
      runQueueWaitMsPerSec: {
        node: round2(a.cpu.nodeWaitNs / 1e6 / measured),
        devices: round2(a.cpu.devicesWaitNs / 1e6 / measured),
      },
      streamEventsPerSec: Math.round(a.events / measured),
      rounds: a.rounds,
    };
  };

  // Warm-up as long as an arm: the first seconds after connecting (JIT, the archive's first
  // merges) are slower, and would make the phase without streams look worse than it is.
  await sleep(SECONDS * ROUNDS * 1000);
  for (let r = 0; r < ROUNDS; r++) {
    await phase(arms.quiet);
    process.stderr.write(`opening ${STREAMS} streams\n`);
    const opened = await ask('open', 'open');
    if (opened.open !== STREAMS) throw new Error(`only ${opened.open} of ${STREAMS} streams opened`);
    await settle(STREAMS);
    await phase(arms.streams);
    await ask('close', 'closed');
    await settle(0);
    process.stderr.write(`opening ${STREAMS} streams at the control arm's server\n`);
    const elsewhere = await ask('open', 'open', { url: blasterUrl });
    if (elsewhere.open !== STREAMS) throw new Error(`only ${elsewhere.open} of ${STREAMS} control streams opened`);
    await sleep(SETTLE_MS);
    await phase(arms.control);
    await ask('close', 'closed');
    await sleep(SETTLE_MS);
  }
  const a = summary(arms.quiet, armName(arms.quiet));
  const b = summary(arms.streams, armName(arms.streams));
  const c = summary(arms.control, armName(arms.control));

  running = false;
  await pinger;
  readers.send({ t: 'stop' });
  blaster.send({ t: 'stop' });
  for (const d of devices) await d.client.close();
  await node.stop();

  const ratio = a.clientP99Ms > 0 ? b.clientP99Ms / a.clientP99Ms : null;
  // A round during which other work kept tasks waiting for a CPU more than half the time
  // measures that work, not the streams: then no verdict.
  const busy = [...a.rounds, ...b.rounds, ...c.rounds].some((r) => (r.stalled.cpu ?? 0) > BUSY_STALL_SHARE);
  const result = {
    at: new Date().toISOString(),
    devices: DEVICES,
    hz: HZ,
    streams: STREAMS,
    rounds: ROUNDS,
    secondsPerPhase: SECONDS,
    readersNice: READERS_NICE,
    readersPolicy,
    phases: [a, b, c],
    pingsRefused: refused,
    clientP99Ratio: ratio,
    // Not part of the verdict: the same streams served by another process, with none on the
    // node. Its ratio to the quiet arm is what the machine adds (kernel, customers, CPUs);
    // the streams arm over it is the node's own part.
    controlClientP99Ratio: a.clientP99Ms > 0 ? c.clientP99Ms / a.clientP99Ms : null,
    streamsOverControlClientP99Ratio: c.clientP99Ms > 0 ? b.clientP99Ms / c.clientP99Ms : null,
    target: `device ack p99 with the streams open at most ${SHARE_TARGET_RATIO.toFixed(2)}x without`,
    verdict: (ratio === null || b.acks === 0 || a.acks === 0 || c.acks === 0
      ? 'not measured'
      : busy
        ? 'not measured (machine busy)'
        : ratio <= SHARE_TARGET_RATIO
          ? 'met'
          : 'missed') as 'met' | 'missed' | 'not measured' | 'not measured (machine busy)',
  };
  return result;
}

export type ShareBenchResult = Awaited<ReturnType<typeof runShareBench>>;

/** The scenario's section of bench.md: each arm, then the ratios and the verdict. */
export function shareTable(r: ShareBenchResult): string[] {
  const ratio = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
  return [
    `## Customer streams: ${r.streams} open share streams (issue 17)`,
    '',
    `One node, ${r.devices} devices pinging ${r.hz === 1 ? 'once a second' : `${r.hz} times a second`} towards the customers of their departed orders, so every ping changes a watched order. ${r.rounds} round(s) of ${r.secondsPerPhase} s per arm: no streams, ${r.streams} streams on the orders' links, and a control arm outside the verdict (the same streams served by another process, none by the node). Customers' process: ${r.readersPolicy}. Ack latencies as the devices measure them; the node's own p99 bound in brackets.`,
    '',
    '| arm | pings acked | ack p50 | ack p99 (node) | stream events/s | CPU cores: node / devices / customers |',
    '|---|---|---|---|---|---|',
    ...r.phases.map(
      (p) =>
        `| ${p.phase} | ${p.acks} | ${p.clientP50Ms.toFixed(1)} ms | ${p.clientP99Ms.toFixed(1)} ms (<= ${p.nodeP99BoundMs ?? 'n/a'} ms) | ${p.streamEventsPerSec} | ${p.cpuCores.node} / ${p.cpuCores.devices} / ${p.cpuCores.readers} |`,
    ),
    '',
    `Device ack p99 with the streams over without: **${ratio(r.clientP99Ratio)}** (target at most ${SHARE_TARGET_RATIO.toFixed(2)}x): **${r.verdict}**. Control over without: ${ratio(r.controlClientP99Ratio)} (the machine's part); streams over control: ${ratio(r.streamsOverControlClientP99Ratio)} (the node's own part).`,
  ];
}

/** `npm run bench:share`: the scenario alone, written to `load/results/share-streams.json`. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: String(SHARE_BENCH_DEFAULTS.devices) },
      streams: { type: 'string', default: String(SHARE_BENCH_DEFAULTS.streams) },
      seconds: { type: 'string', default: String(SHARE_BENCH_DEFAULTS.seconds) },
      rounds: { type: 'string', default: String(SHARE_BENCH_DEFAULTS.rounds) },
      hz: { type: 'string', default: String(SHARE_BENCH_DEFAULTS.hz) },
      'cpu-prof': { type: 'string' },
    },
  });
  const result = await runShareBench({
    devices: Number(values.devices),
    streams: Number(values.streams),
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    hz: Number(values.hz),
    ...(values['cpu-prof'] === undefined ? {} : { cpuProfile: values['cpu-prof'] }),
  });
  const file = join(here, '..', '..', 'load', 'results', 'share-streams.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`share-streams failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/**
 * The device simulator: spreads N devices over several worker processes, each on its
 * own loopback source address (127.0.0.2, .3, ...), connects them, runs a measured phase
 * of fixed length and gathers client-side figures (acks/s, ack latency per fix, answer
 * latency per request frame, SOS-to-console latency, console-ack-to-device latency,
 * errors by code) while sampling the server's CPU and memory.
 *
 * Also a command: `npm run sim -- --devices 2000 --hz 1 --seconds 30` against a server
 * it starts itself (`--target full|baseline`); `--cpu-prof DIR` profiles that server;
 * `--env NAME=value` (repeatable) sets one of its settings.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { joinAcks } from './console-ack.js';
import { BENCH_SECRET, latencyHistogram, launch, metricValue, type RunningServer, runQueueWaitNs } from './launch.js';
import { bucketCounts, windowQuantileBound } from './prom-histogram.js';
import type { WorkerCounters, WorkerPlan, WorkerResult } from './sim-worker.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'sim-worker.js');
/** coreutils' nice, on every Debian. */
const NICE = '/usr/bin/nice';

/** One simulator run. */
export interface SimOptions {
  devices: number;
  /** Pings per second per device; ignored when `window` > 0. */
  pingHz: number;
  /** Closed loop with this many pings in flight per device (max throughput). */
  window?: number;
  seconds: number;
  jobShare?: number;
  /** Create each device's order first (full node; default true). Only jobs use them. */
  orders?: boolean;
  sosPerSec?: number;
  consoles?: number;
  /** Simulator processes for the load; default one per 4,000 devices, at least 2. SOS and consoles get one more. */
  processes?: number;
  /** Print a progress line every second to stderr. */
  progress?: boolean;
  /** Longest wait for answers after the measured window (default 10 s); frames still waiting count as unanswered. */
  drainSeconds?: number;
  /**
   * Nice value of the processes that make the load (default 0: the node's). Not the safety
   * process (SOS and consoles), which stays at the node's priority. See `niceFork`.
   */
  loadNice?: number;
}

/** Latency quantiles in milliseconds. */
export interface Quantiles {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** What a run measured. */
export interface SimResult {
  target: RunningServer['kind'];
  devices: number;
  connected: number;
  /** Devices whose connection stayed open through the whole measured run. */
  held: number;
  seconds: number;
  sent: number;
  /** Fixes the devices produced per second of the measured window (the offered load as sent). */
  sentPerSec: number;
  acks: number;
  /** Fixes acknowledged per second of the measured window (goodput). */
  acksPerSec: number;
  /** Per fix: from its creation to the ack that carried it (time held after `rate_limited` included). */
  ack: Quantiles;
  /**
   * Per request frame sent in the measured window: from sending it to its answer (`ack` or
   * `err`). `count` frames were answered, `over1s` of them after more than 1 s, and
   * `unanswered` had no answer when the drain ended.
   */
  frame: Quantiles & { sent: number; over1s: number; unanswered: number };
  /**
   * SOS-to-console, every console's push of every press; `toNode` and `fromNode` split a new
   * incident's at the node's announcement (the alert's `ts`): device to node (the send, the
   * kernel, the node reading it) and node to console (the push, the console reading it).
   */
  sos: Quantiles & { sent: number; seen: number; toNode: Quantiles; fromNode: Quantiles };
  /** From console 0 sending its ack of an SOS to the device getting `sos_status`. */
  consoleAck: Quantiles & { sent: number; seen: number };
  errors: Record<string, number>;
  jobsCompleted: number;
  /** `rate_limited` answers the devices honoured (waited retryMs, sent again); not errors. */
  rateLimited: number;
  server: {
    cpuSecPer1000Pings: number;
    cpuUtilisation: number;
    /**
     * Milliseconds per second the node's main thread was runnable but waited for a CPU (its
     * schedstat; null where the kernel does not say): the machine's part of every latency
     * measured, since the simulator shares the node's cores.
     */
    runQueueWaitMsPerSec: number | null;
    rssIdleBytes: number;
    rssConnectedBytes: number;
    /** (resident after connect - resident before) / connected devices. */
    bytesPerDevice: number;
    archiveRowsPerSec: number | null;
    /** `fieldtrack_archive_spool_rows` at the start and end of the measured window. */
    spoolRows: { start: number; end: number } | null;
    /** Pings and batches the node shed with `rate_limited` in the window (its own count). */
    loadShed: number | null;
    /**
     * The node's own p99 from reading a frame to sending its answer, over the window, as
     * the bucket bound it falls under (`<= 250 ms`, `> 2500 ms`): beside `frame.p99` it
     * shows whether answers were late in the node or on the way.
     */
    nodeAnswerP99: string | null;
    /**
     * The node's garbage collection in the window (`fieldtrack_nodejs_gc_duration_seconds`):
     * the share of wall time spent in GC pauses, and per kind the pauses and their mean. A
     * long major collection stalls everything, an SOS included.
     */
    gc: { share: number; major: GcKind; minor: GcKind } | null;
  };
}

function quantiles(h: hdr.Histogram): Quantiles {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Between every worker's drain and the closing of sockets: a console ack sent at the very
 * end (in one process) still reaches its device (in another) before that one closes.
 */
const ACK_GRACE_MS = 500;

/** Pauses of one kind of garbage collection in a window. */
interface GcKind {
  count: number;
  meanMs: number;
}

/** The node's GC pauses between two scrapes of its metrics (see `server.gc`). */
export function gcPauses(
  before: string,
  after: string,
  seconds: number,
): { share: number; major: GcKind; minor: GcKind } {
  const name = 'fieldtrack_nodejs_gc_duration_seconds';
  const of = (text: string, part: 'sum' | 'count', kind?: string): number =>
    kind === undefined ? metricValue(text, `${name}_${part}`) : labelled(text, `${name}_${part}`, `kind="${kind}"`);
  const kindOf = (kind: string): GcKind => {
    const count = of(after, 'count', kind) - of(before, 'count', kind);
    const sum = of(after, 'sum', kind) - of(before, 'sum', kind);
    return { count, meanMs: count > 0 ? Math.round((sum / count) * 10_000) / 10 : 0 };
  };
  const total = of(after, 'sum') - of(before, 'sum');
  return { share: Math.round((total / seconds) * 1000) / 1000, major: kindOf('major'), minor: kindOf('minor') };
}

/** The value of `name` on the line whose labels include `label` (`kind="major"`); 0 when absent. */
function labelled(text: string, name: string, label: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.slice(0, line.indexOf('}')).includes(label))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** The node's answer-time p99 over a window, as the bound of its bucket. */
function nodeAnswerP99(before: string, after: string): string | null {
  const name = 'fieldtrack_ack_latency_seconds';
  const ms = (seconds: number): number => Math.round(seconds * 10_000) / 10;
  const bound = windowQuantileBound(before, after, name, 0.99);
  if (bound === null) return null;
  if (Number.isFinite(bound)) return `<= ${ms(bound)} ms`;
  const lastEdge = Math.max(...[...bucketCounts(after, name).keys()].filter(Number.isFinite));
  return `> ${ms(lastEdge)} ms`;
}

/** A histogram (µs) of latencies given in ms. */
function histogramOfMs(values: readonly number[]): hdr.Histogram {
  const h = latencyHistogram();
  for (const v of values) h.recordValue(Math.max(1, Math.round(v * 1000)));
  return h;
}

/**
 * How many devices run beside the consoles in the safety process: enough that each presses
 * an SOS about every ten seconds (an incident is acknowledged and resolved well before its
 * device presses again), and never more than the run has.
 */
export function safetyDevices(o: Pick<SimOptions, 'devices' | 'sosPerSec'>): number {
  return Math.min(o.devices, Math.max(20, Math.ceil((o.sosPerSec ?? 0) * 10)));
}

/**
 * How to fork a simulator process at nice `nice`: through `nice(1)`, so that every thread
 * of it (V8's and libuv's, created at start) runs at that priority.
 */
function niceFork(nice: number): { execPath?: string; execArgv?: string[] } {
  if (nice === 0) return {};
  return { execPath: NICE, execArgv: ['-n', String(nice), process.execPath, ...process.execArgv] };
}

/** Runs the simulator against a running server and returns client- and server-side figures. */
export async function runSim(server: RunningServer, o: SimOptions): Promise<SimResult> {
  const processes = Math.max(1, o.processes ?? Math.max(2, Math.ceil(o.devices / 4000)));
  const rssIdle = server.stats().rssBytes;
  const began = Date.now();
  // The devices that press SOS and the consoles run in a process of their own, apart from
  // the thousands of devices making the load: as on a real platform, where the safety
  // centre and a technician in distress are not on a machine busy with everyone else's
  // pings. In a busy simulator process the SOS figures were mostly that process's own
  // event-loop delay (sending late, reading the console's push late), not the node's.
  const full = server.kind === 'full';
  const safety = full && ((o.sosPerSec ?? 0) > 0 || (o.consoles ?? 0) > 0) ? safetyDevices(o) : 0;
  const loadDevices = o.devices - safety;
  const plans: WorkerPlan[] = Array.from({ length: processes }, (_, index) => ({
    index,
    wsUrl: server.wsUrl,
    httpUrl: server.httpUrl,
    target: server.kind,
    localAddress: `127.0.0.${2 + index}`,
    devices: Math.floor(loadDevices / processes) + (index < loadDevices % processes ? 1 : 0),
    pingHz: o.pingHz,
    window: o.window ?? 0,
    jobShare: o.jobShare ?? 0.1,
    orders: o.orders ?? true,
    sosPerSec: safety > 0 ? 0 : (o.sosPerSec ?? 0) / processes,
    consoles: safety === 0 && index === 0 && full ? (o.consoles ?? 0) : 0,
    secret: BENCH_SECRET,
    durationSec: o.seconds,
    drainMs: (o.drainSeconds ?? 10) * 1000,
  }));
  if (safety > 0) {
    const first = plans[0] as WorkerPlan;
    plans.push({
      ...first,
      index: processes,
      localAddress: `127.0.0.${2 + processes}`,
      devices: safety,
      sosPerSec: o.sosPerSec ?? 0,
      consoles: o.consoles ?? 0,
    });
  }
  const workers = plans.map((plan) => {
    const nice = plan.index < processes ? (o.loadNice ?? 0) : 0;
    const child = fork(WORKER, [JSON.stringify(plan)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...niceFork(nice),
    });
    const state = {
      child,
      counters: undefined as WorkerCounters | undefined,
      result: undefined as WorkerResult | undefined,
      drained: false,
      countWaiters: [] as (() => void)[],
    };
    child.on('message', (m: { type: string; counters?: WorkerCounters; result?: WorkerResult }) => {
      if (m.counters) state.counters = m.counters;
      if (m.result) state.result = m.result;
      if (m.type === 'drained') state.drained = true;
      if (m.type === 'count') for (const wake of state.countWaiters.splice(0)) wake();
    });
    return state;
  });
  /** Asks every worker for its counters now (not the last 1 s progress report) and waits for all. */
  const countNow = (): Promise<void> =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.countWaiters.push(resolve);
            w.child.send({ type: 'count' });
          }),
      ),
    ).then(() => undefined);
  const total = (key: 'connected' | 'sent' | 'acks'): number =>
    workers.reduce((s, w) => s + (w.counters?.[key] ?? 0), 0);
  const errorCount = (): number =>
    workers.reduce((s, w) => s + Object.values(w.counters?.errors ?? {}).reduce((a, b) => a + b, 0), 0);
  const waitFor = async (pred: () => boolean, what: string, ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`simulator: timed out waiting for ${what}`);
      if (workers.some((w) => w.child.exitCode !== null && !w.result)) throw new Error('simulator: a worker died');
      await sleep(100);
    }
  };
  const show = (phase: string): void => {
    if (o.progress)
      process.stderr.write(
        `\r[${server.kind}] ${phase}: connected ${total('connected')}/${o.devices} sent ${total('sent')} acked ${total('acks')} errors ${errorCount()}   `,
      );
  };
  const ticker = setInterval(() => show('running'), 1000);
  try {
    // Listen before asking, so no `connected` report can be missed.
    const connectedMessages = workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.child.on('message', (m: { type: string }) => m.type === 'connected' && resolve());
          w.child.once('exit', () => reject(new Error('simulator: a worker died while connecting')));
        }),
    );
    for (const w of workers) w.child.send({ type: 'connect' });
    const connecting = setInterval(() => show('connecting'), 1000);
    // Cleared once connected: a pending 5-minute timer would keep the caller's process alive.
    let connectTimer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      connectTimer = setTimeout(
        () => reject(new Error('simulator: devices did not connect within 5 minutes')),
        300_000,
      );
    });
    await Promise.race([Promise.all(connectedMessages), timeout]).finally(() => clearTimeout(connectTimer));
    clearInterval(connecting);
    await sleep(1000);
    const rssConnected = server.stats().rssBytes;
    const connected = total('connected');
    const before = server.stats();
    const waitBefore = runQueueWaitNs(server.child.pid as number);
    const metricsBefore = server.kind === 'full' ? await server.metrics() : '';
    await countNow();
    const acksBefore = total('acks');
    const sentBefore = total('sent');
    const t0 = Date.now();
    for (const w of workers) w.child.send({ type: 'go' });
    await sleep(o.seconds * 1000);
    // Acks, CPU and rows are all read at the end of the same window they are divided by.
    await countNow();
    const acksMeasured = total('acks') - acksBefore;
    const sentMeasured = total('sent') - sentBefore;
    const after = server.stats();
    const waitAfter = runQueueWaitNs(server.child.pid as number);
    const elapsed = (Date.now() - t0) / 1000;
    const metricsAfter = server.kind === 'full' ? await server.metrics() : '';
    const windowEnded = Date.now();
    for (const w of workers) w.child.send({ type: 'stop' });
    await waitFor(() => workers.every((w) => w.drained), 'workers to drain', 60_000);
    const drained = Date.now();
    await sleep(ACK_GRACE_MS);
    for (const w of workers) w.child.send({ type: 'close' });
    await waitFor(() => workers.every((w) => w.result !== undefined), 'worker results', 60_000);
    if (o.progress) {
      // Where a run's wall time went: connecting, the window (with its final reads), draining, closing.
      const s = (from: number, to: number): string => `${((to - from) / 1000).toFixed(1)} s`;
      const now = Date.now();
      process.stderr.write(
        `\n[${server.kind}] connect ${s(began, t0)}, window ${s(t0, windowEnded)}, drain ${s(windowEnded, drained)}, close ${s(drained, now)}\n`,
      );
    }
    const ackHist = latencyHistogram();
    const sosHist = latencyHistogram();
    const sosToNodeHist = latencyHistogram();
    const sosFromNodeHist = latencyHistogram();
    const frameHist = latencyHistogram();
    const frames = { sent: 0, over1s: 0, unanswered: 0 };
    const errors: Record<string, number> = {};
    let sent = 0;
    let acks = 0;
    let sosSent = 0;
    let sosSeen = 0;
    let jobs = 0;
    let held = 0;
    let rateLimited = 0;
    for (const w of workers) {
      const r = w.result as WorkerResult;
      ackHist.add(hdr.decodeFromCompressedBase64(r.ackHist));
      sosHist.add(hdr.decodeFromCompressedBase64(r.sosHist));
      sosToNodeHist.add(hdr.decodeFromCompressedBase64(r.sosToNodeHist));
      sosFromNodeHist.add(hdr.decodeFromCompressedBase64(r.sosFromNodeHist));
      frameHist.add(hdr.decodeFromCompressedBase64(r.frameHist));
      frames.sent += r.frames.frames;
      frames.over1s += r.frames.over1s;
      frames.unanswered += r.frames.unanswered;
      for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
      sent += r.sent;
      acks += r.acks;
      sosSent += r.sosSent;
      sosSeen += r.sosSeen;
      jobs += r.jobsCompleted;
      held += r.held;
      rateLimited += r.rateLimited;
    }
    const results = workers.map((w) => w.result as WorkerResult);
    const acked = joinAcks(
      Object.assign({}, ...results.map((r) => r.sosAcksSent)),
      results.map((r) => r.sosAcksSeen),
    );
    const delta = (name: string): number => metricValue(metricsAfter, name) - metricValue(metricsBefore, name);
    const rowsDelta = full ? delta('fieldtrack_archive_rows_total') : null;
    return {
      target: server.kind,
      devices: o.devices,
      connected,
      held,
      seconds: Math.round(elapsed * 10) / 10,
      sent,
      sentPerSec: Math.round(sentMeasured / elapsed),
      acks,
      acksPerSec: Math.round(acksMeasured / elapsed),
      ack: quantiles(ackHist),
      frame: { ...quantiles(frameHist), ...frames },
      sos: {
        ...quantiles(sosHist),
        sent: sosSent,
        seen: sosSeen,
        toNode: quantiles(sosToNodeHist),
        fromNode: quantiles(sosFromNodeHist),
      },
      consoleAck: { ...quantiles(histogramOfMs(acked.latenciesMs)), sent: acked.sent, seen: acked.seen },
      errors,
      jobsCompleted: jobs,
      rateLimited,
      server: {
        cpuSecPer1000Pings: acksMeasured > 0 ? ((after.cpuSec - before.cpuSec) / acksMeasured) * 1000 : 0,
        cpuUtilisation: (after.cpuSec - before.cpuSec) / elapsed,
        runQueueWaitMsPerSec: Number.isNaN(waitAfter - waitBefore)
          ? null
          : Math.round((waitAfter - waitBefore) / 1e6 / elapsed),
        rssIdleBytes: rssIdle,
        rssConnectedBytes: rssConnected,
        bytesPerDevice: connected > 0 ? Math.round((rssConnected - rssIdle) / connected) : 0,
        archiveRowsPerSec: rowsDelta === null ? null : Math.round(rowsDelta / elapsed),
        spoolRows: full
          ? {
              start: metricValue(metricsBefore, 'fieldtrack_archive_spool_rows'),
              end: metricValue(metricsAfter, 'fieldtrack_archive_spool_rows'),
            }
          : null,
        loadShed: full ? delta('fieldtrack_load_shed_total') : null,
        nodeAnswerP99: full ? nodeAnswerP99(metricsBefore, metricsAfter) : null,
        gc: full ? gcPauses(metricsBefore, metricsAfter, elapsed) : null,
      },
    };
  } finally {
    clearInterval(ticker);
    for (const w of workers) if (w.child.exitCode === null && !w.result) w.child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: 'full' },
      devices: { type: 'string', default: '1000' },
      hz: { type: 'string', default: '1' },
      window: { type: 'string', default: '0' },
      seconds: { type: 'string', default: '20' },
      'job-share': { type: 'string', default: '0.1' },
      sos: { type: 'string', default: '2' },
      consoles: { type: 'string', default: '2' },
      processes: { type: 'string' },
      /** Write a V8 CPU profile of the server into this folder (open it in Chrome DevTools). */
      'cpu-prof': { type: 'string' },
      /** Nice value of the load processes (not the SOS and consoles' one). */
      'load-nice': { type: 'string', default: '0' },
      /** A setting for the server, `NAME=value`; repeatable (to compare settings run by run). */
      env: { type: 'string', multiple: true, default: [] },
    },
  });
  const target = values.target === 'baseline' ? 'baseline' : 'full';
  const profile = values['cpu-prof'];
  const env = Object.fromEntries(
    values.env.map((kv) => {
      const at = kv.indexOf('=');
      if (at <= 0) throw new Error(`--env wants NAME=value, got ${kv}`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
  const server = await launch(target, env, profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []);
  try {
    const result = await runSim(server, {
      devices: Number(values.devices),
      pingHz: Number(values.hz),
      window: Number(values.window),
      seconds: Math.min(600, Number(values.seconds)),
      jobShare: Number(values['job-share']),
      sosPerSec: Number(values.sos),
      consoles: Number(values.consoles),
      ...(values.processes ? { processes: Number(values.processes) } : {}),
      loadNice: Number(values['load-nice']),
      progress: true,
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await server.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

/**
 * `npm run bench`: the standard scenarios in one command. Max ping throughput of the bare
 * baseline and of the full node (closed loop, same simulator), the overload steps at
 * multiples of that capacity, a hold run of many devices at a fixed rate with SOS and
 * consoles, autocannon on the HTTP routes, and the events for the dispatch system (events/s
 * delivered to a webhook, device acks with 0 and 10 webhooks: events-bench.ts), and the
 * customer streams (device acks with and without 5,000 open share streams:
 * share-streams.ts). Writes `load/results/bench.json`,
 * `bench.md` (with the targets table) and `bench-overload.svg`. `--quick` for a short try
 * (`bench-quick.*`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { benchTargets, verdictText } from './bench-targets.js';
import { eventsTable, runEventsBench } from './events-bench.js';
import { launch, mint, type RunningServer } from './launch.js';
import {
  gcText,
  OVERLOAD_DRAIN_SECONDS,
  overloadChart,
  overloadTable,
  runOverload,
  runQueueText,
  sosSplitText,
} from './overload.js';
import { runShareBench, SHARE_BENCH_DEFAULTS, shareTable } from './share-streams.js';
import { type Quantiles, runSim, type SimResult } from './sim.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    devices: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    /** Output name under load/results (default bench, or bench-quick): keep a trial run beside the README's. */
    name: { type: 'string' },
  },
});
const quick = values.quick === true;
const holdDevices = Number(values.devices ?? (quick ? 1000 : 15000));
const rate = Number(values.rate ?? (quick ? 1000 : 15000));
const seconds = Number(values.seconds ?? (quick ? 8 : 30));
/** Overload steps: short, so five of them fit the bench's few minutes. */
const overloadFactors = quick ? [0.5, 2.5] : [0.5, 1, 1.5, 2, 2.5];
const overloadSeconds = quick ? 5 : 8;
const overloadSos = 5;
const overloadConsoles = 2;

/**
 * Max throughput, closed loop: many devices, each with one ping unacknowledged at a time,
 * as phones behave (a phone sends its next fix after the ack). One technician's pings are
 * applied in order, each durable before the next, so a single device cannot go faster than
 * one fsync round per ping; the server's capacity shows with many devices, not deep windows.
 */
export const MAX_DEVICES = 2000;

async function maxThroughput(kind: 'full' | 'baseline'): Promise<SimResult> {
  const server = await launch(kind);
  try {
    return await runSim(server, { devices: MAX_DEVICES, pingHz: 0, window: 1, seconds, jobShare: 0, progress: true });
  } finally {
    await server.stop();
  }
}

interface HttpFigure {
  route: string;
  reqPerSec: number;
  p99Ms: number;
  non2xx: number;
}

async function http(server: RunningServer): Promise<HttpFigure[]> {
  const dispatch = await mint('bench-dispatch', 'dispatch');
  const headers = { authorization: `Bearer ${dispatch}`, 'content-type': 'application/json' };
  const now = Date.now();
  const routes: Array<{ route: string; method: 'GET' | 'PUT'; path: string; body?: string }> = [
    {
      route: 'PUT /v1/orders/:id',
      method: 'PUT',
      path: '/v1/orders/bench-http-order',
      body: JSON.stringify({
        technician: 't0-0',
        lat: 48.85,
        lon: 2.35,
        scheduledAt: now + 3_600_000,
        durationMin: 60,
      }),
    },
    { route: 'GET /v1/technicians/:id', method: 'GET', path: '/v1/technicians/t0-0' },
    { route: 'GET /v1/nearby', method: 'GET', path: '/v1/nearby?lat=48.9&lon=2.35&radius=2000' },
    {
      route: 'GET /v1/technicians/:id/track',
      method: 'GET',
      path: `/v1/technicians/t0-0/track?from=${now - 3_600_000}&to=${now + 60_000}`,
    },
  ];
  const out: HttpFigure[] = [];
  for (const r of routes) {
    const res = await autocannon({
      url: `${server.httpUrl}${r.path}`,
      method: r.method,
      headers,
      ...(r.body ? { body: r.body } : {}),
      connections: 20,
      duration: quick ? 3 : 8,
    });
    out.push({
      route: r.route,
      reqPerSec: Math.round(res.requests.average),
      p99Ms: res.latency.p99,
      non2xx: res.non2xx,
    });
  }
  return out;
}

const ms = (n: number): string => `${n.toFixed(1)} ms`;
/** A quantile of `q`, or n/a when it holds no sample (its quantiles would read 0). */
const msOf = (q: Quantiles, key: 'p50' | 'p99' | 'p999'): string => (q.count === 0 ? 'n/a' : ms(q[key]));

async function main(): Promise<void> {
  const started = Date.now();
  const phase = (text: string): void => {
    process.stderr.write(`${text} (at ${Math.round((Date.now() - started) / 1000)} s)\n`);
  };
  phase('1/6 baseline max throughput');
  const baseline = await maxThroughput('baseline');
  phase('2/6 full pipeline max throughput');
  const fullMax = await maxThroughput('full');
  const capacity = fullMax.acksPerSec;
  phase(`3/6 overload: ${overloadFactors.join(', ')} x ${capacity} fixes/s`);
  const overload = await runOverload({
    capacity,
    factors: overloadFactors,
    seconds: overloadSeconds,
    sosPerSec: overloadSos,
    consoles: overloadConsoles,
    progress: true,
  });
  // The same top step without the fix lane, so the lane's effect is a comparison within this run.
  const topFactor = overloadFactors[overloadFactors.length - 1] as number;
  const withoutLane = await runOverload({
    capacity,
    factors: [topFactor],
    seconds: overloadSeconds,
    sosPerSec: overloadSos,
    consoles: overloadConsoles,
    progress: true,
    env: { FIX_LANE_SLICE_MS: '0' },
    label: 'no fix lane (FIX_LANE_SLICE_MS=0)',
  });
  phase(`4/6 hold: ${holdDevices} devices, ${rate} pings/s, SOS, consoles`);
  const server = await launch('full');
  let hold: SimResult;
  let httpFigures: HttpFigure[];
  try {
    hold = await runSim(server, {
      devices: holdDevices,
      pingHz: rate / holdDevices,
      seconds,
      jobShare: 0.1,
      sosPerSec: 5,
      consoles: 4,
      progress: true,
    });
    phase('5/6 HTTP (autocannon)');
    httpFigures = await http(server);
  } finally {
    await server.stop();
  }
  phase('6/6 events: delivery rate, then device acks with 0 and 10 webhooks (delivery thread at nice 10, and 0)');
  const events = await runEventsBench(quick);
  const share = await runShareBench(
    quick ? { devices: 100, streams: 1000, seconds: 5, rounds: 1, hz: 1 } : SHARE_BENCH_DEFAULTS,
  );
  const ratio = {
    throughput: fullMax.acksPerSec / Math.max(1, baseline.acksPerSec),
    cpuPerPing: fullMax.server.cpuSecPer1000Pings / Math.max(1e-9, baseline.server.cpuSecPer1000Pings),
  };
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  const results = {
    date: new Date().toISOString(),
    quick,
    machine,
    baseline,
    fullMax,
    ratio,
    overload: { capacity, factors: overloadFactors, seconds: overloadSeconds, steps: overload, withoutLane },
    hold,
    http: httpFigures,
    events,
    share,
    wallSeconds: Math.round((Date.now() - started) / 1000),
  };
  const targets = benchTargets({ baseline, fullMax, holdDevices, holdRate: rate, hold, capacity, overload });
  const name = values.name ?? (quick ? 'bench-quick' : 'bench');
  const chartFile = `${name}-overload.svg`;
  const md = [
    `# fieldtrack bench ${quick ? '(quick)' : ''}`,
    '',
    `${results.date}; ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}; wall time ${results.wallSeconds} s. Rerun: \`npm run bench${quick ? ' -- --quick' : ''}\`.`,
    '',
    `## Ping pipeline vs bare baseline (${MAX_DEVICES} devices, one ping in flight each)`,
    '',
    '| | acks/s | ack p50 | ack p99 | ack p99.9 | server CPU s / 1,000 pings |',
    '|---|---|---|---|---|---|',
    ...[baseline, fullMax].map(
      (r) =>
        `| ${r.target} | ${r.acksPerSec} | ${ms(r.ack.p50)} | ${ms(r.ack.p99)} | ${ms(r.ack.p999)} | ${r.server.cpuSecPer1000Pings.toFixed(4)} |`,
    ),
    '',
    `Full / baseline: throughput ${ratio.throughput.toFixed(2)}x, CPU per ping ${ratio.cpuPerPing.toFixed(2)}x.`,
    '',
    `## Overload: goodput vs offered load (capacity ${capacity} fixes/s, closed loop above)`,
    '',
    `Each step on a fresh node for ${overloadSeconds} s, open loop, ${overloadSos} SOS/s, ${overloadConsoles} consoles (console 0 acknowledges and resolves each SOS), no orders. Goodput: fixes acked per second (a batch ack counts each fix it carried). The devices' count of \`rate_limited\` includes \`unavailable\` (both mean "send later"); the node's is its own shed count. A frame is a request (ping, batch, sos): its answer latency runs from sending it to its \`ack\` or \`err\`; a \`rate_limited\` answer is an answer, and a frame still waiting ${OVERLOAD_DRAIN_SECONDS} s after the step's load stopped is unanswered. A new incident's SOS-to-console time is split at the node's announcement (the alert's \`ts\`, one machine so one clock): device to node is the send, the kernel and the node reading the frame (it waits for the event-loop turn under way to end); node to console is the push and the console reading it. The simulator shares the node's two cores: the last column is how long per second the node's main thread was ready to run but waited for a CPU (its schedstat), a delay phones on other machines would not add. Chart: [${chartFile}](${chartFile}).`,
    '',
    ...overloadTable(overload),
    '',
    `For comparison, the top step once more with every frame handled on arrival (no fix lane); not in the chart or the targets:`,
    '',
    ...overloadTable(withoutLane),
    '',
    `## Hold: ${hold.connected}/${hold.devices} devices, ${rate} pings/s offered, ${seconds} s, 10% running jobs, 5 SOS/s, 4 consoles`,
    '',
    `- acks/s ${hold.acksPerSec}; ack p50 ${msOf(hold.ack, 'p50')}, p99 ${msOf(hold.ack, 'p99')}, p99.9 ${msOf(hold.ack, 'p999')}`,
    `- request frames: ${hold.frame.sent} sent, answer p50 ${msOf(hold.frame, 'p50')}, p99 ${msOf(hold.frame, 'p99')} (in the node ${hold.server.nodeAnswerP99 ?? 'n/a'}); ${hold.frame.over1s} later than 1 s, ${hold.frame.unanswered} unanswered`,
    `- SOS-to-console (every console's first push per SOS) p50 ${msOf(hold.sos, 'p50')}, p99 ${msOf(hold.sos, 'p99')} (${hold.sos.sent} SOS sent, ${hold.sos.seen} seen by console 0); of a new incident's, p99 device to node / node to console: ${sosSplitText(hold.sos)}`,
    `- console ack to device (\`sos_status\`) p50 ${msOf(hold.consoleAck, 'p50')}, p99 ${msOf(hold.consoleAck, 'p99')} (${hold.consoleAck.seen} of ${hold.consoleAck.sent} acks reached the device)`,
    `- errors by code: ${JSON.stringify(hold.errors)}; sent ${hold.sent}, acked ${hold.acks}; jobs completed ${hold.jobsCompleted}`,
    `- server CPU ${hold.server.cpuSecPer1000Pings.toFixed(4)} s per 1,000 pings (${(hold.server.cpuUtilisation * 100).toFixed(0)}% of a core); in GC pauses ${gcText(hold.server.gc)}; its main thread waited for a CPU ${runQueueText(hold.server.runQueueWaitMsPerSec)}`,
    `- server resident ${(hold.server.rssIdleBytes / 2 ** 20).toFixed(0)} MiB idle, ${(hold.server.rssConnectedBytes / 2 ** 20).toFixed(0)} MiB connected: ${(hold.server.bytesPerDevice / 1024).toFixed(1)} KB per device`,
    `- rows archived per second: ${hold.server.archiveRowsPerSec}; archive spool ${hold.server.spoolRows?.start ?? '?'} -> ${hold.server.spoolRows?.end ?? '?'} rows over the run; rate_limited ${hold.rateLimited} (node shed ${hold.server.loadShed ?? 'n/a'})`,
    '',
    '## HTTP (autocannon, 20 connections)',
    '',
    '| route | req/s | p99 | non-2xx |',
    '|---|---|---|---|',
    ...httpFigures.map((h) => `| ${h.route} | ${h.reqPerSec} | ${h.p99Ms} ms | ${h.non2xx} |`),
    '',
    ...eventsTable(events),
    '',
    ...shareTable(share),
    '',
    '## Targets',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.target} | ${t.measured} | ${verdictText(t.met)} |`),
    '',
  ].join('\n');
  mkdirSync(OUT, { recursive: true });
  const title = `fieldtrack overload${quick ? ' (quick)' : ''}: ${results.date.slice(0, 10)}, ${machine.cpus} x ${machine.cpuModel}`;
  writeFileSync(join(OUT, chartFile), overloadChart(overload, capacity, title));
  writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify({ ...results, targets }, null, 2)}\n`);
  writeFileSync(join(OUT, `${name}.md`), md);
  process.stdout.write(`${md}\n`);
}

await main();

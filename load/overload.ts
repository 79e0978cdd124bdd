/**
 * The overload scenario of `npm run bench` (issue 14): goodput against offered load.
 * Given the full node's closed-loop capacity (acked fixes per second), each step offers a
 * multiple of it open loop (devices x pings per second, at most MAX_PING_HZ per device,
 * as phones do) with SOS and consoles beside, on a fresh node, so one step's backlog does
 * not weigh on the next. A node that sheds well keeps its goodput near capacity and still
 * answers every frame quickly (often with `rate_limited`), and its SOS lane stays fast.
 */
import { launch } from './launch.js';
import type { Quantiles, SimResult } from './sim.js';
import { runSim } from './sim.js';
import { type Chart, renderChart, type Series } from './svg-chart.js';

/** The fastest a simulated device pings in these steps. */
export const MAX_PING_HZ = 5;
/** How long a step waits for answers after its load stops. */
export const OVERLOAD_DRAIN_SECONDS = 5;

/** SOS latency target of the issue, and the frame answer limit. */
export const SOS_TARGET_MS = 50;
export const FRAME_LIMIT_MS = 1000;

/** How the steps run. */
export interface OverloadPlan {
  /** Closed-loop acked fixes per second of the full node. */
  capacity: number;
  /** Offered load of each step, as multiples of `capacity`. */
  factors: readonly number[];
  seconds: number;
  sosPerSec: number;
  consoles: number;
  progress?: boolean;
  /** Settings of the nodes under test (to compare one with its default). */
  env?: Record<string, string>;
  /** Shown beside each step's load in the table, when `env` differs from the defaults. */
  label?: string;
}

/** One step and what it measured. */
export interface OverloadStep {
  factor: number;
  /** Fixes per second planned (devices x pingHz). */
  offered: number;
  devices: number;
  pingHz: number;
  sim: SimResult;
  label?: string;
}

/** Devices and rate for `offered` fixes per second, no device above MAX_PING_HZ. */
export function stepShape(offered: number): { devices: number; pingHz: number } {
  const devices = Math.max(1, Math.ceil(offered / MAX_PING_HZ));
  return { devices, pingHz: offered / devices };
}

/** Runs every step in turn, each on its own node. */
export async function runOverload(plan: OverloadPlan): Promise<OverloadStep[]> {
  const steps: OverloadStep[] = [];
  for (const factor of plan.factors) {
    const offered = Math.max(1, Math.round(plan.capacity * factor));
    const { devices, pingHz } = stepShape(offered);
    process.stderr.write(
      `overload ${factor}x: ${devices} devices x ${pingHz.toFixed(2)} pings/s = ${offered} fixes/s\n`,
    );
    const began = Date.now();
    const server = await launch('full', plan.env ?? {});
    try {
      const sim = await runSim(server, {
        devices,
        pingHz,
        seconds: plan.seconds,
        jobShare: 0,
        // No jobs, so no orders: creating thousands over HTTP per step would cost more than the step.
        orders: false,
        // Five steps must fit the bench: a frame still unanswered 5 s after the load stopped is lost enough.
        drainSeconds: OVERLOAD_DRAIN_SECONDS,
        sosPerSec: plan.sosPerSec,
        consoles: plan.consoles,
        ...(plan.progress === undefined ? {} : { progress: plan.progress }),
      });
      steps.push({ factor, offered, devices, pingHz, sim, ...(plan.label === undefined ? {} : { label: plan.label }) });
    } finally {
      await server.stop();
    }
    process.stderr.write(`overload ${factor}x: step took ${Math.round((Date.now() - began) / 1000)} s\n`);
  }
  return steps;
}

/** A p99 in ms, or null when nothing was measured (an empty histogram answers 0). */
export function p99OrNull(q: Quantiles): number | null {
  return q.count === 0 ? null : q.p99;
}

/** Share of the step's frames answered within FRAME_LIMIT_MS (null when no frame was sent). */
export function answeredInTime(step: OverloadStep): number | null {
  const f = step.sim.frame;
  return f.sent === 0 ? null : (f.sent - f.over1s - f.unanswered) / f.sent;
}

const msText = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(1)} ms`);

/** Where a new SOS's time went (p99 of each half; see SimResult `sos`), for the tables. */
export function sosSplitText(sos: SimResult['sos']): string {
  return `${msText(p99OrNull(sos.toNode))} / ${msText(p99OrNull(sos.fromNode))}`;
}

/** The node's main thread runnable but not running, for the tables. */
export function runQueueText(msPerSec: number | null): string {
  return msPerSec === null ? 'n/a' : `${msPerSec} ms/s`;
}

/** The node's GC pauses in a run, for the tables: share of the time, then major and minor pauses. */
export function gcText(gc: SimResult['server']['gc']): string {
  if (gc === null) return 'n/a';
  const kind = (k: { count: number; meanMs: number }) => `${k.count} x ${k.meanMs} ms`;
  return `${(gc.share * 100).toFixed(1)}% (${kind(gc.major)} / ${kind(gc.minor)})`;
}

/** The overload table for bench.md. */
export function overloadTable(steps: readonly OverloadStep[]): string[] {
  return [
    '| load | devices x pings/s | offered fixes/s (planned / sent) | goodput fixes/s | frame answer p99 (in the node) | frames answered within 1 s | SOS-to-console p99 | of it, p99: device to node / node to console | console ack to device p99 | rate_limited: devices got / node shed | node in GC pauses (major / minor: count x mean) | node waiting for a CPU |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...steps.map((s) => {
      const f = s.sim.frame;
      const share = answeredInTime(s);
      const within =
        share === null
          ? 'n/a'
          : `${(share * 100).toFixed(2)}% of ${f.sent} (${f.over1s} late, ${f.unanswered} unanswered)`;
      return [
        '',
        s.label === undefined ? `${s.factor}x` : `${s.factor}x, ${s.label}`,
        `${s.devices} x ${s.pingHz.toFixed(2)}`,
        `${s.offered} / ${s.sim.sentPerSec}`,
        `${s.sim.acksPerSec}`,
        `${msText(p99OrNull(f))} (${s.sim.server.nodeAnswerP99 ?? 'n/a'})`,
        within,
        `${msText(p99OrNull(s.sim.sos))} (${s.sim.sos.seen}/${s.sim.sos.sent})`,
        sosSplitText(s.sim.sos),
        `${msText(p99OrNull(s.sim.consoleAck))} (${s.sim.consoleAck.seen}/${s.sim.consoleAck.sent})`,
        `${s.sim.rateLimited} / ${s.sim.server.loadShed ?? 'n/a'}`,
        gcText(s.sim.server.gc),
        runQueueText(s.sim.server.runQueueWaitMsPerSec),
        '',
      ].join(' | ');
    }),
  ].map((line) => line.trim());
}

/** The chart beside bench.md: goodput over offered load, and the latencies that must stay low. */
export function overloadChart(steps: readonly OverloadStep[], capacity: number, title: string): string {
  const xs = steps.map((s) => s.sim.sentPerSec);
  const xEnd = Math.max(capacity, ...xs, ...steps.map((s) => s.offered));
  const latency = (name: string, color: string, pick: (s: OverloadStep) => Quantiles): Series => ({
    name,
    color,
    style: 'measured',
    points: steps.map((s) => [s.sim.sentPerSec, p99OrNull(pick(s))] as const),
  });
  const flat = (name: string, color: string, y: number): Series => ({
    name,
    color,
    style: 'reference',
    points: [
      [0, y],
      [xEnd, y],
    ],
  });
  const chart: Chart = {
    title,
    xLabel: `offered load, fixes/s sent by the devices (closed-loop capacity ${capacity}/s)`,
    panels: [
      {
        yLabel: 'goodput, acked fixes/s',
        yScale: 'linear',
        series: [
          {
            name: 'goodput',
            color: '#1f77b4',
            style: 'measured',
            points: steps.map((s) => [s.sim.sentPerSec, s.sim.acksPerSec] as const),
            labels: steps.map((s) => `${s.factor}x`),
          },
          {
            name: 'ideal: goodput = offered',
            color: '#888888',
            style: 'reference',
            points: [
              [0, 0],
              [xEnd, xEnd],
            ],
          },
          flat(`0.9 x capacity (${Math.round(capacity * 0.9)}/s)`, '#d62728', capacity * 0.9),
        ],
      },
      {
        yLabel: 'p99 latency, ms (log)',
        yScale: 'log',
        series: [
          latency('SOS to console p99', '#ff7f0e', (s) => s.sim.sos),
          latency('console ack to device p99', '#9467bd', (s) => s.sim.consoleAck),
          latency('frame answer p99', '#2ca02c', (s) => s.sim.frame),
          flat(`${SOS_TARGET_MS} ms target (SOS, console ack)`, '#d62728', SOS_TARGET_MS),
          flat(`${FRAME_LIMIT_MS / 1000} s frame answer limit`, '#888888', FRAME_LIMIT_MS),
        ],
      },
    ],
  };
  return renderChart(chart);
}

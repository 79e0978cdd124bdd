/**
 * The events for the dispatch system under load (part of `npm run bench`; alone:
 * `npm run bench:events [-- --quick]`):
 *
 * 1. Events per second delivered: a node with one webhook to a local receiver that answers
 *    200 at once; autocannon creates orders (each `PUT` of a new id stores an
 *    `order.assigned` event, every one a different order and technician, so deliveries run
 *    in parallel up to the in-flight cap). Reported: events stored per second, events
 *    delivered per second while the load ran, and until the receiver had them all.
 * 2. Ten webhooks and device acks: the same device hold (pings, 10% of devices running
 *    jobs, SOS) on a fresh node with no webhook, on one with 10 webhooks to the receiver,
 *    and on one with 10 webhooks whose delivery thread runs at the main thread's priority
 *    (`WEBHOOK_THREAD_NICE=0`, for comparison with the default 10); ack p50/p99 side by
 *    side, the events each delivered, and the node's CPU seconds during the hold, all
 *    threads and its main thread alone (the one that acks devices; less sensitive to other
 *    load on the machine than the latencies). The arms take turns, `rounds` times, so a
 *    busy moment of the machine does not fall on one arm only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { launch, mainThreadCpuSec, metricValue, mint, type RunningServer } from './launch.js';
import { runSim, type SimResult } from './sim.js';

/** A receiver in this process: answers 200 to every POST and counts them. */
interface LocalReceiver {
  url: string;
  count(): number;
  close(): Promise<void>;
}

async function receiver(): Promise<LocalReceiver> {
  let n = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const EVENTS_ENV = { WEBHOOK_ALLOW_PRIVATE: '1' };

async function subscribe(server: RunningServer, url: string): Promise<void> {
  const res = await fetch(`${server.httpUrl}/v1/webhooks`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await mint('bench-dispatch', 'dispatch')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ url, events: ['*'] }),
  });
  if (res.status !== 201) throw new Error(`webhook not created: ${res.status} ${await res.text()}`);
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** What phase 1 measured. */
export interface DeliveryFigures {
  seconds: number;
  ordersCreated: number;
  eventsStored: number;
  eventsStoredPerSec: number;
  /** Delivered while the load ran, per second. */
  deliveredPerSecUnderLoad: number;
  /** Every stored event delivered, from the start of the load to the last delivery, per second. */
  deliveredPerSecToDrain: number;
  drainedAfterLoadMs: number | null;
  /** 2xx answers to the PUTs (the rest were refused and stored no event). */
  putP99Ms: number;
}

async function deliveryRate(seconds: number): Promise<DeliveryFigures> {
  const rx = await receiver();
  const server = await launch('full', EVENTS_ENV);
  try {
    await subscribe(server, rx.url);
    const dispatch = await mint('bench-dispatch', 'dispatch');
    let next = 0;
    const body = JSON.stringify({
      technician: 'unused',
      lat: 48.85,
      lon: 2.35,
      scheduledAt: Date.now() + 3_600_000,
      durationMin: 60,
    });
    const started = Date.now();
    const res = await autocannon({
      url: server.httpUrl,
      connections: 20,
      duration: seconds,
      requests: [
        {
          method: 'PUT',
          headers: { authorization: `Bearer ${dispatch}`, 'content-type': 'application/json' },
          setupRequest: (req) => {
            const i = next++;
            return { ...req, path: `/v1/orders/ev-${i}`, body: body.replace('unused', `ev-tech-${i}`) };
          },
        },
      ],
    });
    const loadEnded = Date.now();
    const deliveredAtEnd = rx.count();
    const metrics = await server.metrics();
    const stored = metricValue(metrics, 'fieldtrack_events_total');
    const drained = await waitFor(() => rx.count() >= stored, 120_000);
    const drainedAt = Date.now();
    return {
      seconds,
      ordersCreated: res['2xx'],
      eventsStored: stored,
      eventsStoredPerSec: Math.round(stored / ((loadEnded - started) / 1000)),
      deliveredPerSecUnderLoad: Math.round(deliveredAtEnd / ((loadEnded - started) / 1000)),
      deliveredPerSecToDrain: drained ? Math.round(stored / ((drainedAt - started) / 1000)) : 0,
      drainedAfterLoadMs: drained ? drainedAt - loadEnded : null,
      putP99Ms: res.latency.p99,
    };
  } finally {
    await server.stop();
    await rx.close();
  }
}

/** One hold run of phase 2. */
export interface HoldWithWebhooks {
  webhooks: number;
  /** The delivery thread's nice value (WEBHOOK_THREAD_NICE); null: no webhooks. */
  threadNice: number | null;
  round: number;
  acksPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  eventsStored: number;
  eventsDelivered: number;
  /** CPU seconds of the node during the hold: every thread, and its main thread alone. */
  cpuSec: number;
  mainThreadCpuSec: number;
  errors: Record<string, number>;
}

/** A hold arm: how many webhooks, and the delivery thread's nice value (null: the default). */
interface HoldArm {
  webhooks: number;
  threadNice: number | null;
}

/** The node's default WEBHOOK_THREAD_NICE (config.ts). */
const DEFAULT_THREAD_NICE = 10;
const HOLD_ARMS: HoldArm[] = [
  { webhooks: 0, threadNice: null },
  { webhooks: 10, threadNice: null },
  { webhooks: 10, threadNice: 0 },
];

async function holdWith(
  arm: HoldArm,
  round: number,
  devices: number,
  rate: number,
  seconds: number,
): Promise<HoldWithWebhooks> {
  const { webhooks } = arm;
  const rx = await receiver();
  const env = arm.threadNice === null ? EVENTS_ENV : { ...EVENTS_ENV, WEBHOOK_THREAD_NICE: String(arm.threadNice) };
  const server = await launch('full', env);
  try {
    for (let i = 0; i < webhooks; i++) await subscribe(server, `${rx.url}?n=${i}`);
    const pid = server.child.pid as number;
    const cpuBefore = server.stats().cpuSec;
    const mainBefore = mainThreadCpuSec(pid);
    const sim: SimResult = await runSim(server, {
      devices,
      pingHz: rate / devices,
      seconds,
      jobShare: 0.1,
      sosPerSec: 2,
      consoles: 1,
      progress: true,
    });
    const cpuSec = server.stats().cpuSec - cpuBefore;
    const mainSec = mainThreadCpuSec(pid) - mainBefore;
    const metrics = await server.metrics();
    return {
      webhooks,
      threadNice: webhooks === 0 ? null : (arm.threadNice ?? DEFAULT_THREAD_NICE),
      round,
      cpuSec: Math.round(cpuSec * 100) / 100,
      mainThreadCpuSec: Math.round(mainSec * 100) / 100,
      acksPerSec: sim.acksPerSec,
      ackP50Ms: sim.ack.p50,
      ackP99Ms: sim.ack.p99,
      eventsStored: metricValue(metrics, 'fieldtrack_events_total'),
      eventsDelivered: metricValue(metrics, 'fieldtrack_webhook_delivered_total'),
      errors: sim.errors,
    };
  } finally {
    await server.stop();
    await rx.close();
  }
}

/** Everything the events bench measured. */
export interface EventsBench {
  delivery: DeliveryFigures;
  hold: HoldWithWebhooks[];
  holdDevices: number;
  holdRate: number;
  holdSeconds: number;
  rounds: number;
}

/** Runs both phases; `quick` shortens them (and runs the hold arms once). */
export async function runEventsBench(quick: boolean, rounds = quick ? 1 : 2): Promise<EventsBench> {
  const seconds = quick ? 5 : 15;
  const holdDevices = quick ? 500 : 2000;
  const holdRate = quick ? 500 : 2000;
  const delivery = await deliveryRate(seconds);
  const hold: HoldWithWebhooks[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const arm of HOLD_ARMS) hold.push(await holdWith(arm, round, holdDevices, holdRate, seconds));
  }
  return { delivery, hold, holdDevices, holdRate, holdSeconds: seconds, rounds };
}

/** The bench.md lines of the events bench. */
export function eventsTable(e: EventsBench): string[] {
  const d = e.delivery;
  return [
    `## Events for the dispatch system`,
    '',
    `Delivery: ${d.seconds} s of \`PUT /v1/orders/:id\` (new ids, 20 connections) on a node with one webhook to a local receiver answering 200: ${d.ordersCreated} orders, ${d.eventsStored} events stored (${d.eventsStoredPerSec}/s, PUT p99 ${d.putP99Ms} ms); **${d.deliveredPerSecUnderLoad} events/s delivered** while the load ran, ${d.deliveredPerSecToDrain}/s counted to the last delivery (${d.drainedAfterLoadMs === null ? 'not all delivered within 120 s' : `all delivered ${d.drainedAfterLoadMs} ms after the load stopped`}).`,
    '',
    `Device acks with webhooks: ${e.holdDevices} devices, ${e.holdRate} pings/s, ${e.holdSeconds} s, 10% running jobs, 2 SOS/s, each on a fresh node; the arms take turns, ${e.rounds} round(s). The delivery thread runs at nice ${DEFAULT_THREAD_NICE} by default (\`WEBHOOK_THREAD_NICE\`); the nice 0 arm is for comparison.`,
    '',
    '| round | webhooks | delivery thread nice | acks/s | ack p50 | ack p99 | events stored | deliveries | node CPU s (main thread) | errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...e.hold.map(
      (h) =>
        `| ${h.round} | ${h.webhooks} | ${h.threadNice ?? '-'} | ${h.acksPerSec} | ${h.ackP50Ms.toFixed(1)} ms | ${h.ackP99Ms.toFixed(1)} ms | ${h.eventsStored} | ${h.eventsDelivered} | ${h.cpuSec.toFixed(1)} (${h.mainThreadCpuSec.toFixed(1)}) | ${JSON.stringify(h.errors)} |`,
    ),
  ];
}

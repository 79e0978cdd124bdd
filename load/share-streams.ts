/**
 * `npm run bench:share`: does a node holding many open customer streams
 * (`/t/<token>/stream`) answer its devices as fast as without them? Issue 17's target:
 * 5,000 open streams must not raise the device ack p99 by more than 10%.
 *
 * One node; `--devices` technicians, each with a departed order, pinging at `--hz` towards
 * their customer (so every ping changes the state of an order that has streams); each
 * order gets a link. Phase A runs `--seconds` with no stream open, phase B the same with
 * `--streams` streams open, spread evenly over the orders (each receives every change of
 * its order, as a customer's page would; they are read in a process of their own,
 * share-stream-readers.ts). The ack p99 is measured twice per phase: by the devices (send
 * to ack, in this process) and by the node
 * itself (`fieldtrack_ack_latency_seconds`, a bucket bound). Written to
 * `load/results/share-streams.json`. Not part of `npm run bench` (it needs its own node and
 * minutes of a 2-core machine); run it on its own.
 */

import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeviceClient } from '../src/client/index.js';
import { latencyHistogram, launch, mint } from './launch.js';
import { windowQuantileBound } from './prom-histogram.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '500' },
    streams: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '30' },
    hz: { type: 'string', default: '1' },
  },
});
const DEVICES = Number(values.devices);
const STREAMS = Number(values.streams);
const SECONDS = Number(values.seconds);
const HZ = Number(values.hz);
const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const perOrder = Math.ceil(STREAMS / DEVICES);
  const node = await launch('full', {
    SHARE_MAX_STREAMS: String(STREAMS + 100),
    SHARE_MAX_STREAMS_PER_ORDER: String(perOrder + 1),
  });
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

  process.stderr.write(`share-streams: ${DEVICES} devices at ${HZ} Hz, ${STREAMS} streams, ${SECONDS} s per phase\n`);
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

  const hist = latencyHistogram();
  let acked = 0;
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
        void d.client.ping({ ts, lat: d.home.lat + north, lon: d.home.lon, acc: 5 }).then((reply) => {
          if (reply.t !== 'ack') {
            refused[reply.code] = (refused[reply.code] ?? 0) + 1;
            return;
          }
          acked++;
          hist.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)));
        });
      }
      await sleep(Math.max(0, 1000 / HZ - (Date.now() - round)));
    }
  })();

  const phase = async (name: string) => {
    hist.reset();
    const ackedBefore = acked;
    const before = await node.metrics();
    await sleep(SECONDS * 1000);
    const after = await node.metrics();
    const nodeP99 = windowQuantileBound(before, after, 'fieldtrack_ack_latency_seconds', 0.99);
    const out = {
      phase: name,
      acks: acked - ackedBefore,
      clientP50Ms: hist.getValueAtPercentile(50) / 1000,
      clientP99Ms: hist.getValueAtPercentile(99) / 1000,
      nodeP99BoundMs: nodeP99 === null ? null : nodeP99 * 1000,
    };
    process.stderr.write(`${JSON.stringify(out)}\n`);
    return out;
  };

  // Warm-up as long as a phase: the first seconds after connecting (JIT, the archive's first
  // merges) are slower, and would make the phase without streams look worse than it is.
  await sleep(SECONDS * 1000);
  const a = await phase('no streams');

  // The customers read their streams in a process of their own (share-stream-readers.ts).
  const readers = fork(join(here, 'share-stream-readers.js'), [
    JSON.stringify({ httpUrl: node.httpUrl, tokens, streams: STREAMS }),
  ]);
  const fromReaders = (t: string) =>
    new Promise<{ t: string; open?: number; events?: number }>((resolve) => {
      const on = (m: { t: string }) => {
        if (m.t !== t) return;
        readers.off('message', on);
        resolve(m);
      };
      readers.on('message', on);
    });
  process.stderr.write(`opening ${STREAMS} streams\n`);
  await fromReaders('open');
  const countEvents = async (): Promise<number> => {
    const reply = fromReaders('events');
    readers.send({ t: 'count' });
    return (await reply).events ?? 0;
  };
  const eventsBefore = await countEvents();
  const b = await phase(`${STREAMS} streams`);
  const eventsPerSec = ((await countEvents()) - eventsBefore) / SECONDS;

  running = false;
  await pinger;
  readers.send({ t: 'stop' });
  for (const d of devices) await d.client.close();
  await node.stop();

  const ratio = a.clientP99Ms > 0 ? b.clientP99Ms / a.clientP99Ms : null;
  const result = {
    at: new Date().toISOString(),
    devices: DEVICES,
    hz: HZ,
    streams: STREAMS,
    secondsPerPhase: SECONDS,
    phases: [a, b],
    streamEventsPerSec: Math.round(eventsPerSec),
    pingsRefused: refused,
    clientP99Ratio: ratio,
    target: 'device ack p99 with the streams open at most 1.10x without',
    verdict: ratio === null || b.acks === 0 ? 'not measured' : ratio <= 1.1 ? 'met' : 'missed',
  };
  const file = join(here, '..', '..', 'load', 'results', 'share-streams.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`share-streams failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

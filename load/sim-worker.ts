/**
 * One simulator process: a slice of the simulated devices (and, in the first process,
 * the safety consoles), connected from its own loopback source address. The parent
 * (sim.ts) drives it over IPC: `connect` -> `go` -> `stop`, and gets progress counters and
 * the final histograms back. Kept in its own process so that a run can exceed the
 * per-process open-file limit and the sockets' CPU is spread over the cores.
 */
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { ConnectionClosedError, DeviceClient, FixUplink, type Reply, SafetyClient } from '../src/client/index.js';
import type { Stamps } from './console-ack.js';
import { type FrameCounts, FrameTally } from './frame-tally.js';
import { latencyHistogram, mint } from './launch.js';

/** What one worker is asked to simulate. */
export interface WorkerPlan {
  index: number;
  wsUrl: string;
  httpUrl: string;
  /** `full` creates orders over HTTP first; `baseline` only pings. */
  target: 'full' | 'baseline';
  localAddress: string;
  devices: number;
  /** Pings per second per device (open loop); 0 with `window` > 0 for closed loop. */
  pingHz: number;
  /** Closed loop: pings each device keeps in flight (max-throughput runs). */
  window: number;
  /** Share of devices that run a whole job during the run. */
  jobShare: number;
  /** `full` only: create each device's order over HTTP before connecting (jobs need one). */
  orders: boolean;
  /** SOS per second over this worker's devices. */
  sosPerSec: number;
  /** Safety consoles; the first one acknowledges, then resolves, every SOS it sees. */
  consoles: number;
  secret: string;
  /** Length of the measured phase, for pacing the jobs. */
  durationSec: number;
  /** Longest wait for in-flight requests once the measured run ends; a frame still waiting is unanswered. */
  drainMs: number;
}

/** Counters a worker reports. */
export interface WorkerCounters {
  connected: number;
  sent: number;
  acks: number;
  errors: Record<string, number>;
  sosSent: number;
  sosSeen: number;
  jobsCompleted: number;
  /** Devices whose connection stayed open from `go` to `stop` (set at `stop`). */
  held: number;
  /** `rate_limited` (or, for fixes, `unavailable`) answers honoured: the device waited retryMs and sent again. */
  rateLimited: number;
}

/** Final report of a worker: counters plus encoded histograms (µs). */
export interface WorkerResult extends WorkerCounters {
  ackHist: string;
  sosHist: string;
  /**
   * The two halves of a new incident's SOS-to-console time, split at the alert's `ts` (the
   * node's clock when it announced the incident; one machine, so one clock): from the
   * device's send to the node's announcement, and from there to the console reading it.
   */
  sosToNodeHist: string;
  sosFromNodeHist: string;
  /** Request frames sent while measuring, from send to answer. */
  frameHist: string;
  frames: FrameCounts;
  /** When console 0 sent its ack of each SOS incident (empty outside worker 0). */
  sosAcksSent: Stamps;
  /** When this worker's devices got `sos_status: acknowledged`, by incident. */
  sosAcksSeen: Stamps;
}

const plan = JSON.parse(process.argv[2] as string) as WorkerPlan;
const counters: WorkerCounters = {
  connected: 0,
  sent: 0,
  acks: 0,
  errors: {},
  sosSent: 0,
  sosSeen: 0,
  jobsCompleted: 0,
  held: 0,
  rateLimited: 0,
};
const ackHist = latencyHistogram();
const sosHist = latencyHistogram();
const sosToNodeHist = latencyHistogram();
const sosFromNodeHist = latencyHistogram();
const frameHist = latencyHistogram();
const frameTally = new FrameTally(frameHist);
const sosAcksSent: Stamps = {};
const sosAcksSeen: Stamps = {};
let measuring = false;
let stopping = false;

function countError(code: string): void {
  counters.errors[code] = (counters.errors[code] ?? 0) + 1;
}

function tally(reply: Reply): boolean {
  if (reply.t === 'ack') return true;
  countError(reply.code);
  return false;
}

function failed(err: unknown): void {
  if (stopping && err instanceof ConnectionClosedError) return;
  countError(err instanceof ConnectionClosedError ? 'connection_closed' : 'client_error');
}

/**
 * A device client that times every request frame it sends (ping, batch, sos, depart, ...)
 * to its answer. `request` is the one path every typed call and the FixUplink go through,
 * so the public client stays as it is.
 */
class TimedDeviceClient extends DeviceClient {
  override request(msg: Parameters<DeviceClient['request']>[0]): Promise<Reply> {
    // A request on a closed socket is refused before it leaves: no frame to time.
    if (!measuring || !this.isOpen) return super.request(msg);
    const t0 = performance.now();
    frameTally.sent();
    const reply = super.request(msg);
    // A rejection (the connection closed) is no answer: the frame stays unanswered.
    reply.then(
      () => frameTally.answer(performance.now() - t0),
      () => undefined,
    );
    return reply;
  }
}

/** A simulated technician: a straight, noisy walk from home towards the customer. */
class Device {
  readonly id: string;
  /** The connection closed at some point of the measured run (then it reconnected or not). */
  dropped = false;
  readonly order: string;
  readonly client: DeviceClient;
  /** Pings through the client's uplink: a `rate_limited` ping waits retryMs and goes out in a batch. */
  readonly uplink: FixUplink;
  readonly home: [number, number];
  readonly customer: [number, number];
  readonly job: boolean;
  private timer: NodeJS.Timeout | undefined;
  private started = 0;

  constructor(
    i: number,
    token: string,
    readonly url: string,
  ) {
    this.id = `t${plan.index}-${i}`;
    this.order = `o${plan.index}-${i}`;
    this.client = new TimedDeviceClient({ url, token, localAddress: plan.localAddress, reconnect: true });
    this.client.on('push', (msg) => {
      if (msg.t === 'sos_status' && msg.state === 'acknowledged') sosAcksSeen[msg.incident] ??= Date.now();
    });
    // A reconnect hides a drop from `isOpen`: remember any close during the measured run.
    this.client.on('close', () => {
      if (measuring && !stopping) this.dropped = true;
    });
    this.uplink = new FixUplink(this.client);
    // Spread over a ~20 km square around a city centre; customer 1-3 km away.
    this.home = [48.8 + Math.random() * 0.2, 2.25 + Math.random() * 0.2];
    const bearing = Math.random() * 2 * Math.PI;
    const km = 1 + Math.random() * 2;
    this.customer = [this.home[0] + (Math.cos(bearing) * km) / 111, this.home[1] + (Math.sin(bearing) * km) / 73];
    this.job = Math.random() < plan.jobShare;
  }

  /** Where the device is at `progress` in [0, 1] of its trip, with ~5 m of GPS noise. */
  position(progress: number): [number, number] {
    const p = Math.min(1, progress);
    const noise = (): number => (Math.random() - 0.5) * 0.0001;
    return [
      this.home[0] + (this.customer[0] - this.home[0]) * p + noise(),
      this.home[1] + (this.customer[1] - this.home[1]) * p + noise(),
    ];
  }

  ping(): void {
    const progress = (Date.now() - this.started) / (plan.durationSec * 1000 * 0.5);
    const [lat, lon] = this.position(this.job ? progress : progress * 0.2);
    const t0 = process.hrtime.bigint();
    counters.sent++;
    this.uplink.send({ ts: Date.now(), lat, lon, acc: 8, spd: 9, hdg: 90, bat: 80 }).then((reply) => {
      if (tally(reply)) {
        counters.acks++;
        // Fixes are made only between go and stop; one acked during the drain is among the slowest, so it counts.
        ackHist.recordValue(Number((process.hrtime.bigint() - t0) / 1000n) || 1);
      }
      if (plan.window > 0 && !stopping && this.client.isOpen) this.ping();
    }, failed);
  }

  begin(): void {
    this.started = Date.now();
    if (plan.window > 0) {
      for (let k = 0; k < plan.window; k++) this.ping();
      return;
    }
    const period = 1000 / plan.pingHz;
    // A random phase, so the devices do not all ping in the same millisecond.
    setTimeout(() => {
      if (stopping) return;
      this.ping();
      this.timer = setInterval(() => this.ping(), period);
    }, Math.random() * period);
    if (this.job && plan.target === 'full') void this.runJob();
  }

  /** depart -> check-in at the customer -> start -> complete, spread over the run. */
  private async runJob(): Promise<void> {
    const d = plan.durationSec * 1000;
    const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      await wait(Math.random() * d * 0.1);
      if (stopping || !tally(await this.client.depart(this.order))) return;
      await wait(d * 0.4);
      const [lat, lon] = this.customer;
      if (stopping || !tally(await this.client.checkin({ order: this.order, ts: Date.now(), lat, lon, acc: 5 })))
        return;
      await wait(d * 0.1);
      if (stopping || !tally(await this.client.start(this.order))) return;
      await wait(d * 0.2);
      if (stopping || !tally(await this.client.complete(this.order))) return;
      counters.jobsCompleted++;
    } catch (err) {
      failed(err);
    }
  }

  sos(): void {
    const [lat, lon] = this.position(0.5);
    counters.sosSent++;
    this.pressSos(Date.now(), lat, lon, 3).then(tally, failed);
  }

  /** Sends an SOS; a `rate_limited` answer is honoured: wait retryMs, then press again (a few times at most). */
  private async pressSos(ts: number, lat: number, lon: number, retries: number): Promise<Reply> {
    const reply = await this.client.sos({ ts, lat, lon, note: 'bench' });
    if (reply.t !== 'err' || reply.code !== 'rate_limited' || retries === 0 || stopping) return reply;
    counters.rateLimited++;
    await new Promise((r) => setTimeout(r, typeof reply.retryMs === 'number' ? reply.retryMs : 1000));
    return this.pressSos(ts, lat, lon, retries - 1);
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Creates each device's order, a few requests at a time. */
async function createOrders(devices: Device[]): Promise<void> {
  const token = await mint(`bench-dispatch-${plan.index}`, 'dispatch', plan.secret);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < devices.length) {
      const d = devices[next++] as Device;
      const res = await fetch(`${plan.httpUrl}/v1/orders/${d.order}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          technician: d.id,
          lat: d.customer[0],
          lon: d.customer[1],
          radius: 100,
          scheduledAt: Date.now() + 3_600_000,
          durationMin: 60,
        }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) countError(`order_http_${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
}

/**
 * A safety console timing each SOS press from the device's time to its first push here.
 * Console 0 also plays the operator: it acknowledges each new incident at once, stamping
 * when it sent the ack (the device's `sos_status` closes that measurement), then resolves
 * it, so a later press of the same technician opens a new incident instead of joining one
 * nobody will acknowledge again.
 */
async function connectConsole(k: number): Promise<SafetyClient> {
  const c = new SafetyClient({
    url: plan.wsUrl,
    token: await mint(`bench-op-${k}`, 'safety', plan.secret),
    localAddress: plan.localAddress,
    reconnect: true,
  });
  const seen = new Set<string>();
  c.on('push', (msg) => {
    if (msg.t !== 'alert' || msg.alert.kind !== 'sos') return;
    // A device pressing again while its SOS is open adds a press to the same incident:
    // each press is its own measurement, timed from its own device time.
    const detail = (msg.alert.detail ?? {}) as { deviceTs?: number; presses?: number; lastPressTs?: number };
    const presses = detail.presses ?? 1;
    const key = `${msg.alert.id}#${presses}`;
    if (seen.has(key)) return;
    seen.add(key);
    const deviceTs = presses > 1 ? detail.lastPressTs : detail.deviceTs;
    if (k === 0) counters.sosSeen++;
    // SOS are pressed only between go and stop; a push arriving during the drain is a slow one and counts.
    const seenAt = Date.now();
    if (typeof deviceTs === 'number') sosHist.recordValue(Math.max(1, (seenAt - deviceTs) * 1000));
    // Only a new incident's `ts` is when the node announced this press (a later press keeps it).
    if (presses === 1 && typeof deviceTs === 'number') {
      sosToNodeHist.recordValue(Math.max(1, (msg.alert.ts - deviceTs) * 1000));
      sosFromNodeHist.recordValue(Math.max(1, (seenAt - msg.alert.ts) * 1000));
    }
    if (k === 0 && msg.alert.state === 'open' && sosAcksSent[msg.alert.id] === undefined) acknowledge(c, msg.alert.id);
  });
  await c.connect();
  return c;
}

/** The operator's answer to a new incident: ack (timed), then resolve. */
function acknowledge(c: SafetyClient, id: string): void {
  sosAcksSent[id] = Date.now();
  c.ack(id)
    .then((reply) => (tally(reply) ? c.resolve(id) : reply))
    .then(tally, failed);
}

async function connectAll(): Promise<World> {
  const devices: Device[] = [];
  for (let i = 0; i < plan.devices; i++)
    devices.push(new Device(i, await mint(`t${plan.index}-${i}`, 'device', plan.secret), plan.wsUrl));
  if (plan.target === 'full' && plan.orders) await createOrders(devices);
  const consoles: SafetyClient[] = [];
  for (let k = 0; k < plan.consoles; k++) consoles.push(await connectConsole(k));
  // Connect in lanes: quick, without a thundering herd of handshakes.
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < devices.length) {
      const d = devices[next++] as Device;
      try {
        await d.client.connect();
        counters.connected++;
      } catch {
        countError('connect_failed');
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  return { devices, consoles };
}

interface World {
  devices: Device[];
  consoles: SafetyClient[];
}
let world: World | undefined;
let sosTimer: NodeJS.Timeout | undefined;
/**
 * Stops offering load and lets what is in flight drain (pings, batches held after
 * `rate_limited`, SOS and the console's acks), so every frame sent can be answered; the
 * frame tally closes at the end of the drain. Sockets stay open until `close`: another
 * worker's device may still be waiting for this worker's console to acknowledge its SOS.
 */
async function drain(w: World): Promise<void> {
  counters.held = w.devices.filter((d) => d.client.isOpen && !d.dropped).length;
  measuring = false;
  if (sosTimer) clearInterval(sosTimer);
  for (const d of w.devices) d.end();
  stopping = true;
  const deadline = Date.now() + plan.drainMs;
  const busy = (): boolean =>
    w.devices.some((d) => d.client.inFlight > 0 || d.uplink.pending > 0) || w.consoles.some((c) => c.inFlight > 0);
  while (Date.now() < deadline && busy()) await new Promise((r) => setTimeout(r, 50));
  frameTally.close();
  for (const d of w.devices) {
    d.uplink.stop();
    counters.rateLimited += d.uplink.rateLimited;
  }
}

const progress = setInterval(() => process.send?.({ type: 'progress', counters }), 1000);

process.on('message', async (m: { type: string }) => {
  if (m.type === 'connect') {
    world = await connectAll();
    process.send?.({ type: 'connected', counters });
  } else if (m.type === 'go' && world) {
    measuring = true;
    for (const d of world.devices) if (d.client.isOpen) d.begin();
    if (plan.sosPerSec > 0 && world.devices.length > 0) {
      const devices = world.devices;
      sosTimer = setInterval(
        () => (devices[Math.floor(Math.random() * devices.length)] as Device).sos(),
        1000 / plan.sosPerSec,
      );
    }
  } else if (m.type === 'count') {
    // Answered at once, so the parent reads every worker's counters at one instant.
    process.send?.({ type: 'count', counters });
  } else if (m.type === 'stop' && world) {
    await drain(world);
    process.send?.({ type: 'drained' });
  } else if (m.type === 'close' && world) {
    await Promise.all([...world.devices.map((d) => d.client.close()), ...world.consoles.map((c) => c.close())]);
    clearInterval(progress);
    const result: WorkerResult = {
      ...counters,
      ackHist: hdr.encodeIntoCompressedBase64(ackHist),
      sosHist: hdr.encodeIntoCompressedBase64(sosHist),
      sosToNodeHist: hdr.encodeIntoCompressedBase64(sosToNodeHist),
      sosFromNodeHist: hdr.encodeIntoCompressedBase64(sosFromNodeHist),
      frameHist: hdr.encodeIntoCompressedBase64(frameHist),
      frames: frameTally.close(),
      sosAcksSent,
      sosAcksSeen,
    };
    process.send?.({ type: 'done', result }, () => process.exit(0));
  }
});

/**
 * One simulator process: a slice of the simulated devices (and, in the first process,
 * the safety consoles), connected from its own loopback source address. The parent
 * (sim.ts) drives it over IPC: `connect` -> `go` -> `stop`, and gets progress counters and
 * the final histograms back. Kept in its own process so that a run can exceed the
 * per-process open-file limit and the sockets' CPU is spread over the cores.
 */
import * as hdr from 'hdr-histogram-js';
import { ConnectionClosedError, DeviceClient, FixUplink, type Reply, SafetyClient } from '../src/client/index.js';
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
  /** SOS per second over this worker's devices. */
  sosPerSec: number;
  consoles: number;
  secret: string;
  /** Length of the measured phase, for pacing the jobs. */
  durationSec: number;
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
    this.client = new DeviceClient({ url, token, localAddress: plan.localAddress, reconnect: true });
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
        if (measuring) ackHist.recordValue(Number((process.hrtime.bigint() - t0) / 1000n) || 1);
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

async function connectAll(): Promise<{ devices: Device[]; consoles: SafetyClient[] }> {
  const devices: Device[] = [];
  for (let i = 0; i < plan.devices; i++)
    devices.push(new Device(i, await mint(`t${plan.index}-${i}`, 'device', plan.secret), plan.wsUrl));
  if (plan.target === 'full') await createOrders(devices);
  const consoles: SafetyClient[] = [];
  for (let k = 0; k < plan.consoles; k++) {
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
      if (measuring && typeof deviceTs === 'number') sosHist.recordValue(Math.max(1, (Date.now() - deviceTs) * 1000));
    });
    await c.connect();
    consoles.push(c);
  }
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

let world: { devices: Device[]; consoles: SafetyClient[] } | undefined;
let sosTimer: NodeJS.Timeout | undefined;
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
    counters.held = world.devices.filter((d) => d.client.isOpen && !d.dropped).length;
    measuring = false;
    if (sosTimer) clearInterval(sosTimer);
    for (const d of world.devices) d.end();
    stopping = true;
    // Let in-flight requests drain before closing, so every sent ping can be acked.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && world.devices.some((d) => d.client.inFlight > 0 || d.uplink.pending > 0))
      await new Promise((r) => setTimeout(r, 50));
    for (const d of world.devices) {
      d.uplink.stop();
      counters.rateLimited += d.uplink.rateLimited;
    }
    await Promise.all([...world.devices.map((d) => d.client.close()), ...world.consoles.map((c) => c.close())]);
    clearInterval(progress);
    const result: WorkerResult = {
      ...counters,
      ackHist: hdr.encodeIntoCompressedBase64(ackHist),
      sosHist: hdr.encodeIntoCompressedBase64(sosHist),
    };
    process.send?.({ type: 'done', result }, () => process.exit(0));
  }
});

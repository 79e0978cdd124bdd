/**
 * The fault campaign (issue 15): three fieldtrack nodes on a Redis primary, its replica and
 * Sentinel, steady simulated devices (pings, order cycles, SOS) and two consoles that
 * acknowledge and resolve every SOS, under a seeded random schedule of faults: SIGSTOP and
 * SIGCONT of a node (5-25 s), kill -9 and restart of a node, kill -9 of the Redis primary,
 * console reconnects. Devices act like a phone behind a load balancer: a request
 * unanswered for 4 s or a closed socket makes them reconnect to the next node.
 * Then the checker (chaos-check.ts) verifies the invariants from what the clients saw and
 * what every node's archive holds. Prints the seed, the schedule and the verdict; exits 1
 * on any violation, 2 when the campaign itself could not run.
 *
 * Everything a failure needs to be understood is kept in the output folder (`--out`, by
 * default a new folder under the system's temp dir, printed at the start and the end):
 * every node process's pino output (`node<slot>.run<n>.log`, a new file per restart, and
 * its stderr), `campaign.log` (what the clients saw and did, and the faults, one JSON
 * line each with `at` in ms; also every change of the sentinel's primary and of each Redis
 * server's role), the Sentinel's and each Redis server's own log (`sentinel.log`,
 * `redis-<port>.log`), the schedule and the verdict. On a violation the lines of
 * those logs that mention its alert or technician are printed under it (and kept in
 * `violations.txt`).
 *
 * `npm run chaos -- --seed 7 --minutes 2 [--devices 9] [--out DIR]`
 */
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DeviceClient, type Reply, SafetyClient } from '../src/client/index.js';
import type { Alert, TrackPoint } from '../src/protocol.js';
import { SENTINEL_NAME, SentinelRedis } from '../test/support/redis-sentinel.js';
import { ServerProcess, token } from '../test/support/server-process.js';
import { check, type Observations, type SeenChange } from './chaos-check.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    minutes: { type: 'string', default: '2' },
    devices: { type: 'string', default: '9' },
    out: { type: 'string' },
  },
});
const SEED = Number(values.seed);
const OUT =
  values.out ??
  join(tmpdir(), 'fieldtrack-chaos', `seed-${values.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const RUN_MS = Number(values.minutes) * 60_000;
const DEVICES = Number(values.devices);
const LEVEL2_MS = 15_000;
const LEVEL3_MS = 30_000;
const REQUEST_TIMEOUT_MS = 4_000;
const SITE = { lat: 48.8566, lon: 2.3522 };
const ENV = {
  SOS_LEVEL2_MS: String(LEVEL2_MS),
  SOS_LEVEL3_MS: String(LEVEL3_MS),
  SOS_SLA_MS: '900000',
  OFFLINE_MS: '900000',
  LATE_DEPARTURE_MS: '3600000',
  LATE_ARRIVAL_MS: '3600000',
  // Alert changes, lease lapses and the like are logged at debug: what a failure is read from.
  LOG_LEVEL: 'debug',
};

/** `campaign.log`: one JSON line per thing the clients saw or did, and per fault. */
class CampaignLog {
  private readonly stream;
  private closing: Promise<void> | null = null;
  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'a' });
  }
  note(ev: string, fields: Record<string, unknown> = {}): void {
    if (this.closing === null) this.stream.write(`${JSON.stringify({ ...fields, at: Date.now(), ev })}\n`);
  }
  close(): Promise<void> {
    this.closing ??= new Promise((r) => this.stream.end(r));
    return this.closing;
  }
}
let clog: CampaignLog;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Notes in campaign.log each change of the primary the sentinel names and of the role each
 * server reports, until `done()`: the failovers, and any moment when two servers both
 * answer as primary (a restarted old primary before the sentinel turns it into a replica).
 */
async function watchRedis(redis: SentinelRedis, done: () => boolean): Promise<void> {
  let last = '';
  while (!done()) {
    const roles: Record<number, string | null> = {};
    for (const s of redis.servers) roles[s.port] = s.running ? await redis.role(s) : 'down';
    const primary = await redis.primaryPort().catch(() => null);
    const now = JSON.stringify({ primary, roles });
    if (now !== last) clog.note('redis roles', { primary, roles });
    last = now;
    await sleep(250);
  }
}

/** mulberry32: a small seeded PRNG, so a seed replays the same schedule. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One planned fault. */
type Fault =
  | { at: number; kind: 'pause'; node: number; ms: number }
  | { at: number; kind: 'kill'; node: number; ms: number }
  | { at: number; kind: 'redis'; ms: number }
  | { at: number; kind: 'console'; console: number; node: number; ms: number };

/** The schedule a seed gives: one fault at a time, each followed by a quiet gap. */
export function schedule(seed: number, runMs: number): Fault[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const out: Fault[] = [];
  let at = 10_000;
  while (at < runMs - 20_000) {
    const pick = rnd();
    let f: Fault;
    if (pick < 0.35) f = { at, kind: 'pause', node: int(0, 2), ms: int(5_000, 25_000) };
    else if (pick < 0.65) f = { at, kind: 'kill', node: int(0, 2), ms: int(3_000, 10_000) };
    else if (pick < 0.85) f = { at, kind: 'redis', ms: 10_000 };
    else f = { at, kind: 'console', console: int(0, 1), node: int(0, 2), ms: 1_000 };
    out.push(f);
    at += f.ms + int(8_000, 15_000);
  }
  return out;
}

/** Rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The three node slots: a node is down (null), paused, or serving. */
class Nodes {
  readonly procs: (ServerProcess | null)[] = [];
  readonly paused = new Set<number>();
  readonly dataDirs: string[] = [];
  private readonly runs: number[] = [];
  constructor(
    readonly env: Record<string, string>,
    readonly out: string,
  ) {}

  async start(i: number): Promise<void> {
    const run = (this.runs[i] ?? 0) + 1;
    this.runs[i] = run;
    const p = await ServerProcess.start({
      env: this.env,
      logTo: join(this.out, `node${i}.run${run}`),
      ...(this.dataDirs[i] !== undefined ? { dataDir: this.dataDirs[i] } : {}),
    });
    this.procs[i] = p;
    this.dataDirs[i] = p.dataDir;
    clog.note('node started', { node: i, run, pid: p.child.pid, port: p.port });
  }

  /** The URL of node `i` if its process runs (a paused one included: clients cannot tell). */
  url(i: number): string | null {
    return this.procs[i]?.wsUrl ?? null;
  }
}

/** One simulated technician's phone. */
class Device {
  client: DeviceClient | null = null;
  node: number;
  openedAt = 0;
  readonly intervals: Array<[number, number]> = [];
  readonly pings: number[] = [];
  readonly statuses: Record<string, string[]> = {};
  presses = 0;
  incident: string | null = null;
  incidentAt = 0;
  nextSosAt: number;
  order: { id: string; step: number; completeUnanswered?: boolean } | null = null;
  orderSeq = 0;
  lastPing = 0;
  failingSince: number | null = null;
  longest = 0;
  /** When the longest unserved stretch began and ended. */
  longestSpan: [number, number] = [0, 0];
  lastPingAck = Date.now();
  /** Every third device presses SOS now and then. */
  readonly sosDevice: boolean;

  constructor(
    readonly tech: string,
    index: number,
    private readonly nodes: Nodes,
    private readonly rnd: () => number,
    readonly sos: AckedSosSink,
  ) {
    this.node = index % 3;
    this.sosDevice = index % 3 === 0;
    this.nextSosAt = Date.now() + 5_000 + rnd() * 30_000;
  }

  private async connect(): Promise<boolean> {
    for (let k = 0; k < 3; k++) {
      const url = this.nodes.url(this.node);
      if (url !== null) {
        const c = new DeviceClient({ url, token: await token(this.tech, 'device') });
        c.on('push', (m) => {
          if (m.t === 'sos_status') {
            clog.note('device sos_status', { tech: this.tech, incident: m.incident, state: m.state });
            const states = this.statuses[m.incident] ?? [];
            states.push(m.state);
            this.statuses[m.incident] = states;
            if (m.state === 'resolved' && m.incident === this.incident) this.incident = null;
          }
        });
        c.on('close', (code: number) => {
          if (this.client === c) clog.note('device closed by server', { tech: this.tech, node: this.node, code });
          this.closed(c);
        });
        try {
          await within(c.connect(), REQUEST_TIMEOUT_MS);
          this.client = c;
          this.openedAt = Date.now();
          clog.note('device connected', { tech: this.tech, node: this.node });
          return true;
        } catch (err) {
          clog.note('device connect failed', { tech: this.tech, node: this.node, err: (err as Error).message });
          void c.close().catch(() => undefined);
        }
      }
      this.node = (this.node + 1) % 3;
    }
    return false;
  }

  private closed(c: DeviceClient): void {
    if (this.client !== c) return;
    this.client = null;
    this.intervals.push([this.openedAt, Date.now()]);
    this.node = (this.node + 1) % 3;
  }

  /** Drops the connection (a request timed out: the node may be frozen) and moves on. */
  private abandon(): void {
    const c = this.client;
    if (c === null) return;
    this.closed(c);
    void c.close().catch(() => undefined);
  }

  private async send(msg: Parameters<DeviceClient['request']>[0]): Promise<Reply | null> {
    const c = this.client;
    if (c === null) return null;
    const sentAt = Date.now();
    try {
      const r = await within(c.request(msg), REQUEST_TIMEOUT_MS);
      if (r.t !== 'ack' || msg.t !== 'ping')
        clog.note('device request', { tech: this.tech, node: this.node, msg, reply: r, ms: Date.now() - sentAt });
      return r;
    } catch (err) {
      clog.note('device request unanswered; reconnecting', {
        tech: this.tech,
        node: this.node,
        msg,
        err: (err as Error).message,
      });
      this.abandon();
      return null;
    }
  }

  private work(ok: boolean): void {
    const now = Date.now();
    if (ok) {
      if (this.failingSince !== null) this.stretch(this.failingSince, now);
      this.failingSince = null;
    } else this.failingSince ??= now;
  }

  /** Records an unserved stretch [from, to], keeping the longest. */
  private stretch(from: number, to: number): void {
    if (to - from <= this.longest) return;
    this.longest = to - from;
    this.longestSpan = [from, to];
  }

  async step(tick: number, dispatch: (tech: string, id: string) => Promise<boolean>): Promise<void> {
    if (this.client === null && !(await this.connect())) return;
    const ts = Math.max(this.lastPing + 1, Date.now());
    this.lastPing = ts;
    const r = await this.send({ t: 'ping', ts, lat: SITE.lat + (ts % 100) * 1e-7, lon: SITE.lon });
    const now = Date.now();
    if (r?.t === 'ack') {
      this.pings.push(ts);
      this.stretch(this.lastPingAck, now);
      this.lastPingAck = now;
    }
    if (this.client === null) return;
    if (this.sosDevice && this.incident === null && now >= this.nextSosAt) {
      this.presses++;
      const s = await this.send({ t: 'sos', ts: Date.now(), ...SITE, note: 'chaos' });
      if (s?.t === 'ack') {
        this.incident = String((s as unknown as { incident: string }).incident);
        this.incidentAt = Date.now();
        this.sos.push({ tech: this.tech, incident: this.incident, at: Date.now() });
        clog.note('sos acked to the device', { tech: this.tech, incident: this.incident });
      }
      this.work(s?.t === 'ack');
      return;
    }
    // An incident not resolved for long (its resolve lost with a console): press again later.
    if (this.incident !== null && now - this.incidentAt > 120_000) this.incident = null;
    if (this.incident === null && this.nextSosAt <= now) this.nextSosAt = now + 20_000 + this.rnd() * 40_000;
    if (tick % 5 !== 0) return;
    if (this.order === null) {
      const id = `${this.tech}-o${this.orderSeq}`;
      const ok = await dispatch(this.tech, id);
      if (ok) {
        this.order = { id, step: 0 };
        this.orderSeq++;
      }
      this.work(ok);
      return;
    }
    const o = this.order;
    const msgs = [
      { t: 'depart', order: o.id },
      { t: 'checkin', order: o.id, ts: Date.now(), ...SITE },
      { t: 'start', order: o.id },
      { t: 'complete', order: o.id },
    ] as const;
    const reply = await this.send(msgs[o.step] as Parameters<DeviceClient['request']>[0]);
    // `conflict`: the step was done already (its ack was lost with a frozen node).
    // A `complete` that went unanswered may have completed the order all the same (the
    // node ran it after the phone gave up waiting); a node that did not run it then knows
    // nothing of the finished order (finished orders leave shared state) and answers the
    // retry `forbidden`, as PROTOCOL.md has it for unknown orders: the step was done.
    const finished =
      o.step === msgs.length - 1 && o.completeUnanswered === true && reply?.t === 'err' && reply.code === 'forbidden';
    if (finished)
      clog.note('complete retried after no answer: forbidden counted as done', { tech: this.tech, order: o.id });
    if (o.step === msgs.length - 1 && reply === null) o.completeUnanswered = true;
    const done = reply?.t === 'ack' || (reply?.t === 'err' && reply.code === 'conflict') || finished;
    if (done) {
      o.step++;
      if (o.step === msgs.length) this.order = null;
    }
    this.work(done);
  }

  finish(): void {
    if (this.client !== null) this.intervals.push([this.openedAt, Date.now()]);
    if (this.failingSince !== null) this.stretch(this.failingSince, Date.now());
    void this.client?.close().catch(() => undefined);
  }
}

type AckedSosSink = Observations['sos'];

/** A safety console that reconnects to the next node when its node dies or stops answering. */
class Console {
  client: SafetyClient | null = null;
  gen = 0;
  node: number;
  constructor(
    readonly name: string,
    node: number,
    private readonly nodes: Nodes,
    private readonly onAlert: (c: SeenChange) => void,
    private readonly onSnapshot: (alerts: Alert[]) => void,
  ) {
    this.node = node;
  }

  async ensure(): Promise<SafetyClient | null> {
    if (this.client !== null) return this.client;
    for (let k = 0; k < 3; k++) {
      const url = this.nodes.url(this.node);
      if (url !== null) {
        const c = new SafetyClient({ url, token: await token(this.name, 'safety') });
        const label = `${this.name}#${++this.gen}`;
        c.on('push', (m) => {
          if (m.t === 'snapshot') {
            clog.note('console snapshot', { console: label, alerts: m.alerts.map(brief) });
            this.onSnapshot(m.alerts);
          } else if (m.t === 'alert') {
            clog.note('console alert', { console: label, ...brief(m.alert) });
            this.onAlert({ console: label, at: Date.now(), alert: m.alert });
          }
        });
        c.on('close', (code: number) => {
          if (this.client === c) {
            clog.note('console closed by server', { console: label, node: this.node, code });
            this.client = null;
          }
        });
        try {
          await within(c.connect(), REQUEST_TIMEOUT_MS);
          this.client = c;
          clog.note('console connected', { console: label, node: this.node });
          return c;
        } catch (err) {
          clog.note('console connect failed', { console: label, node: this.node, err: (err as Error).message });
          void c.close().catch(() => undefined);
        }
      }
      this.node = (this.node + 1) % 3;
    }
    return null;
  }

  /** Closes and reconnects to node `node` (a console reconnect fault, or a frozen node). */
  move(node: number): void {
    const c = this.client;
    this.client = null;
    this.node = node;
    void c?.close().catch(() => undefined);
  }

  async request(t: 'ack' | 'resolve', id: string): Promise<Reply | null> {
    const c = await this.ensure();
    if (c === null) return null;
    try {
      const r = await within(t === 'ack' ? c.ack(id) : c.resolve(id), REQUEST_TIMEOUT_MS);
      clog.note(`console ${t}`, { console: this.name, node: this.node, alert: id, reply: r });
      return r;
    } catch (err) {
      clog.note(`console ${t} unanswered; moving on`, {
        console: this.name,
        node: this.node,
        alert: id,
        err: (err as Error).message,
      });
      this.move((this.node + 1) % 3);
      return null;
    }
  }
}

/** What campaign.log keeps of an alert. */
function brief(a: Alert): Record<string, unknown> {
  return {
    alert: a.id,
    tech: a.tech,
    kind: a.kind,
    state: a.state,
    level: a.level,
    ts: a.ts,
    escalatedAt: a.detail?.escalatedAt,
    ...(a.order !== undefined ? { order: a.order } : {}),
  };
}

async function main(): Promise<number> {
  mkdirSync(OUT, { recursive: true });
  clog = new CampaignLog(join(OUT, 'campaign.log'));
  console.log(`chaos: logs and results go to ${OUT}`);
  const plan = schedule(SEED, RUN_MS);
  writeFileSync(
    join(OUT, 'schedule.json'),
    `${JSON.stringify({ seed: SEED, minutes: RUN_MS / 60_000, plan }, null, 1)}\n`,
  );
  console.log(
    `chaos: seed ${SEED}, ${RUN_MS / 60_000} min, ${DEVICES} devices, 3 nodes, redis primary+replica+sentinel`,
  );
  console.log('schedule:');
  for (const f of plan) console.log(`  ${JSON.stringify(f)}`);
  const rnd = prng(SEED ^ 0x5eed);

  const redis = await SentinelRedis.launch();
  let watching = true;
  const watcher = watchRedis(redis, () => !watching);
  const nodes = new Nodes({ ...ENV, REDIS_SENTINELS: redis.sentinels, REDIS_SENTINEL_NAME: SENTINEL_NAME }, OUT);
  const changes: SeenChange[] = [];
  const snapshots: SeenChange[] = [];
  const sosSeen = new Set<string>();
  const sosAcked: Observations['sos'] = [];
  const consoleAcks: Observations['consoleAcks'] = [];
  const devices: Device[] = [];
  let stopping = false;
  try {
    for (let i = 0; i < 3; i++) await nodes.start(i);
    const plans = new Map<string, { ackAt: number; acked: boolean; resolveAt: number; resolved: boolean }>();
    const plan1 = (a: Alert): void => {
      if (a.kind !== 'sos') return;
      sosSeen.add(a.id);
      if (!plans.has(a.id) && a.state !== 'resolved') {
        const ackAt = Date.now() + rnd() * 40_000;
        plans.set(a.id, { ackAt, acked: a.state === 'acknowledged', resolveAt: ackAt + 5_000, resolved: false });
      }
    };
    const consoles = [0, 1].map(
      (i) =>
        new Console(
          `op-${i}`,
          i,
          nodes,
          (c) => {
            changes.push(c);
            plan1(c.alert);
          },
          (alerts) => {
            const at = Date.now();
            for (const a of alerts) {
              snapshots.push({ console: `op-${i} snapshot`, at, alert: a });
              plan1(a);
            }
          },
        ),
    );
    for (const c of consoles) await c.ensure();

    const dispatchToken = await token('chaos-dispatch', 'dispatch');
    let dispatchNode = 0;
    const dispatch = async (tech: string, id: string): Promise<boolean> => {
      dispatchNode = (dispatchNode + 1) % 3;
      const p = nodes.procs[dispatchNode];
      if (p === null || p === undefined) return false;
      try {
        const res = await fetch(`${p.httpUrl}/v1/orders/${id}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${dispatchToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 60 }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status !== 200)
          clog.note('dispatch refused', { tech, order: id, node: dispatchNode, status: res.status, text });
        return res.status === 200;
      } catch (err) {
        clog.note('dispatch unanswered', { tech, order: id, node: dispatchNode, err: (err as Error).message });
        return false;
      }
    };

    for (let i = 0; i < DEVICES; i++) devices.push(new Device(`chaos-${i}`, i, nodes, rnd, sosAcked));
    const loops = devices.map(async (d, i) => {
      await sleep(i * 100);
      for (let tick = 0; !stopping; tick++) {
        await d.step(tick, dispatch);
        await sleep(1000);
      }
    });
    const operator = (async () => {
      while (!stopping) {
        const now = Date.now();
        for (const [id, p] of plans) {
          const c = consoles[Math.floor(rnd() * 2)] as Console;
          if (!p.acked && now >= p.ackAt) {
            const r = await c.request('ack', id);
            if (r?.t === 'ack') {
              p.acked = true;
              consoleAcks.push({ incident: id, at: Date.now() });
            }
          } else if (p.acked && !p.resolved && now >= p.resolveAt) {
            const r = await c.request('resolve', id);
            if (r?.t === 'ack' || (r?.t === 'err' && r.code === 'not_found')) p.resolved = true;
          }
        }
        for (const c of consoles) await c.ensure();
        await sleep(500);
      }
    })();

    // The faults, one at a time.
    const started = Date.now();
    for (const f of plan) {
      await sleep(Math.max(0, started + f.at - Date.now()));
      console.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${f.kind} ${JSON.stringify(f)}`);
      clog.note('fault', { ...f, offsetMs: f.at });
      if (f.kind === 'pause') {
        const p = nodes.procs[f.node];
        if (p == null) continue;
        p.pause();
        nodes.paused.add(f.node);
        await sleep(f.ms);
        p.resume();
        nodes.paused.delete(f.node);
        clog.note('fault over: SIGCONT', { node: f.node });
      } else if (f.kind === 'kill') {
        const p = nodes.procs[f.node];
        if (p == null) continue;
        await p.crash();
        nodes.procs[f.node] = null;
        clog.note('node killed (kill -9)', { node: f.node, pid: p.child.pid });
        await sleep(f.ms);
        await nodes.start(f.node);
      } else if (f.kind === 'redis') {
        const port = await redis.primaryPort();
        const primary = redis.servers.find((s) => s.port === port);
        clog.note('redis primary killed', { port });
        await primary?.kill();
        await sleep(f.ms);
        await primary?.start();
        clog.note('fault over: old primary restarted', { port });
      } else {
        consoles[f.console]?.move(f.node);
      }
    }
    await sleep(Math.max(0, started + RUN_MS - Date.now()));
    console.log('faults over; letting the cluster settle');
    // Every SOS still open gets acknowledged and resolved by the operator loop meanwhile.
    await sleep(20_000);
    stopping = true;
    await Promise.all([...loops, operator]);
    for (const d of devices) d.finish();
    const endedAt = Date.now();

    // Every node's archive, once its spool has drained.
    const archived: Record<string, number[]> = {};
    const readToken = await token('chaos-reader', 'dispatch');
    const readAll = async (): Promise<void> => {
      for (const d of devices) {
        const all: number[] = [];
        for (const p of nodes.procs) {
          if (p == null || d.pings.length === 0) continue;
          let from = d.pings[0] as number;
          const to = d.pings.at(-1) as number;
          for (;;) {
            const res = await fetch(`${p.httpUrl}/v1/technicians/${d.tech}/track?from=${from}&to=${to}&limit=10000`, {
              headers: { authorization: `Bearer ${readToken}` },
            });
            if (res.status !== 200) {
              await res.text();
              break;
            }
            const body = (await res.json()) as { points: TrackPoint[]; next?: number };
            for (const pt of body.points) all.push(pt[0]);
            if (body.next === undefined) break;
            from = body.next;
          }
        }
        archived[d.tech] = all;
      }
    };
    const deadline = Date.now() + 90_000;
    for (;;) {
      await readAll();
      const complete = devices.every((d) => {
        const got = new Set(archived[d.tech]);
        return d.pings.every((ts) => got.has(ts));
      });
      if (complete || Date.now() > deadline) break;
      await sleep(3000);
    }

    const sosPresses: Record<string, number> = {};
    const sosStatus: Record<string, string[]> = {};
    const connected: Record<string, Array<[number, number]>> = {};
    const pingsAcked: Record<string, number[]> = {};
    const longestUnserved: Record<string, number> = {};
    for (const d of devices) {
      sosPresses[d.tech] = d.presses;
      Object.assign(sosStatus, d.statuses);
      connected[d.tech] = d.intervals;
      pingsAcked[d.tech] = d.pings;
      longestUnserved[d.tech] = d.longest;
    }
    const violations = check({
      level2Ms: LEVEL2_MS,
      level3Ms: LEVEL3_MS,
      endedAt,
      sos: sosAcked,
      sosPresses,
      changes,
      snapshots,
      sosSeen: [...sosSeen],
      consoleAcks,
      sosStatus,
      connected,
      pingsAcked,
      archived,
      longestUnserved,
    });
    const pings = devices.reduce((n, d) => n + d.pings.length, 0);
    console.log(
      `observed: ${pings} acked pings, ${sosAcked.length} acked SOS, ${consoleAcks.length} console acks, ` +
        `${changes.length} alert pushes, longest unserved ${Math.max(...Object.values(longestUnserved)) / 1000} s`,
    );
    for (const c of consoles) c.move(0);
    await Promise.allSettled(consoles.map((c) => c.client?.close()));
    const verdict =
      violations.length === 0
        ? `verdict: PASS (seed ${SEED})`
        : `verdict: FAIL (seed ${SEED}), ${violations.length} violations:\n${violations.map((v) => `  - ${v}`).join('\n')}`;
    writeFileSync(join(OUT, 'verdict.txt'), `${verdict}\n`);
    console.log(verdict);
    if (violations.length > 0) {
      await clog.close();
      const spans = new Map(devices.map((d) => [d.tech, d.longestSpan] as const));
      const report = explain(violations, OUT, sosAcked, changes, spans);
      writeFileSync(join(OUT, 'violations.txt'), report);
      console.log(report);
    }
    console.log(`chaos: node logs, campaign.log and the verdict are in ${OUT}`);
    return violations.length === 0 ? 0 : 1;
  } finally {
    stopping = true;
    for (const p of nodes.procs) {
      if (p == null) continue;
      p.resume();
      await p.crash().catch(() => undefined);
    }
    for (const dir of nodes.dataDirs) rmSync(dir, { recursive: true, force: true });
    watching = false;
    await watcher;
    await redis.keepLogs(OUT).catch((err: unknown) => console.error('chaos: redis logs not kept:', err));
    await redis.destroy();
    await clog.close();
  }
}

/** One line of a node's pino log or of campaign.log, with where it came from. */
interface LogEntry {
  at: number;
  from: string;
  text: string;
  tech: string | undefined;
  warn: boolean;
}

/** Every line of every node log and of campaign.log in `dir`, in time order. */
function readLogs(dir: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const file of readdirSync(dir).sort()) {
    const from = file.replace(/\.log$/, '');
    if (!file.endsWith('.log')) continue;
    for (const text of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (text === '') continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      const at = typeof line.time === 'number' ? line.time : typeof line.at === 'number' ? line.at : 0;
      const tech = typeof line.tech === 'string' ? line.tech : undefined;
      const warn =
        (typeof line.level === 'number' && line.level >= 40) || line.ev === 'fault' || line.ev === 'node started';
      out.push({ at, from, text, tech, warn });
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Most lines printed per violation (violations.txt holds the same). */
const EXCERPT_LINES = 600;

/**
 * For each violation, the log lines that explain it: every line naming its alert, and in
 * the time around it every line of its technician and every warning and fault.
 */
function explain(
  violations: string[],
  dir: string,
  sos: Observations['sos'],
  changes: SeenChange[],
  spans: Map<string, [number, number]>,
): string {
  const logs = readLogs(dir);
  const techOf = new Map<string, string>();
  const seenAt = new Map<string, [number, number]>();
  for (const s of sos) techOf.set(s.incident, s.tech);
  for (const c of changes) {
    techOf.set(c.alert.id, c.alert.tech);
    const [from, to] = seenAt.get(c.alert.id) ?? [c.alert.ts, c.at];
    seenAt.set(c.alert.id, [Math.min(from, c.alert.ts), Math.max(to, c.at)]);
  }
  const parts: string[] = [];
  for (const v of violations) {
    const alert = [...techOf.keys()].find((id) => v.includes(id));
    const tech = alert !== undefined ? techOf.get(alert) : /chaos-\d+/.exec(v)?.[0];
    let window: [number, number] = [0, Number.MAX_SAFE_INTEGER];
    if (alert !== undefined) {
      const [from, to] = seenAt.get(alert) ?? [0, Number.MAX_SAFE_INTEGER];
      window = [from - 20_000, to + 5_000];
    } else if (tech !== undefined && spans.has(tech)) {
      const [from, to] = spans.get(tech) as [number, number];
      window = [from - 20_000, to + 5_000];
    }
    const techRe = tech === undefined ? null : new RegExp(`"${tech}(-o\\d+)?"`);
    const lines = logs.filter(
      (l) =>
        (alert !== undefined && l.text.includes(alert)) ||
        (l.at >= window[0] && l.at <= window[1] && (techRe?.test(l.text) === true || (l.warn && l.tech === undefined))),
    );
    const iso = (t: number) => new Date(t).toISOString().slice(11, 23);
    parts.push(
      `--- ${v}\n    ${alert !== undefined ? `alert ${alert}, ` : ''}technician ${tech ?? '?'}, ` +
        `window ${iso(window[0])}-${window[1] === Number.MAX_SAFE_INTEGER ? 'end' : iso(window[1])}, ${lines.length} lines`,
    );
    for (const l of lines.slice(0, EXCERPT_LINES)) parts.push(`${iso(l.at)} ${l.from}: ${l.text}`);
    if (lines.length > EXCERPT_LINES) parts.push(`... ${lines.length - EXCERPT_LINES} more`);
  }
  return `${parts.join('\n')}\n`;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`chaos: the campaign could not run (seed ${SEED}; logs in ${OUT}):`, err);
    process.exit(2);
  },
);

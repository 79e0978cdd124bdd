/**
 * Fault scenarios on one machine, each under steady device load with SOS alarms:
 *   kill9       - the node is killed with SIGKILL mid-load and restarted on its DATA_DIR;
 *   clickhouse  - the archive's ClickHouse server is stopped mid-load, then restarted;
 *   redis       - the node runs in multi-node mode (REDIS_URL) and Redis is stopped
 *                 mid-load, then restarted;
 *   slow-console- one safety console stops reading while another keeps reading and an
 *                 alert flood fills the stalled one's buffers: the node must drop it with
 *                 4002; it reconnects and takes a snapshot.
 * For each: every acked ping must be in the archive, and every acked SOS in the archive
 * (alert_events) and on the consoles. Stops by itself; exits 1 if any scenario fails.
 *
 * `npm run faults [-- --only kill9,clickhouse,redis,slow-console --seconds 10 --devices 20]`
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { DeviceClient, SafetyClient } from '../src/client/index.js';
import { NOTE_MAX_LENGTH } from '../src/protocol.js';
import { ClickHouseServer } from '../test/support/clickhouse-server.js';
import { RedisServer } from '../test/support/redis-server.js';
import { ServerProcess, token } from '../test/support/server-process.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'kill9,clickhouse,redis,slow-console' },
    seconds: { type: 'string', default: '10' },
    devices: { type: 'string', default: '20' },
  },
});
const phaseMs = Number(values.seconds) * 1000;
const deviceCount = Number(values.devices);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Load of `deviceCount` devices, each one ping at a time, with unique ts per device; one SOS each. */
class Load {
  readonly acked = new Map<string, Set<number>>();
  readonly sosAcked = new Set<string>();
  private clients = new Map<string, DeviceClient>();
  private running = true;
  private loops: Promise<void>[] = [];
  private url = '';

  constructor(
    private readonly prefix: string,
    private readonly base: number,
  ) {}

  techs(): string[] {
    return Array.from({ length: deviceCount }, (_, i) => `${this.prefix}-${i}`);
  }

  /** (Re)connects every device to `url`; loops start on the first call. */
  async connect(url: string): Promise<void> {
    this.url = url;
    await Promise.all(
      this.techs().map(async (tech) => {
        const c = new DeviceClient({ url, token: await token(tech, 'device') });
        await c.connect();
        this.clients.set(tech, c);
      }),
    );
    if (this.loops.length === 0) this.loops = this.techs().map((tech, i) => this.loop(tech, i));
  }

  private async loop(tech: string, index: number): Promise<void> {
    const acked = new Set<number>();
    this.acked.set(tech, acked);
    let n = 0;
    const sosAt = 3 + ((index * 7) % 20);
    while (this.running) {
      const c = this.clients.get(tech);
      const url = this.url;
      try {
        if (!c) throw new Error('no client');
        n++;
        if (n === sosAt && !this.sosAcked.has(tech)) {
          const r = await c.request({ t: 'sos', ts: Date.now(), lat: 1, lon: 1 } as never);
          if (r.t === 'ack') this.sosAcked.add(tech);
          else n--;
        } else {
          const ts = this.base + n;
          const r = await c.ping({ ts, lat: 1 + n * 1e-6, lon: 1 });
          if (r.t === 'ack') acked.add(ts);
        }
        await sleep(100);
      } catch {
        // The connection dropped (a fault): wait for the next connect to this or a new URL.
        while (this.running && this.clients.get(tech) === c && this.url === url) await sleep(50);
      }
    }
  }

  dropClients(): void {
    this.clients.clear();
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
  }

  get ackedCount(): number {
    return [...this.acked.values()].reduce((s, a) => s + a.size, 0);
  }
}

/** A console counting the SOS alerts it saw (snapshot and pushes). */
async function openConsole(url: string, sub: string, seen: Set<string>): Promise<SafetyClient> {
  const c = new SafetyClient({ url, token: await token(sub, 'safety') });
  c.on('push', (m) => {
    if (m.t === 'snapshot') for (const a of m.alerts) if (a.kind === 'sos') seen.add(a.tech);
    if (m.t === 'alert' && m.alert.kind === 'sos') seen.add(m.alert.tech);
  });
  await c.connect();
  return c;
}

async function chQuery(ch: ClickHouseServer, sql: string): Promise<string[][]> {
  const res = await fetch(`${ch.url}/?query=${encodeURIComponent(`${sql} FORMAT TSV`)}`);
  if (!res.ok) throw new Error(`ClickHouse: ${await res.text()}`);
  return (await res.text())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

interface Result {
  scenario: string;
  pingsAcked: number;
  pingsAckedInArchive: number;
  pingsArchivedNotAcked: number;
  sosAcked: number;
  sosAckedInArchive: number;
  sosAckedOnConsoles: number;
  /** What else the scenario checked, when anything. */
  detail?: string;
  ok: boolean;
}

/** Waits until the archive holds every acked ping and SOS (or 120 s), then counts. */
async function verify(scenario: string, ch: ClickHouseServer, load: Load, consoles: Set<string>[]): Promise<Result> {
  const deadline = Date.now() + 120_000;
  let inArchive = 0;
  let extra = 0;
  let sosIn = 0;
  for (;;) {
    const rows = await chQuery(ch, `SELECT DISTINCT tech, ts FROM pings WHERE tech LIKE '${scenario}-%'`).catch(
      () => [],
    );
    const archived = new Set(rows.map(([t, ts]) => `${t}/${ts}`));
    inArchive = 0;
    for (const [tech, acked] of load.acked) for (const ts of acked) if (archived.has(`${tech}/${ts}`)) inArchive++;
    extra = archived.size - inArchive;
    const sosRows = await chQuery(
      ch,
      `SELECT DISTINCT tech FROM alert_events WHERE kind = 'sos' AND tech LIKE '${scenario}-%'`,
    ).catch(() => []);
    const sosTechs = new Set(sosRows.map(([t]) => t));
    sosIn = [...load.sosAcked].filter((t) => sosTechs.has(t)).length;
    if ((inArchive === load.ackedCount && sosIn === load.sosAcked.size) || Date.now() > deadline) break;
    await sleep(250);
  }
  const onConsoles = Math.min(...consoles.map((seen) => [...load.sosAcked].filter((t) => seen.has(t)).length));
  return {
    scenario,
    pingsAcked: load.ackedCount,
    pingsAckedInArchive: inArchive,
    pingsArchivedNotAcked: extra,
    sosAcked: load.sosAcked.size,
    sosAckedInArchive: sosIn,
    sosAckedOnConsoles: onConsoles,
    // Zero acks would make every check below hold trivially: a scenario must have acked both.
    ok:
      load.ackedCount > 0 &&
      load.sosAcked.size > 0 &&
      inArchive === load.ackedCount &&
      sosIn === load.sosAcked.size &&
      onConsoles === load.sosAcked.size,
  };
}

async function kill9(ch: ClickHouseServer): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldtrack-faults-'));
  const env = { CLICKHOUSE_URL: ch.url, LOG_LEVEL: 'info' };
  let server = await ServerProcess.start({ env, dataDir });
  const seen = new Set<string>();
  let console1 = await openConsole(server.wsUrl, 'op-k9', seen);
  const load = new Load('kill9', Date.now() - 3_600_000);
  await load.connect(server.wsUrl);
  await sleep(phaseMs);
  await server.crash();
  load.dropClients();
  server = await ServerProcess.start({ env, dataDir });
  console1 = await openConsole(server.wsUrl, 'op-k9', seen);
  await load.connect(server.wsUrl);
  await sleep(phaseMs);
  await load.stop();
  const result = await verify('kill9', ch, load, [seen]);
  await console1.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

async function clickhouseOutage(ch: ClickHouseServer): Promise<Result> {
  const server = await ServerProcess.start({ env: { CLICKHOUSE_URL: ch.url, LOG_LEVEL: 'info' } });
  const seen = new Set<string>();
  const console1 = await openConsole(server.wsUrl, 'op-ch', seen);
  const load = new Load('clickhouse', Date.now() - 7_200_000);
  await load.connect(server.wsUrl);
  await sleep(phaseMs / 2);
  await ch.stop();
  await sleep(phaseMs);
  await ch.start();
  await sleep(phaseMs / 2);
  await load.stop();
  const result = await verify('clickhouse', ch, load, [seen]);
  await console1.close();
  await server.stop();
  return result;
}

async function redisOutage(ch: ClickHouseServer): Promise<Result> {
  const redis = await RedisServer.launch();
  try {
    const server = await ServerProcess.start({
      env: { CLICKHOUSE_URL: ch.url, REDIS_URL: redis.url, LOG_LEVEL: 'info' },
    });
    const seen = new Set<string>();
    const console1 = await openConsole(server.wsUrl, 'op-redis', seen);
    const load = new Load('redis', Date.now() - 14_400_000);
    await load.connect(server.wsUrl);
    await sleep(phaseMs / 2);
    await redis.stop();
    await sleep(phaseMs);
    await redis.start();
    await sleep(phaseMs / 2);
    await load.stop();
    const result = await verify('redis', ch, load, [seen]);
    await console1.close();
    await server.stop();
    return result;
  } finally {
    await redis.destroy();
  }
}

/**
 * Alert traffic big enough to fill a stalled console's socket buffers: `devices` extra
 * technicians each raise an SOS with a note of the longest length (1000 characters) and cancel it, over and over
 * (two alert changes of about 1.2 KB per round). A few dozen real SOS alarms fit in the
 * operating system's buffers, so without this the stalled console is never dropped.
 * Its SOS alarms are cancelled, so they are not part of the counts `verify` checks.
 */
async function alertFlood(url: string, devices: number, until: number): Promise<number> {
  const note = 'x'.repeat(NOTE_MAX_LENGTH);
  let rounds = 0;
  await Promise.all(
    Array.from({ length: devices }, async (_, i) => {
      const c = new DeviceClient({ url, token: await token(`flood-${i}`, 'device') });
      await c.connect();
      while (Date.now() < until) {
        const r = await c.sos({ ts: Date.now(), lat: 1, lon: 1, note });
        if (r.t !== 'ack') throw new Error(`flood SOS refused: ${JSON.stringify(r)}`);
        await c.sosCancel(String(r.incident));
        rounds++;
      }
      await c.close();
    }),
  );
  return rounds;
}

async function slowConsole(ch: ClickHouseServer): Promise<Result> {
  const server = await ServerProcess.start({
    env: {
      CLICKHOUSE_URL: ch.url,
      LOG_LEVEL: 'info',
      SAFETY_MAX_BUFFERED_BYTES: '65536',
      // The flood's devices send as fast as they are answered, past the per-device default.
      RATE_LIMIT_PER_SEC: '100000',
      RATE_LIMIT_BURST: '100000',
    },
  });
  const healthy = new Set<string>();
  const console1 = await openConsole(server.wsUrl, 'op-ok', healthy);
  // A console that never reads: its TCP socket is paused right after the upgrade.
  const stalled = new WebSocket(`${server.wsUrl}/v1/safety`, {
    headers: { authorization: `Bearer ${await token('op-stalled', 'safety')}` },
  });
  await new Promise((resolve, reject) => {
    stalled.once('open', resolve);
    stalled.once('error', reject);
  });
  (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
  const load = new Load('slow', Date.now() - 10_800_000);
  await load.connect(server.wsUrl);
  const floodRounds = await alertFlood(server.wsUrl, 10, Date.now() + phaseMs);
  await load.stop();
  const wasDropped = () =>
    server.logs.some((l) => l.msg === 'connection closed' && l.sub === 'op-stalled' && l.code === 4002);
  for (let waited = 0; !wasDropped() && waited < 5000; waited += 100) await sleep(100);
  const dropped = wasDropped();
  stalled.terminate();
  // Reconnecting, the dropped console gets the snapshot: every open SOS that it missed.
  const recovered = new Set<string>();
  const console2 = await openConsole(server.wsUrl, 'op-stalled', recovered);
  const result = await verify('slow', ch, load, [healthy, recovered]);
  await Promise.allSettled([console1.close(), console2.close()]);
  await server.stop();
  const detail = `${floodRounds} flood rounds; stalled console dropped with 4002: ${dropped}`;
  return { ...result, scenario: 'slow-console', detail, ok: result.ok && dropped };
}

const scenarios: Record<string, (ch: ClickHouseServer) => Promise<Result>> = {
  kill9,
  clickhouse: clickhouseOutage,
  redis: redisOutage,
  'slow-console': slowConsole,
};
const ch = await ClickHouseServer.launch();
const results: Result[] = [];
try {
  for (const name of (values.only ?? '').split(',')) {
    const run = scenarios[name.trim()];
    if (!run) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
    process.stderr.write(`running ${name}...\n`);
    results.push(await run(ch));
  }
} finally {
  await ch.destroy();
}
console.table(results);
const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results', 'faults.json');
const report = { when: new Date().toISOString(), phaseSeconds: phaseMs / 1000, devices: deviceCount, results };
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
process.stderr.write(`written to ${outFile}\n`);
process.exit(results.every((r) => r.ok) ? 0 : 1);

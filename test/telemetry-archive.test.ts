/**
 * The archive contract, run over both stores (embedded chDB and a real Debian
 * clickhouse-server): round trip, deduplication, an outage mid-stream, kill -9 of a
 * process with acked rows still spooled, the spool's disk budget, retention, a batch
 * spanning 150 day partitions, rows the store refuses for good (dead letters, and their
 * replay by the real `replay-dead-letter` command), and track pages.
 *
 * Every wait polls with a generous timeout; nothing asserts on timing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { Counter, Gauge } from 'prom-client';
import { type Config, loadConfig } from '../src/config.js';
import { createLogger, type Logger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { AlertEventRecord, ArchiveRecord, OrderEventRecord, PingRecord } from '../src/telemetry/archive.js';
import { SpoolFullError } from '../src/telemetry/archive.js';
import { archiveOptions, openArchive, openStore } from '../src/telemetry/archive-factory.js';
import { CHDB_CONNECTION_ARGS } from '../src/telemetry/chdb-store.js';
import type { DeadLetter } from '../src/telemetry/dead-letter.js';
import { createTableStatements, dayOf } from '../src/telemetry/schema.js';
import { SpooledArchive, type SpooledArchiveOptions } from '../src/telemetry/spooled-archive.js';
import { type Store, StoreError } from '../src/telemetry/store.js';
import { ClickHouseServer } from './support/clickhouse-server.js';
import { eventually } from './support/eventually.js';

const DAY_MS = 86_400_000;
const silent = createLogger('silent');

async function gauge(g: Gauge): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}
async function counterSum(c: Counter): Promise<number> {
  return (await c.get()).values.reduce((s, v) => s + v.value, 0);
}

/** A store whose calls fail while `up` is false: a controllable outage for chDB, which cannot be stopped. */
class SwitchableStore implements Store {
  up = true;
  constructor(private readonly inner: Store) {}
  get name(): string {
    return this.inner.name;
  }
  private check(action: string): void {
    if (!this.up) throw new StoreError(this.name, action, new Error('simulated outage'));
  }
  async exec(sql: string): Promise<void> {
    this.check('statement');
    await this.inner.exec(sql);
  }
  async query(sql: string): Promise<unknown[][]> {
    this.check('query');
    return this.inner.query(sql);
  }
  async insert(table: Parameters<Store['insert']>[0], columns: readonly string[], body: Buffer): Promise<void> {
    this.check('insert');
    await this.inner.insert(table, columns, body);
  }
  async ping(): Promise<boolean> {
    return this.up && this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** One store under test: how to configure it and how to take it down and up again. */
interface Harness {
  env: Record<string, string>;
  /** Applied to the store of every archive the test opens. */
  wrap(store: Store): Store;
  down(): Promise<void>;
  up(): Promise<void>;
  teardown(): Promise<void>;
}

interface Backend {
  name: string;
  start(): Promise<Harness>;
}

const backends: Backend[] = [
  {
    name: 'chdb',
    async start() {
      let current: SwitchableStore | null = null;
      let isDown = false;
      return {
        env: {},
        wrap: (store) => {
          current = new SwitchableStore(store);
          current.up = !isDown;
          return current;
        },
        down: async () => {
          isDown = true;
          if (current) current.up = false;
        },
        up: async () => {
          isDown = false;
          if (current) current.up = true;
        },
        teardown: async () => undefined,
      };
    },
  },
  {
    name: 'clickhouse-server',
    async start() {
      const server = await ClickHouseServer.launch();
      return {
        env: { CLICKHOUSE_URL: server.url },
        wrap: (store) => store,
        down: () => server.stop(),
        up: async () => {
          if (!server.running) await server.start();
        },
        teardown: () => server.destroy(),
      };
    },
  },
];

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-archive-'));
  dirs.push(dir);
  return dir;
}

function configFor(h: Harness, dataDir: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    TRACKER_INSECURE_DEV: '1',
    DATA_DIR: dataDir,
    ARCHIVE_BATCH_MS: '50',
    ...h.env,
    ...overrides,
  });
}

interface Opened {
  archive: SpooledArchive;
  metrics: Metrics;
}

async function openTestArchive(
  h: Harness,
  config: Config,
  extra: Partial<SpooledArchiveOptions> = {},
  log: Logger = silent,
): Promise<Opened> {
  const metrics = new Metrics();
  const store = h.wrap(await openStore(config));
  const archive = await SpooledArchive.open(store, { ...archiveOptions(config), ...extra }, log, metrics);
  return { archive, metrics };
}

/** A logger whose JSON lines are kept in `lines`. */
function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', {
    write: (chunk: string) => {
      lines.push(JSON.parse(chunk) as Record<string, unknown>);
    },
  });
  return { log, lines };
}

/** A second connection for assertions (chDB allows several sessions on one folder). */
async function withChecker<T>(config: Config, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function count(config: Config, sql: string): Promise<number> {
  return withChecker(config, async (s) => Number((await s.query(sql))[0]?.[0]));
}

function ping(tech: string, ts: number, extra: Partial<PingRecord> = {}): ArchiveRecord {
  return {
    table: 'pings',
    row: { tech, ts, lat: 48.1 + (ts % 1000) / 1e6, lon: 11.5, acc: 5, spd: 1.5, hdg: 90, bat: 0.8, ...extra },
  };
}

const drained = (m: Metrics) => async () => (await gauge(m.spoolRows)) === 0;

/** Runs the real `replay-dead-letter` command against `dataDir` and the harness's store. */
async function replayCommand(h: Harness, dataDir: string): Promise<{ code: number | null; out: string }> {
  const cli = new URL('../src/cli/replay-dead-letter.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [cli], {
    env: { PATH: process.env.PATH, TRACKER_INSECURE_DEV: '1', DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...h.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, out };
}

/** File names in `dir`, or none when it does not exist. */
async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

for (const backend of backends) {
  describe(`archive on ${backend.name}`, () => {
    let h: Harness;
    before(async () => {
      h = await backend.start();
    });
    after(async () => {
      await h.teardown();
    });

    if (backend.name === 'chdb') {
      // The soak found resident memory and open files climbing under ClickHouse's server
      // defaults; the store bounds the engine's idle threads and caches at connect.
      it('runs the embedded engine with the bounded thread pool and caches it asks for', async () => {
        const config = configFor(h, await newDataDir());
        const wanted = CHDB_CONNECTION_ARGS.map((arg) => arg.slice(2).split('='));
        const names = wanted.map(([name]) => `'${name}'`).join(', ');
        const rows = await withChecker(config, (s) =>
          s.query(`SELECT name, value FROM system.server_settings WHERE name IN (${names}) ORDER BY name`),
        );
        assert.equal(wanted.length, 6);
        assert.deepEqual(
          rows,
          [...wanted].sort(([a], [b]) => String(a).localeCompare(String(b))),
        );
      });
    }

    it('round-trips pings, order events and alert events through openArchive', async () => {
      const config = configFor(h, await newDataDir());
      const metrics = new Metrics();
      const archive = await openArchive(config, silent, metrics);
      try {
        const t0 = Date.now() - 3_600_000;
        const tech = 'tech\'"\\\t\nä-1';
        const pings: PingRecord[] = [
          { tech, ts: t0 + 2, lat: 48.137154, lon: 11.576124, acc: null, spd: null, hdg: null, bat: null },
          { tech, ts: t0, lat: -33.8688, lon: 151.2093, acc: 3.5, spd: 12.25, hdg: 359.5, bat: 0.42 },
          { tech, ts: t0 + 1, lat: 0.000001, lon: -179.999999, acc: 1e-7, spd: 0, hdg: 0, bat: 1 },
        ];
        const orders: OrderEventRecord[] = [
          { order: 'o-1', tech, state: 'departed', ts: t0 + 10, lat: null, lon: null },
          { order: 'o-1', tech, state: 'assigned', ts: t0, lat: 48.1, lon: 11.5 },
          { order: 'o-2', tech: 'other', state: 'assigned', ts: t0, lat: null, lon: null },
        ];
        const alerts: AlertEventRecord[] = [
          {
            alert: 'a-1',
            kind: 'sos',
            level: 1,
            state: 'open',
            tech,
            order: null,
            ts: t0 + 5,
            raisedAt: t0 + 5,
            lat: 48.1,
            lon: 11.5,
            detail: '{"note":"help\\ttab"}',
          },
          {
            alert: 'a-1',
            kind: 'sos',
            level: 2,
            state: 'open',
            tech,
            order: 'o-1',
            ts: t0 + 60_005,
            raisedAt: t0 + 5,
            lat: null,
            lon: null,
            detail: '{}',
          },
        ];
        await archive.write([
          ...pings.map((row): ArchiveRecord => ({ table: 'pings', row })),
          ping('someone-else', t0 + 1),
        ]);
        await archive.write(orders.map((row): ArchiveRecord => ({ table: 'order_events', row })));
        await archive.write(alerts.map((row): ArchiveRecord => ({ table: 'alert_events', row })));

        await eventually('pings archived', async () => (await archive.track(tech, t0, t0 + 10)).length === 3);
        const sorted = [...pings].sort((a, b) => a.ts - b.ts);
        assert.deepEqual(
          await archive.track(tech, t0, t0 + 10),
          sorted.map((p) => [p.ts, p.lat, p.lon, p.acc, p.spd, p.hdg]),
        );
        assert.deepEqual(await archive.track(tech, t0 + 1, t0 + 1), [[t0 + 1, 0.000001, -179.999999, 1e-7, 0, 0]]);
        assert.deepEqual(await archive.track('nobody', t0, t0 + 10), []);

        await eventually('order events archived', async () => (await archive.orderEvents('o-1')).length === 2);
        assert.deepEqual(await archive.orderEvents('o-1'), [orders[1], orders[0]]);
        await eventually(
          'alert events archived',
          async () => (await count(config, 'SELECT count() FROM alert_events')) === 2,
        );
        const rows = await withChecker(config, (s) =>
          s.query(
            'SELECT alert_id, kind, level, state, tech, order_id, ts, raised_at, lat, lon, detail FROM alert_events FINAL ORDER BY ts',
          ),
        );
        assert.deepEqual(
          rows.map((r) => ({
            alert: r[0],
            kind: r[1],
            level: Number(r[2]),
            state: r[3],
            tech: r[4],
            order: r[5],
            ts: Number(r[6]),
            raisedAt: Number(r[7]),
            lat: r[8] === null ? null : Number(r[8]),
            lon: r[9] === null ? null : Number(r[9]),
            detail: r[10],
          })),
          alerts,
        );
        await eventually('spool drained', drained(metrics));
        assert.equal(await counterSum(metrics.rowsArchived), 4 + 3 + 2);
        const health = archive.health();
        assert.equal(health.ok, true, health.detail);
      } finally {
        await archive.close();
      }
    });

    it('stores a point once when it is written twice or a batch is replayed', async () => {
      const dataDir = await newDataDir();
      const config = configFor(h, dataDir);
      const t0 = Date.now() - 3_600_000;
      const batch = Array.from({ length: 500 }, (_, i) => ping('dup', t0 + i * 1000));
      let opened = await openTestArchive(h, config);
      try {
        // The same points twice, as a device replaying its offline backlog would send them.
        await opened.archive.write(batch);
        await eventually('first copy archived', drained(opened.metrics));
        await opened.archive.write(batch);
        await eventually('second copy archived', drained(opened.metrics));
        assert.equal(await counterSum(opened.metrics.rowsArchived), 1000, 'both copies were inserted');
      } finally {
        await opened.archive.close();
      }
      // A crash between an insert and its checkpoint: the next start inserts the batch again.
      await writeFile(join(dataDir, 'spool', 'archived-upto.json'), JSON.stringify({ segment: 0, offset: 0 }));
      opened = await openTestArchive(h, config);
      try {
        await eventually('replayed spool archived', drained(opened.metrics));
        assert.equal(await counterSum(opened.metrics.rowsArchived), 1000, 'the whole spool was replayed');
        assert.equal(await count(config, "SELECT count() FROM pings FINAL WHERE tech = 'dup'"), 500);
        assert.equal(await count(config, "SELECT uniqExact(ts) FROM pings FINAL WHERE tech = 'dup'"), 500);
        const track = await opened.archive.track('dup', t0, t0 + 500_000);
        assert.equal(track.length, 500);
        assert.deepEqual(
          track.map((p) => p[0]),
          batch.map((r) => r.row.ts),
        );
        // A track page counts each point once, though two copies of it may still be stored.
        const page = await opened.archive.track('dup', t0, t0 + 500_000, 7);
        assert.deepEqual(
          page.map((p) => p[0]),
          batch.slice(0, 7).map((r) => r.row.ts),
        );
      } finally {
        await opened.archive.close();
      }
    });

    it('keeps acking while the store is down and delivers everything once it is back', async () => {
      const config = configFor(h, await newDataDir());
      const { archive, metrics } = await openTestArchive(h, config);
      const t0 = Date.now() - 3_600_000;
      let acked = 0;
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          await archive.write(Array.from({ length: 20 }, (_, j) => ping('outage', t0 + i * 20 + j)));
          acked += 20;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      try {
        await eventually('some rows archived', async () => (await counterSum(metrics.rowsArchived)) > 0);
        await h.down();
        await eventually('health reports the outage', () => !archive.health().ok);
        assert.match(archive.health().detail ?? '', /unreachable/);
        const ackedAtOutage = acked;
        await eventually('writes acked during the outage', () => acked >= ackedAtOutage + 400);
        assert.ok((await gauge(metrics.spoolRows)) > 0, 'rows wait in the spool');
        await h.up();
        await eventually('store reachable again', () => archive.health().ok);
        stop = true;
        await writer;
        await eventually('spool drained', drained(metrics));
        assert.ok((await counterSum(metrics.insertFailures)) > 0, 'inserts failed during the outage');
        assert.equal(await count(config, "SELECT count() FROM pings FINAL WHERE tech = 'outage'"), acked);
        assert.equal(await count(config, "SELECT uniqExact(ts) FROM pings WHERE tech = 'outage'"), acked);
        const track = await archive.track('outage', t0, t0 + acked);
        assert.equal(track.length, acked, 'each point once, none lost');
        assert.ok(track.every((p, i) => p[0] === t0 + i));
      } finally {
        stop = true;
        await writer.catch(() => undefined);
        await archive.close();
      }
    });

    it('starts while the store is unreachable, reports it, and drains once it answers', async () => {
      const config = configFor(h, await newDataDir());
      await h.down();
      const { archive, metrics } = await openTestArchive(h, config);
      try {
        const health = archive.health();
        assert.equal(health.ok, false);
        assert.match(health.detail ?? '', /unreachable/);
        const t0 = Date.now() - 3_600_000;
        await archive.write(Array.from({ length: 50 }, (_, i) => ping('late-start', t0 + i)));
        assert.equal(await gauge(metrics.spoolRows), 50, 'acked into the spool');
        await h.up();
        await eventually('spool drained', drained(metrics));
        await eventually('healthy', () => archive.health().ok);
        assert.equal((await archive.track('late-start', t0, t0 + 50)).length, 50);
      } finally {
        await h.up();
        await archive.close();
      }
    });

    it('delivers pings acked by a process killed with SIGKILL before they were archived', async () => {
      const dataDir = await newDataDir();
      const config = configFor(h, dataDir);
      const t0 = Date.now() - 3_600_000;
      // Nothing drains in the child: a batch would wait 10 minutes, and for a server the store is down.
      await h.down();
      const mod = (p: string): string => JSON.stringify(new URL(p, import.meta.url).href);
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `
          const { openArchive } = await import(${mod('../src/telemetry/archive-factory.js')});
          const { loadConfig } = await import(${mod('../src/config.js')});
          const { Metrics } = await import(${mod('../src/metrics.js')});
          const { createLogger } = await import(${mod('../src/log.js')});
          const archive = await openArchive(loadConfig(process.env), createLogger('silent'), new Metrics());
          let n = 0;
          const loop = async () => {
            for (;;) {
              const ts = ${t0} + n++;
              await archive.write([{ table: 'pings', row: { tech: 'crash', ts, lat: 1, lon: 2, acc: null, spd: null, hdg: null, bat: null } }]);
              process.stdout.write(ts + '\\n');
            }
          };
          for (let w = 0; w < 4; w++) loop();
          `,
        ],
        {
          env: {
            ...process.env,
            TRACKER_INSECURE_DEV: '1',
            DATA_DIR: dataDir,
            ARCHIVE_BATCH_MS: '600000',
            ARCHIVE_BATCH_ROWS: '1000000',
            LOG_LEVEL: 'silent',
            ...h.env,
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const acked: number[] = [];
      const exited = new Promise((resolve) => child.on('exit', resolve));
      for await (const line of createInterface({ input: child.stdout! })) {
        acked.push(Number(line));
        if (acked.length === 500) child.kill('SIGKILL');
      }
      await exited;
      assert.ok(acked.length >= 500);
      await h.up();

      const { archive, metrics } = await openTestArchive(h, config);
      try {
        await eventually('spooled rows drained after restart', drained(metrics));
        const stored = new Set((await archive.track('crash', t0, t0 + 1_000_000)).map((p) => p[0]));
        const missing = acked.filter((ts) => !stored.has(ts));
        assert.deepEqual(missing, [], 'every acked ping is archived');
        assert.equal(
          await count(config, "SELECT count() FROM pings FINAL WHERE tech = 'crash'"),
          stored.size,
          'no duplicates',
        );
      } finally {
        await archive.close();
      }
    });

    it('refuses writes past the spool budget and accepts them again once drained', async () => {
      const budget = 1024 * 1024;
      // Small batches, and a progress line after every one, so that draining the backlog is logged.
      const config = configFor(h, await newDataDir(), { SPOOL_MAX_BYTES: String(budget), ARCHIVE_BATCH_ROWS: '1000' });
      const { log, lines } = capturingLogger();
      const { archive, metrics } = await openTestArchive(h, config, { progressEveryMs: 0 }, log);
      const t0 = Date.now() - 3_600_000;
      try {
        await h.down();
        let acked = 0;
        let refusal: unknown = null;
        for (let i = 0; i < 10_000 && refusal === null; i++) {
          try {
            await archive.write(Array.from({ length: 200 }, (_, j) => ping('budget', t0 + acked + j)));
            acked += 200;
          } catch (err) {
            refusal = err;
          }
        }
        assert.ok(refusal instanceof SpoolFullError, `expected SpoolFullError, got ${String(refusal)}`);
        assert.equal(refusal.budget, budget);
        assert.ok(acked > 0);
        assert.equal(await gauge(metrics.spoolRows), acked, 'the refused write stored nothing');
        assert.ok((await gauge(metrics.spoolBytes)) <= budget);
        const health = archive.health();
        assert.equal(health.ok, false);
        assert.match(health.detail ?? '', /over budget/);
        assert.equal(lines.filter((l) => /spool over budget/.test(String(l.msg))).length, 1, 'logged once');

        await h.up();
        await eventually('spool drained', drained(metrics));
        await eventually('healthy again', () => archive.health().ok);
        assert.ok((await gauge(metrics.spoolBytes)) < budget / 2, 'drained segments were deleted');
        const progress = lines.filter((l) => l.msg === 'archive: draining spool backlog');
        assert.ok(progress.length > 0, 'backlog progress was logged');
        assert.ok(progress.every((l) => Number(l.rowsLeft) > 0 && Number(l.rowsPerSec) > 0));
        assert.ok(lines.some((l) => l.msg === 'archive: spool backlog drained'));
        await archive.write(Array.from({ length: 200 }, (_, j) => ping('budget', t0 + acked + j)));
        acked += 200;
        await eventually('last write drained', drained(metrics));
        assert.equal(await count(config, "SELECT count() FROM pings FINAL WHERE tech = 'budget'"), acked);
      } finally {
        await h.up();
        await archive.close();
      }
    });

    it('drops day partitions older than the retention and keeps recent ones', async () => {
      const config = configFor(h, await newDataDir(), { RETENTION_DAYS: '30' });
      const { archive, metrics } = await openTestArchive(h, config);
      const now = Date.now();
      const old = now - 40 * DAY_MS;
      const edge = now - 29 * DAY_MS;
      try {
        await archive.write([ping('ret', old), ping('ret', edge), ping('ret', now - 1000)]);
        await archive.write([
          {
            table: 'order_events',
            row: { order: 'ret-o', tech: 'ret', state: 'assigned', ts: old, lat: null, lon: null },
          },
        ]);
        await eventually('rows archived', drained(metrics));
        assert.equal((await archive.track('ret', old - 1, now)).length, 3);
        const partitions = async (table: string): Promise<string[]> =>
          withChecker(config, async (s) =>
            (
              await s.query(
                `SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = '${table}' AND active`,
              )
            ).map((r) => String(r[0])),
          );
        assert.ok((await partitions('pings')).includes(dayOf(old)));

        await archive.runRetention();
        assert.deepEqual(
          (await archive.track('ret', old - 1, now)).map((p) => p[0]),
          [edge, now - 1000],
        );
        assert.ok(!(await partitions('pings')).includes(dayOf(old)));
        assert.ok((await partitions('pings')).includes(dayOf(edge)));
        assert.deepEqual(await archive.orderEvents('ret-o'), []);
      } finally {
        await archive.close();
      }
    });

    // A phone with a wrong clock: one batch whose points are a day apart. An insert block
    // touching more than 100 partitions is refused by the engine, so inserts go by day.
    it('archives a batch of 150 points one day apart, and every row after it', async () => {
      const dataDir = await newDataDir();
      const config = configFor(h, dataDir, { RETENTION_DAYS: '400' });
      const { archive, metrics } = await openTestArchive(h, config);
      const now = Date.now();
      try {
        const wrongClock = Array.from({ length: 150 }, (_, i) => ping('wrong-clock', now - (150 - i) * DAY_MS));
        await archive.write(wrongClock);
        await archive.write([ping('after', now - 1000)]);
        await eventually('spool drained past the 150-day batch', drained(metrics));
        assert.equal(archive.health().ok, true, archive.health().detail);
        const track = await archive.track('wrong-clock', now - 151 * DAY_MS, now);
        assert.deepEqual(
          track.map((p) => p[0]),
          wrongClock.map((r) => r.row.ts),
        );
        assert.equal((await archive.track('after', now - 2000, now)).length, 1);
        assert.equal(await counterSum(metrics.insertFailures), 0, 'no insert was refused');
        assert.equal(await counterSum(metrics.deadLetterRows), 0);
        assert.deepEqual(await filesIn(join(dataDir, 'dead-letter')), []);
      } finally {
        await archive.close();
      }
    });

    it('creates a table again when the store lost it, and retries instead of setting rows aside', async () => {
      const dataDir = await newDataDir();
      const config = configFor(h, dataDir);
      const { archive, metrics } = await openTestArchive(h, config);
      const t0 = Date.now() - 3_600_000;
      try {
        await archive.write([ping('lost-table', t0)]);
        await eventually('first row archived', drained(metrics));
        await withChecker(config, (s) => s.exec('DROP TABLE pings'));
        await archive.write([ping('lost-table', t0 + 1)]);
        await eventually('second row archived', drained(metrics));
        assert.deepEqual(
          (await archive.track('lost-table', t0, t0 + 1)).map((p) => p[0]),
          [t0 + 1],
        );
        assert.equal(await counterSum(metrics.deadLetterRows), 0);
        assert.deepEqual(await filesIn(join(dataDir, 'dead-letter')), []);
      } finally {
        await archive.close();
      }
    });

    it('moves rows the store refuses for good to a dead-letter file, goes on, and replays them once fixed', async () => {
      const dataDir = await newDataDir();
      const config = configFor(h, dataDir);
      const { log, lines } = capturingLogger();
      const { archive, metrics } = await openTestArchive(h, config, {}, log);
      const t0 = Date.now() - 3_600_000;
      const deadDir = join(dataDir, 'dead-letter');
      const pingsDdl = createTableStatements().find((sql) => sql.includes(' pings '))!;
      // An operator's mistake the engine enforces: pings.lat made an integer column, so a
      // fractional latitude is refused by the engine itself, on every retry alike.
      await withChecker(config, async (s) => {
        await s.exec('DROP TABLE pings');
        await s.exec(pingsDdl.replace('lat Float64', 'lat Int32'));
      });
      const poison = Array.from({ length: 30 }, (_, i) => ping('poison', t0 + i, { lat: 48.5 }));
      try {
        await archive.write([
          ...poison,
          {
            table: 'order_events',
            row: { order: 'dl-o', tech: 'poison', state: 'assigned', ts: t0, lat: null, lon: null },
          },
        ]);
        await eventually('spool drained past the refused rows', drained(metrics));
        // The next batch of the same table and day still lands: the drainer went on.
        await archive.write([ping('later', t0 + 100, { lat: 48 })]);
        await eventually('later batch drained', drained(metrics));
        assert.equal(archive.health().ok, true, archive.health().detail);
        assert.equal((await archive.orderEvents('dl-o')).length, 1, 'the rest of the batch landed');
        assert.equal(await count(config, "SELECT count() FROM pings WHERE tech = 'later'"), 1, 'later rows land');
        assert.equal(await counterSum(metrics.deadLetterRows), 30);

        const files = await filesIn(deadDir);
        assert.equal(files.length, 1, String(files));
        const letter = JSON.parse(await readFile(join(deadDir, files[0]!), 'utf8')) as DeadLetter;
        assert.equal(letter.table, 'pings');
        assert.equal(letter.rows, 30);
        assert.equal(letter.day, dayOf(t0));
        assert.ok(letter.code !== null && letter.code > 0, `engine error code: ${letter.code}`);
        assert.deepEqual(letter.records, poison);
        const logged = lines.filter((l) => /dead-letter folder/.test(String(l.msg)));
        assert.equal(logged.length, 1);
        assert.equal(logged[0]!.rows, 30);
        assert.equal(logged[0]!.file, files[0]);
      } finally {
        await archive.close();
      }

      // Replayed before the cause is fixed: refused again, the file stays.
      const refused = await replayCommand(h, dataDir);
      assert.equal(refused.code, 1, refused.out);
      assert.match(refused.out, /kept .* permanent failure/);
      assert.equal((await filesIn(deadDir)).length, 1);

      await withChecker(config, async (s) => {
        await s.exec('DROP TABLE pings');
        await s.exec(pingsDdl);
      });
      const replayed = await replayCommand(h, dataDir);
      assert.equal(replayed.code, 0, replayed.out);
      assert.match(replayed.out, /1 of 1 dead-letter files replayed \(30 rows\)/);
      assert.deepEqual(await filesIn(deadDir), []);
      assert.equal((await filesIn(join(deadDir, 'replayed'))).length, 1);
      assert.equal(await count(config, "SELECT count() FROM pings FINAL WHERE tech = 'poison' AND lat = 48.5"), 30);
      const again = await replayCommand(h, dataDir);
      assert.equal(again.code, 0, again.out);
      assert.match(again.out, /no dead letters/);
    });
  });
}

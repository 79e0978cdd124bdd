/**
 * An in-memory archive for behaviour tests: collects every written record, answers the
 * read queries from them, and can be told to refuse writes (spool full) or to fail them
 * (an unexpected error, which makes the writing actor crash).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'node:test';
import { ActorTracker } from '../../src/actors/index.js';
import { ManualClock } from '../../src/clock.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { ComponentHealth } from '../../src/outcome.js';
import type { DevicePush, SafetyPush, TrackPoint } from '../../src/protocol.js';
import { memorySharedState } from '../../src/shared/shared-state.js';
import {
  type AlertEventRecord,
  type ArchiveEraser,
  type ArchiveQueries,
  type ArchiveRecord,
  type ArchiveWriter,
  type OrderEventRecord,
  type PingRecord,
  SpoolFullError,
} from '../../src/telemetry/archive.js';

/** ArchiveWriter & ArchiveQueries over arrays; see the module comment. */
export class MemoryArchive implements ArchiveWriter, ArchiveQueries, ArchiveEraser {
  readonly pings: PingRecord[] = [];
  readonly orderEvents_: OrderEventRecord[] = [];
  readonly alertEvents: AlertEventRecord[] = [];
  /** While true, every write rejects with SpoolFullError. */
  full = false;
  /** Number of coming writes that reject with a plain Error. */
  failNext = 0;
  /** While set, every write waits for it (a slow disk the test releases). */
  held: Promise<void> | null = null;

  async write(records: ArchiveRecord[]): Promise<void> {
    await Promise.resolve();
    if (this.held !== null) await this.held;
    if (this.full) throw new SpoolFullError(2, 1);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('disk on fire');
    }
    for (const r of records) {
      if (r.table === 'pings') this.pings.push(r.row);
      else if (r.table === 'order_events') this.orderEvents_.push(r.row);
      else this.alertEvents.push(r.row);
    }
  }

  async track(tech: string, from: number, to: number, limit = Number.POSITIVE_INFINITY): Promise<TrackPoint[]> {
    const seen = new Set<number>();
    return this.pings
      .filter((p) => p.tech === tech && p.ts >= from && p.ts <= to)
      .sort((a, b) => a.ts - b.ts)
      .filter((p) => !seen.has(p.ts) && seen.add(p.ts) !== undefined)
      .slice(0, limit)
      .map((p) => [p.ts, p.lat, p.lon, p.acc, p.spd, p.hdg]);
  }

  async orderEvents(order: string): Promise<OrderEventRecord[]> {
    return this.orderEvents_.filter((e) => e.order === order).sort((a, b) => a.ts - b.ts);
  }

  async eraseTechnician(tech: string): Promise<void> {
    await Promise.resolve();
    const keep = <T extends { tech: string }>(rows: T[]): void => {
      const kept = rows.filter((r) => r.tech !== tech);
      rows.splice(0, rows.length, ...kept);
    };
    keep(this.pings);
    keep(this.orderEvents_);
    keep(this.alertEvents);
  }

  health(): ComponentHealth {
    return this.full ? { ok: false, detail: 'spool full' } : { ok: true };
  }
}

// ---- A tracker harness on top of the memory archive (shared by test/actors-*.test.ts) ----

/** A DeviceLink or SafetyLink that keeps what it is sent. */
export class Collector<T> {
  readonly got: T[] = [];
  push(msg: T): void {
    this.got.push(msg);
  }
  /** Times the device was told to reconnect elsewhere. */
  movedOn = 0;
  moveOn(): void {
    this.movedOn++;
  }
}

/** Device pushes collected. */
export type DeviceCollector = Collector<DevicePush>;
/** Console pushes collected. */
export type SafetyCollector = Collector<SafetyPush>;

/** A test configuration: defaults, insecure dev secret, DATA_DIR in `dir`. */
export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({ TRACKER_INSECURE_DEV: '1', DATA_DIR: dir, LOG_LEVEL: 'silent', ...env });
}

/** One tracker on a fresh temp DATA_DIR with a ManualClock and a MemoryArchive. */
export interface Harness {
  dir: string;
  clock: ManualClock;
  archive: MemoryArchive;
  config: Config;
  metrics: Metrics;
  tracker: ActorTracker;
  /** Moves the clock and waits for every consequence. */
  advance(ms: number): Promise<void>;
  /** Starts another tracker on the same DATA_DIR and archive (after `crash` or `close`), with its own clock. */
  restart(at: number): Promise<Harness>;
  /** Closes the tracker and removes the temp dir. */
  dispose(): Promise<void>;
}

/** Builds a harness; `env` overrides config variables (strings, as in the environment). */
export async function harness(
  env: Record<string, string> = {},
  existing?: { dir: string; archive: MemoryArchive; at: number },
): Promise<Harness> {
  const dir = existing?.dir ?? (await mkdtemp(join(tmpdir(), 'fieldtrack-actors-')));
  const clock = new ManualClock(existing?.at);
  const archive = existing?.archive ?? new MemoryArchive();
  const config = testConfig(dir, env);
  const metrics = new Metrics();
  const tracker = await ActorTracker.start({
    config,
    clock,
    log: createLogger('silent'),
    metrics,
    archive,
    journal: { positionFlushMs: 1000 },
    shared: memorySharedState(clock),
  });
  await tracker.settle();
  const h: Harness = {
    dir,
    clock,
    archive,
    config,
    metrics,
    tracker,
    async advance(ms) {
      await tracker.settle();
      clock.advance(ms);
      await tracker.settle();
    },
    restart: (at) => harness(env, { dir, archive, at }),
    async dispose() {
      await tracker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A harness with a safety console (operator `op`) and the phone of `tech-1` attached, collecting what they are sent. */
export async function connectedHarness(): Promise<{
  h: Harness;
  consoleLink: SafetyCollector;
  phone: DeviceCollector;
}> {
  const h = await harness();
  const consoleLink = new Collector<SafetyPush>();
  h.tracker.attachSafety('op', consoleLink);
  const phone = new Collector<DevicePush>();
  h.tracker.attachDevice('tech-1', phone);
  return { h, consoleLink, phone };
}

/**
 * Harnesses disposed after each test: `fresh()` makes one, `keep(h)` adds one made
 * otherwise (a restart). Call at the top level of a test file.
 */
export function harnessesPerTest(): { fresh(): Promise<Harness>; keep(h: Harness): Harness } {
  const made: Harness[] = [];
  afterEach(async () => {
    for (const h of made.splice(0)) await h.dispose();
  });
  const keep = (h: Harness): Harness => {
    made.push(h);
    return h;
  };
  return { fresh: async () => keep(await harness()), keep };
}

/** Unwraps an Outcome that must be ok. */
export function ok<T>(out: { ok: true; value: T } | { ok: false; code: string; msg: string }): T {
  if (!out.ok) throw new Error(`expected ok, got ${out.code}: ${out.msg}`);
  return out.value;
}

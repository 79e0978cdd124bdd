/**
 * Fixtures shared by the suites: places to put customers and technicians, temporary
 * folders removed after the file's tests, and alerts with only the fields a test cares
 * about. One copy each, instead of one per test file.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Alert } from '../../src/protocol.js';

/** City centres used as customers' doors and technicians' positions. */
export const PLACES = {
  paris: { lat: 48.8566, lon: 2.3522 },
  lyon: { lat: 45.764, lon: 4.8357 },
  berlin: { lat: 52.52, lon: 13.405 },
  milan: { lat: 45.46, lon: 9.19 },
  shanghai: { lat: 31.2304, lon: 121.4737 },
} as const;

/** Timers short enough for a failover to be seen within a test, the rest out of the way. */
export const FAILOVER_ENV = {
  SOS_LEVEL2_MS: '20000',
  SOS_LEVEL3_MS: '30000',
  SOS_SLA_MS: '600000',
  LATE_DEPARTURE_MS: '600000',
  LATE_ARRIVAL_MS: '25000',
  OFFLINE_MS: '600000',
};

/** Deadlines far beyond a test's length: no alert but the ones a test causes. */
export const QUIET_DEADLINES_ENV = {
  SOS_LEVEL2_MS: '600000',
  SOS_LEVEL3_MS: '600000',
  SOS_SLA_MS: '900000',
  OFFLINE_MS: '600000',
  LATE_DEPARTURE_MS: '600000',
  LATE_ARRIVAL_MS: '600000',
};

/**
 * Returns a function that makes a fresh temporary folder named after `prefix`; every
 * folder it made is removed when the test file's process exits. Not in an `after` hook:
 * hooks run in the order they were added, so a file that added this one first had its
 * folders removed under nodes its own later hook had not stopped yet; the removal then
 * failed (chDB still writing), and the failed hook skipped the one stopping the nodes,
 * which left the file hanging on them.
 */
export function tempDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  process.once('exit', () => {
    for (const dir of dirs.splice(0)) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch (err) {
        process.stderr.write(`could not remove ${dir}: ${String(err)}\n`);
      }
    }
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), `fieldtrack-${prefix}-`));
    dirs.push(dir);
    return dir;
  };
}

/** An open level-1 SOS alert of technician `t-1`, with `extra` on top. */
export function sosAlert(id: string, extra: Partial<Alert> = {}): Alert {
  return { id, kind: 'sos', level: 1, state: 'open', tech: 't-1', ts: 1_000, ...extra };
}

/**
 * A location message as OwnTracks sends it in HTTP mode (the booklet's JSON page), from
 * technician `user` at `tst` (unix seconds), 36 km/h heading west.
 */
export function ownTracksLocation(user: string, tid: string, tst: number): Record<string, unknown> {
  return {
    _type: 'location',
    acc: 13,
    alt: 40,
    batt: 84,
    bs: 1,
    conn: 'w',
    created_at: tst + 1,
    lat: 48.856826,
    lon: 2.292713,
    m: 1,
    t: 'u',
    tid,
    tst,
    vac: 0,
    vel: 36,
    cog: 270,
    topic: `owntracks/${user}/phone`,
  };
}

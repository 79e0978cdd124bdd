/**
 * The fault campaign's checker (`npm run chaos`, load/chaos.ts): a pure function from what
 * the clients saw and what the archives hold to the list of violated invariants. Kept apart
 * from the runner so it can be tested on crafted observations (test/unit/load-chaos-check.test.ts).
 *
 * Invariants (issue 15):
 * - every SOS acked to a device reaches the consoles;
 * - it reaches each rung (level 2, level 3) exactly once unless acknowledged first: no
 *   console sees a rung reached at two different times (`detail.escalatedAt`), some console sees it when the SOS stayed unacknowledged past
 *   the rung (with slack), none sees it when it was acknowledged well before (a console's
 *   snapshot on connecting counts as seeing the versions it holds);
 * - every ping acked to a device is in the archives exactly once (summed over nodes: each
 *   node archives what it served);
 * - every console ack answered `ack` reaches the device as `sos_status` when the device was
 *   connected throughout the moments after it;
 * - no technician with open work goes unserved (no ack of any kind) for more than 30 s;
 * - no duplicate alert for one cause: one alert id per deadline kind and order, and no
 *   more SOS incidents per technician than the device pressed SOS.
 */
import type { Alert } from '../src/protocol.js';

/** An alert as a console received it (`alert` pushes only, not snapshots) and when. */
export interface SeenChange {
  console: string;
  at: number;
  alert: Alert;
}

/** An SOS the device sent and got acked. */
export interface AckedSos {
  tech: string;
  incident: string;
  at: number;
}

/** A console's ack of an SOS that was answered `ack`. */
export interface ConsoleAck {
  incident: string;
  /** When the `ack` answer arrived. */
  at: number;
}

/** What the campaign observed. */
export interface Observations {
  level2Ms: number;
  level3Ms: number;
  /** When the run (and its checks) ended: rungs due after it are not required. */
  endedAt: number;
  sos: AckedSos[];
  /** SOS presses sent per technician, answered or not. */
  sosPresses: Record<string, number>;
  changes: SeenChange[];
  /**
   * Every alert version a console got in a snapshot (on connecting) and when. A rung reached
   * while no console could hear it (every console on a frozen node, or reconnecting) shows
   * only there, with the same `detail.escalatedAt` as its push would have had.
   */
  snapshots: SeenChange[];
  /** Every SOS id any console saw (snapshots included). */
  sosSeen: string[];
  consoleAcks: ConsoleAck[];
  /** `sos_status` pushes devices received: incident -> states. */
  sosStatus: Record<string, string[]>;
  /** Per technician, the intervals [from, to] its device's connection was open. */
  connected: Record<string, Array<[number, number]>>;
  /** Per technician, the ts of every acked ping. */
  pingsAcked: Record<string, number[]>;
  /** Per technician, the ts of every archived point, over every node's archive (repeats kept). */
  archived: Record<string, number[]>;
  /** Per technician, the longest time with open work and no ack of any kind, ms. */
  longestUnserved: Record<string, number>;
}

/** Slack for rung timing (server timers vs client clocks, pushes in flight). */
export const RUNG_SLACK_MS = 10_000;
/** Longest a technician with open work may go without any answer. */
export const UNSERVED_LIMIT_MS = 30_000;
/** How long a device must stay connected after a console's ack for its `sos_status` to be required. */
export const PUSH_WINDOW_MS = 10_000;

/** Every violated invariant, as one line each; empty when the run is clean. */
export function check(o: Observations): string[] {
  const out: string[] = [];
  const seen = new Set(o.sosSeen);
  for (const c of o.changes) if (c.alert.kind === 'sos') seen.add(c.alert.id);

  const firstAck = new Map<string, number>();
  for (const a of o.consoleAcks) firstAck.set(a.incident, Math.min(a.at, firstAck.get(a.incident) ?? a.at));

  for (const s of o.sos) {
    if (!seen.has(s.incident)) out.push(`sos ${s.incident} of ${s.tech} acked to the device, never seen by a console`);
  }

  // Rungs: per incident and level, when it reached that level, as its versions say
  // (`detail.escalatedAt`). A rung delivered again (re-published after a failover, or a
  // press while at that level) carries the same time; a rung fired twice does not. A
  // version without the time counts as a rung of its own.
  const raised = new Map<string, number>();
  const rungs = new Map<string, Set<string>>();
  let untimed = 0;
  for (const c of [...o.changes, ...o.snapshots]) {
    if (c.alert.kind !== 'sos') continue;
    raised.set(c.alert.id, c.alert.ts);
    if (c.alert.state !== 'open' || c.alert.level < 2) continue;
    const key = `${c.alert.id}\u0000${c.alert.level}`;
    const at = c.alert.detail?.escalatedAt;
    const times = rungs.get(key) ?? new Set<string>();
    times.add(typeof at === 'number' ? String(at) : `untimed ${untimed++}`);
    rungs.set(key, times);
  }
  const anyConsole = new Map<string, number>();
  for (const [key, times] of rungs) {
    const [id, level] = key.split('\u0000') as [string, string];
    if (times.size > 1) out.push(`sos ${id} reached level ${level} ${times.size} times (${[...times].join(', ')})`);
    anyConsole.set(`${id}:${level}`, 1);
  }
  for (const [id, ts] of raised) {
    const acked = firstAck.get(id);
    for (const [level, after] of [
      [2, o.level2Ms],
      [3, o.level3Ms],
    ] as const) {
      const due = ts + after;
      const got = anyConsole.has(`${id}:${level}`);
      const ackedBefore = acked !== undefined && acked < due - RUNG_SLACK_MS;
      const overdue = (acked === undefined || acked > due + RUNG_SLACK_MS) && o.endedAt > due + RUNG_SLACK_MS;
      if (got && ackedBefore) out.push(`sos ${id} reached level ${level} although acknowledged before it`);
      if (!got && overdue) out.push(`sos ${id} never reached level ${level} although unacknowledged past it`);
    }
  }

  // Acked pings archived exactly once over all nodes.
  for (const [tech, acked] of Object.entries(o.pingsAcked)) {
    const count = new Map<number, number>();
    for (const ts of o.archived[tech] ?? []) count.set(ts, (count.get(ts) ?? 0) + 1);
    const missing = acked.filter((ts) => (count.get(ts) ?? 0) === 0);
    const twice = acked.filter((ts) => (count.get(ts) ?? 0) > 1);
    if (missing.length > 0) out.push(`${tech}: ${missing.length} acked pings not archived (first ts ${missing[0]})`);
    if (twice.length > 0)
      out.push(`${tech}: ${twice.length} acked pings archived more than once (first ts ${twice[0]})`);
  }

  // Console acks reach the device.
  const techOf = new Map(o.sos.map((s) => [s.incident, s.tech]));
  for (const a of o.consoleAcks) {
    const tech = techOf.get(a.incident);
    if (tech === undefined) continue;
    const covered = (o.connected[tech] ?? []).some(([from, to]) => from <= a.at && to >= a.at + PUSH_WINDOW_MS);
    const told = (o.sosStatus[a.incident] ?? []).some((s) => s === 'acknowledged' || s === 'resolved');
    if (covered && !told) out.push(`console ack of ${a.incident} never reached ${tech}'s connected device`);
  }

  // Service.
  for (const [tech, ms] of Object.entries(o.longestUnserved)) {
    if (ms > UNSERVED_LIMIT_MS) out.push(`${tech} had open work and no answer for ${Math.round(ms / 1000)} s`);
  }

  // One alert per cause.
  const causes = new Map<string, Set<string>>();
  const sosIds = new Map<string, Set<string>>();
  for (const c of o.changes) {
    const a = c.alert;
    if (a.kind === 'sos') {
      const ids = sosIds.get(a.tech) ?? new Set<string>();
      ids.add(a.id);
      sosIds.set(a.tech, ids);
    } else if (a.order !== undefined) {
      const key = `${a.kind} of order ${a.order}`;
      const ids = causes.get(key) ?? new Set<string>();
      ids.add(a.id);
      causes.set(key, ids);
    }
  }
  for (const [cause, ids] of causes) if (ids.size > 1) out.push(`${ids.size} alerts for one cause: ${cause}`);
  for (const [tech, ids] of sosIds) {
    const presses = o.sosPresses[tech] ?? 0;
    if (ids.size > presses) out.push(`${tech}: ${ids.size} SOS incidents for ${presses} presses`);
  }
  return out;
}

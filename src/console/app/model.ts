/**
 * The console's view of the alerts, as pure functions and one small store: the list
 * order, the SOS escalation countdown, labels and durations. No DOM here, so the Node
 * test suite checks these rules directly (test/console-model.test.ts).
 */
import type { Alert, AlertKind } from '../../protocol.js';

/** The server's SOS escalation timings, from `GET /console/config.json`. */
export interface Timings {
  sosLevel2Ms: number;
  sosLevel3Ms: number;
  sosSlaMs: number;
}

/** `GET /console/config.json`: the timings, and the server's clock to correct the browser's. */
export interface ConsoleSettings extends Timings {
  serverTime: number;
  /** Map tiles the operator configured (MAP_TILE_URL), or null: the map is drawn without tiles. */
  tiles: TileSource | null;
}

/** An XYZ raster tile source: the template (`{z}`, `{x}`, `{y}`) and its attribution. */
export interface TileSource {
  url: string;
  attribution: string;
}

/** How each kind is named on screen. */
export const KIND_LABELS: Readonly<Record<AlertKind, string>> = {
  sos: 'SOS',
  late_departure: 'Late departure',
  late_arrival: 'Late arrival',
  overtime: 'Overtime',
  offline: 'Offline',
  geofence_exit: 'Left geofence',
  implausible_move: 'Implausible move',
};

/**
 * List order, most urgent first: SOS before any other kind (a person may be in danger
 * until it is resolved), then open before acknowledged (someone still has to react), then
 * higher level, then newest; the id breaks ties so the order never flickers.
 */
export function compareAlerts(a: Alert, b: Alert): number {
  const sos = Number(b.kind === 'sos') - Number(a.kind === 'sos');
  if (sos !== 0) return sos;
  const open = Number(b.state === 'open') - Number(a.state === 'open');
  if (open !== 0) return open;
  if (a.level !== b.level) return b.level - a.level;
  if (a.ts !== b.ts) return b.ts - a.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Where an alert stands on the SOS ladder, for the countdown column. */
export interface Escalation {
  /** Short text: "level 2 in 0:42", "SLA breached 3:10 ago", "stopped", "none". */
  label: string;
  /** none: not an SOS; pending: counting down; soon: under 30 s left; breached: past the SLA; stopped: acknowledged. */
  tone: 'none' | 'pending' | 'soon' | 'breached' | 'stopped';
}

const SOON_MS = 30_000;

/** The next escalation step of `alert` at `now` (server time), following the server's ladder. */
export function escalation(alert: Alert, timings: Timings, now: number): Escalation {
  if (alert.kind !== 'sos') return { label: 'none', tone: 'none' };
  if (alert.state !== 'open') return { label: 'stopped', tone: 'stopped' };
  const elapsed = Math.max(0, now - alert.ts);
  const steps: Array<[number, string]> = [
    [timings.sosLevel2Ms, 'level 2'],
    [timings.sosLevel3Ms, 'level 3'],
    [timings.sosSlaMs, 'SLA breach'],
  ];
  for (const [at, name] of steps) {
    if (elapsed < at) {
      const left = at - elapsed;
      return { label: `${name} in ${clock(left)}`, tone: left <= SOON_MS ? 'soon' : 'pending' };
    }
  }
  return { label: `SLA breached ${clock(elapsed - timings.sosSlaMs)} ago`, tone: 'breached' };
}

/** `m:ss` (or `h:mm:ss`), rounding up so a countdown shows 0:00 only when it is due. */
export function clock(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A coarse age for the list: "12 s", "4 min", "2 h 5 min", "3 d". */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** What changed when alerts were applied, so the page can sound and announce. */
export interface BoardChange {
  /** SOS alerts that are open and were not known open before (new, or seen for the first time). */
  newSos: Alert[];
  /** Open SOS alerts whose level rose. */
  escalated: Alert[];
}

/** The open and acknowledged alerts the console shows, by id. */
export class AlertBoard {
  private readonly alerts = new Map<string, Alert>();

  /** Replaces everything with a snapshot (on every connect, so nothing missed while away stays missed). */
  replace(snapshot: readonly Alert[]): BoardChange {
    const before = new Map(this.alerts);
    this.alerts.clear();
    const change: BoardChange = { newSos: [], escalated: [] };
    for (const alert of snapshot) {
      if (alert.state === 'resolved') continue;
      this.alerts.set(alert.id, alert);
      noteChange(before.get(alert.id), alert, change);
    }
    return change;
  }

  /** Applies one pushed change; a resolved alert leaves the board. */
  apply(alert: Alert): BoardChange {
    const change: BoardChange = { newSos: [], escalated: [] };
    const previous = this.alerts.get(alert.id);
    if (alert.state === 'resolved') this.alerts.delete(alert.id);
    else this.alerts.set(alert.id, alert);
    noteChange(previous, alert, change);
    return change;
  }

  get(id: string): Alert | undefined {
    return this.alerts.get(id);
  }

  /** Every alert, in list order. */
  sorted(): Alert[] {
    return [...this.alerts.values()].sort(compareAlerts);
  }

  get size(): number {
    return this.alerts.size;
  }
}

function noteChange(previous: Alert | undefined, next: Alert, change: BoardChange): void {
  if (next.kind !== 'sos' || next.state !== 'open') return;
  if (previous === undefined || previous.state !== 'open') change.newSos.push(next);
  else if (next.level > previous.level) change.escalated.push(next);
}

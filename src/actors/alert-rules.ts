/**
 * What may happen to an alert, as pure functions of its current version, like the order
 * state machine: each answers the new version, `null` when there is nothing to change (an
 * idempotent repeat), or a refusal. They are applied through the alert board (persisted,
 * then pushed), by the incident actor for SOS and by the tracker for every other kind, so
 * an acknowledgement or a resolution means the same thing, with the same refusals, for
 * every alert.
 */

import type { Refusal } from '../outcome.js';
import type { Alert } from '../protocol.js';
import { notYours } from './refusals.js';
import type { SosRung } from './sos-ladder.js';

/** One change of an alert: the new version, null for "nothing to change", or a refusal. */
export type AlertChange = (current: Alert) => Alert | null | Refusal;

/** Notes of repeated SOS presses kept on the alert (newest last); older ones live in the archive's alert events. */
export const PRESS_NOTES_KEPT = 5;

const RESOLVED: Refusal = { ok: false, code: 'conflict', msg: 'alert is resolved' };

/** Whether the SOS ladder flagged the alert's response promise as broken. */
export function slaBreached(a: Alert): boolean {
  return a.detail?.slaBreached === true;
}

/** An operator acknowledges: escalation stops. A resolved alert cannot be acknowledged. */
export function acknowledge(operator: string, now: number): AlertChange {
  return (cur) => {
    if (cur.state === 'resolved') return RESOLVED;
    if (cur.state === 'acknowledged') return null;
    return { ...cur, state: 'acknowledged', detail: { ...cur.detail, ackedBy: operator, ackedAt: now } };
  };
}

/** An operator resolves, with an optional note; resolving twice changes nothing. */
export function resolve(operator: string, note: string | undefined, now: number): AlertChange {
  return (cur) => {
    if (cur.state === 'resolved') return null;
    const noted = note !== undefined ? { note } : {};
    return { ...cur, state: 'resolved', detail: { ...cur.detail, resolvedBy: operator, resolvedAt: now, ...noted } };
  };
}

/** The technician cancels their own SOS: resolved as a false alarm. */
export function cancelByTechnician(tech: string, now: number): AlertChange {
  return (cur) => {
    if (cur.tech !== tech) return notYours('incident', cur.id);
    if (cur.state === 'resolved') return RESOLVED;
    return { ...cur, state: 'resolved', detail: { ...cur.detail, cancelled: true, falseAlarm: true, resolvedAt: now } };
  };
}

/** The SOS ladder's rung reached: the level only rises, and only while nobody has acknowledged. */
export function escalate(rung: Pick<SosRung, 'level' | 'slaBreached'>, now: number): AlertChange {
  return (cur) => {
    if (cur.state !== 'open') return null;
    if (rung.level <= cur.level && (!rung.slaBreached || slaBreached(cur))) return null;
    const detail: Record<string, unknown> = { ...cur.detail };
    if (rung.slaBreached) detail.slaBreached = true;
    // When the incident reached its level: a rung delivered twice (a re-publish after a
    // failover) carries the same time, a rung fired twice would not.
    if (rung.level > cur.level) detail.escalatedAt = now;
    return { ...cur, level: Math.max(cur.level, rung.level), detail };
  };
}

/** One more `sos` press of the incident's technician (see the incident actor). */
export interface Press {
  tech: string;
  ts: number;
  lat: number;
  lon: number;
  note?: string;
}

/**
 * Counts a press in `detail.presses`; its fix becomes the alert's position when it is the
 * newest; its note is kept among the last few. The ladder is not restarted: the first
 * press set the clock the response promise counts from.
 */
export function press(p: Press, now: number): AlertChange {
  return (cur) => {
    if (cur.tech !== p.tech || cur.state === 'resolved') return RESOLVED;
    const detail: Record<string, unknown> = { ...cur.detail };
    detail.presses = (typeof detail.presses === 'number' ? detail.presses : 1) + 1;
    detail.lastPressAt = now;
    const newestTs = typeof detail.lastPressTs === 'number' ? detail.lastPressTs : detail.deviceTs;
    const newer = typeof newestTs !== 'number' || p.ts >= newestTs;
    if (newer) detail.lastPressTs = p.ts;
    if (p.note !== undefined) {
      const notes = Array.isArray(detail.pressNotes) ? (detail.pressNotes as unknown[]) : [];
      detail.pressNotes = [...notes, p.note].slice(-PRESS_NOTES_KEPT);
    }
    return newer ? { ...cur, lat: p.lat, lon: p.lon, detail } : { ...cur, detail };
  };
}

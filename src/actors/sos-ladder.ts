/**
 * The SOS escalation ladder as a pure function of time: what level and SLA flag an
 * incident must show at `now`, and when it next needs looking at. Being a function of
 * time (not of timer firings) is what makes recovery simple: after a restart the incident
 * actor asks once and lands on the right rung, however long the process was down.
 */

/** The thresholds of the ladder (from Config). */
export interface SosTimings {
  SOS_LEVEL2_MS: number;
  SOS_LEVEL3_MS: number;
  SOS_SLA_MS: number;
}

/** Where an incident must stand at a moment, and when the next rung is due (null: none). */
export interface SosRung {
  level: number;
  slaBreached: boolean;
  next: number | null;
}

/**
 * The rung of an SOS raised at `raisedAt`. An acknowledged incident stops climbing: it
 * keeps the level and flag it had (`current`), and nothing is due any more.
 */
export function sosRung(
  raisedAt: number,
  acknowledged: boolean,
  current: { level: number; slaBreached: boolean },
  now: number,
  t: SosTimings,
): SosRung {
  if (acknowledged) return { level: current.level, slaBreached: current.slaBreached, next: null };
  const age = now - raisedAt;
  const level = Math.max(current.level, age >= t.SOS_LEVEL3_MS ? 3 : age >= t.SOS_LEVEL2_MS ? 2 : 1);
  const slaBreached = current.slaBreached || age >= t.SOS_SLA_MS;
  const upcoming = [t.SOS_LEVEL2_MS, t.SOS_LEVEL3_MS, t.SOS_SLA_MS].map((d) => raisedAt + d).filter((at) => at > now);
  return { level, slaBreached, next: upcoming.length > 0 ? Math.min(...upcoming) : null };
}

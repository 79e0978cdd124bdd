/**
 * The SOS incident actor: one per open SOS, its state being the SOS alert itself (the
 * incident id IS the alert id). It serialises everything that happens to the incident:
 * opening (journaled before the ack), the escalation ladder, the operator's
 * acknowledgement and resolution (the technician gets `sos_status`), and cancellation by
 * the technician (a false alarm: resolved with `detail.cancelled` and `detail.falseAlarm`).
 *
 * A technician has at most one unresolved incident: another `sos` meanwhile is a press of
 * the same incident (`press`). A frightened technician pressing again and again, or a
 * device flooding `sos`, then grows one bounded alert instead of drowning the safety
 * center in incidents.
 */
import type { Alert } from '../protocol.js';
import type { AckExtras, Outcome, Refusal } from './api.js';
import type { ActorDeps } from './deps.js';
import type { IncidentMsg } from './messages.js';
import { notYours } from './refusals.js';
import type { ActorSpec, Effects } from './registry.js';
import { sosRung } from './sos-ladder.js';

const OK: Outcome<AckExtras> = { ok: true, value: {} };

/** Notes of repeated presses kept on the alert (newest last); older ones live in the archive's alert events. */
export const PRESS_NOTES_KEPT = 5;

function slaBreached(a: Alert): boolean {
  return a.detail?.slaBreached === true;
}

/**
 * When the ladder next needs looking at for this incident, or null. An incident that is
 * behind its rung (a tick's durable write took so long that the next threshold passed
 * meanwhile) is due at once: the rung's `next` only names thresholds still ahead, and
 * waiting for those would leave the missed step unapplied for good.
 */
export function incidentDeadline(a: Alert, now: number, t: Parameters<typeof sosRung>[4]): number | null {
  if (a.state !== 'open') return null;
  const rung = sosRung(a.ts, false, { level: a.level, slaBreached: slaBreached(a) }, now, t);
  if (rung.level !== a.level || rung.slaBreached !== slaBreached(a)) return now;
  return rung.next;
}

/** The incident actor's behaviour, for the registry. */
export function incidentSpec(deps: ActorDeps): ActorSpec<Alert, IncidentMsg> {
  const { config, clock, board, incidents, pushDevice } = deps;

  /** Applies a change through the board (persisted, pushed); the result is the new state. */
  async function apply(
    a: Alert,
    change: (cur: Alert) => Alert | null | Refusal,
    policy: 'refuse' | 'tolerate',
  ): Promise<Outcome<Alert>> {
    return board.change(a.id, change, policy);
  }

  async function open(id: string, a: Alert | undefined, msg: IncidentMsg & { t: 'open' }, fx: Effects) {
    if (a !== undefined) {
      fx.push(() => msg.reply({ ok: true, value: { incident: id } }));
      return a;
    }
    const detail: Record<string, unknown> = { deviceTs: msg.ts, presses: 1 };
    if (msg.note !== undefined) detail.note = msg.note;
    const alert: Alert = {
      id,
      kind: 'sos',
      level: 1,
      state: 'open',
      tech: msg.tech,
      lat: msg.lat,
      lon: msg.lon,
      ts: clock.now(),
      detail,
    };
    // Journaled (fsync) inside raise before we answer: the SOS survives a crash once acked.
    const out = await board.raise(alert, 'tolerate');
    if (!out.ok) {
      fx.push(() => msg.reply(out));
      return undefined;
    }
    fx.push(() => msg.reply({ ok: true, value: { incident: id } }));
    return out.value;
  }

  /**
   * One more `sos` of the incident's technician: counted in `detail.presses`, its fix
   * becomes the alert's position when it is the newest, its note is kept among the last
   * few. The ladder is not restarted: the first press set the clock the SLA counts from.
   */
  async function press(a: Alert, msg: IncidentMsg & { t: 'press' }, fx: Effects) {
    if (a.tech !== msg.tech || a.state === 'resolved') {
      // The tracker opens a new incident instead (it raced a resolve or cancel).
      return refuse(fx, msg.reply, { ok: false, code: 'conflict', msg: 'incident is resolved' }, a);
    }
    const now = clock.now();
    const out = await apply(
      a,
      (cur) => {
        const detail: Record<string, unknown> = { ...cur.detail };
        detail.presses = (typeof detail.presses === 'number' ? detail.presses : 1) + 1;
        detail.lastPressAt = now;
        const newestTs = typeof detail.lastPressTs === 'number' ? detail.lastPressTs : detail.deviceTs;
        const newer = typeof newestTs !== 'number' || msg.ts >= newestTs;
        if (newer) detail.lastPressTs = msg.ts;
        if (msg.note !== undefined) {
          const notes = Array.isArray(detail.pressNotes) ? (detail.pressNotes as unknown[]) : [];
          detail.pressNotes = [...notes, msg.note].slice(-PRESS_NOTES_KEPT);
        }
        return newer ? { ...cur, lat: msg.lat, lon: msg.lon, detail } : { ...cur, detail };
      },
      'tolerate',
    );
    if (!out.ok) return refuse(fx, msg.reply, out, a);
    fx.push(() => msg.reply({ ok: true, value: { incident: a.id } }));
    return out.value;
  }

  async function tick(a: Alert | undefined): Promise<Alert | undefined> {
    if (a === undefined || a.state !== 'open') return a;
    const rung = sosRung(a.ts, false, { level: a.level, slaBreached: slaBreached(a) }, clock.now(), config);
    if (rung.level === a.level && rung.slaBreached === slaBreached(a)) return a;
    const out = await apply(
      a,
      (cur) =>
        cur.state !== 'open'
          ? null
          : {
              ...cur,
              level: Math.max(cur.level, rung.level),
              detail: rung.slaBreached ? { ...cur.detail, slaBreached: true } : cur.detail,
            },
      'tolerate',
    );
    return out.ok ? out.value : a;
  }

  async function ack(a: Alert, operator: string, fx: Effects, reply: IncidentReply) {
    if (a.state === 'resolved')
      return refuse(fx, reply, { ok: false, code: 'conflict', msg: 'incident is resolved' }, a);
    if (a.state === 'acknowledged') {
      fx.push(() => reply(OK));
      return a;
    }
    const now = clock.now();
    const out = await apply(
      a,
      (cur) => ({ ...cur, state: 'acknowledged', detail: { ...cur.detail, ackedBy: operator, ackedAt: now } }),
      'refuse',
    );
    if (!out.ok) return refuse(fx, reply, out, a);
    fx.push(() => pushDevice(a.tech, { t: 'sos_status', incident: a.id, state: 'acknowledged' }));
    fx.push(() => reply(OK));
    return out.value;
  }

  async function resolve(a: Alert, operator: string, note: string | undefined, fx: Effects, reply: IncidentReply) {
    if (a.state === 'resolved') {
      fx.push(() => reply(OK));
      return a;
    }
    const now = clock.now();
    const out = await apply(
      a,
      (cur) => ({
        ...cur,
        state: 'resolved',
        detail: { ...cur.detail, resolvedBy: operator, resolvedAt: now, ...(note !== undefined ? { note } : {}) },
      }),
      'refuse',
    );
    if (!out.ok) return refuse(fx, reply, out, a);
    fx.push(() => pushDevice(a.tech, { t: 'sos_status', incident: a.id, state: 'resolved' }));
    fx.push(() => reply(OK));
    return out.value;
  }

  async function cancel(a: Alert, tech: string, fx: Effects, reply: IncidentReply) {
    if (a.tech !== tech) {
      return refuse(fx, reply, notYours('incident', a.id), a);
    }
    if (a.state === 'resolved') {
      return refuse(fx, reply, { ok: false, code: 'conflict', msg: 'incident is already resolved' }, a);
    }
    const now = clock.now();
    const out = await apply(
      a,
      (cur) => ({
        ...cur,
        state: 'resolved',
        detail: { ...cur.detail, cancelled: true, falseAlarm: true, resolvedAt: now },
      }),
      'refuse',
    );
    if (!out.ok) return refuse(fx, reply, out, a);
    fx.push(() => reply(OK));
    return out.value;
  }

  return {
    kind: 'incident',
    async handle(id, state, msg, fx) {
      let next: Alert | undefined;
      if (msg.t === 'open') next = await open(id, state, msg, fx);
      else if (msg.t === 'tick') next = await tick(state);
      else if (state === undefined) {
        // A press of an incident that is gone: the tracker opens a new one on `conflict`.
        const code = msg.t === 'press' ? 'conflict' : 'not_found';
        const reply = msg.reply;
        fx.push(() => reply({ ok: false, code, msg: 'no such incident' }));
        return undefined;
      } else if (msg.t === 'press') next = await press(state, msg, fx);
      else if (msg.t === 'ack') next = await ack(state, msg.operator, fx, msg.reply);
      else if (msg.t === 'resolve') next = await resolve(state, msg.operator, msg.note, fx, msg.reply);
      else next = await cancel(state, msg.tech, fx, msg.reply);
      if (next !== undefined) {
        const at = incidentDeadline(next, clock.now(), config);
        fx.push(() => incidents.arm(id, at));
      }
      return next;
    },
    replyCrash(msg, answer) {
      if (msg.t !== 'tick') msg.reply(answer);
    },
    passivable(state) {
      return state === undefined || state.state === 'resolved';
    },
  };
}

type IncidentReply = (outcome: Outcome<AckExtras>) => void;

function refuse(fx: Effects, reply: IncidentReply, refusal: Refusal, state: Alert): Alert {
  fx.push(() => reply(refusal));
  return state;
}

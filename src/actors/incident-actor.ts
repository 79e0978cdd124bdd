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

import type { AckExtras, Outcome, Refusal } from '../outcome.js';
import type { Alert } from '../protocol.js';
import {
  type AlertChange,
  acknowledge,
  cancelByTechnician,
  escalate,
  press as pressRule,
  resolve as resolveRule,
  slaBreached,
} from './alert-rules.js';
import type { ActorDeps } from './deps.js';
import type { IncidentMsg } from './messages.js';
import type { ActorSpec, Effects } from './registry.js';
import { sosRung } from './sos-ladder.js';

const OK: Outcome<AckExtras> = { ok: true, value: {} };

/** What a technician's `sos` carries. */
export interface SosPress {
  tech: string;
  ts: number;
  lat: number;
  lon: number;
  note?: string;
}

/** A new SOS incident `id` opened by `press` at `now`: level 1, open, its first press. */
export function newSosAlert(id: string, press: SosPress, now: number): Alert {
  const detail: Record<string, unknown> = { deviceTs: press.ts, presses: 1 };
  if (press.note !== undefined) detail.note = press.note;
  return {
    id,
    kind: 'sos',
    level: 1,
    state: 'open',
    tech: press.tech,
    lat: press.lat,
    lon: press.lon,
    ts: now,
    detail,
  };
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

function isRefusal(x: Alert | Refusal): x is Refusal {
  return (x as Refusal).ok === false;
}

/** The incident actor's behaviour, for the registry. */
export function incidentSpec(deps: ActorDeps): ActorSpec<Alert, IncidentMsg> {
  const { config, clock, board, incidents, pushDevice } = deps;

  /**
   * Applies `rule` to the incident: nothing to change answers OK at once; a refusal is the
   * answer; a change is persisted and pushed through the board, and `changed` runs (the
   * technician's `sos_status`) as it is pushed, before the answer.
   */
  async function decide(
    a: Alert,
    rule: AlertChange,
    policy: 'refuse' | 'tolerate',
    fx: Effects,
    reply: IncidentReply,
    changed?: (next: Alert) => void,
  ): Promise<Alert> {
    const next = rule(a);
    if (next === null) {
      fx.push(() => reply(OK));
      return a;
    }
    if (isRefusal(next)) return refuse(fx, reply, next, a);
    // `changed` (the technician's sos_status) goes out with the consoles' push, while the
    // change is stored; the answer waits until it is durable.
    const out = await board.change(a.id, rule, policy, changed);
    if (!out.ok) return refuse(fx, reply, out, a);
    fx.push(() => reply(OK));
    return out.value;
  }

  async function open(id: string, a: Alert | undefined, msg: IncidentMsg & { t: 'open' }, fx: Effects) {
    if (a !== undefined) {
      fx.push(() => msg.reply({ ok: true, value: { incident: id } }));
      return a;
    }
    // Journaled (fsync) inside raise before we answer: the SOS survives a crash once acked.
    // Consoles heard of it before this turn (device-intake.ts).
    const out = await board.raise(msg.alert, 'tolerate');
    if (!out.ok) {
      fx.push(() => msg.reply(out));
      return undefined;
    }
    fx.push(() => msg.reply({ ok: true, value: { incident: id } }));
    return out.value;
  }

  /** One more `sos` of the incident's technician; a resolved incident answers `conflict`, and the tracker opens a new one. */
  function press(a: Alert, msg: IncidentMsg & { t: 'press' }, fx: Effects): Promise<Alert> {
    const reply: IncidentReply = (out) => msg.reply(out.ok ? { ok: true, value: { incident: a.id } } : out);
    return decide(a, pressRule(msg, clock.now()), 'tolerate', fx, reply);
  }

  async function tick(a: Alert | undefined): Promise<Alert | undefined> {
    if (a === undefined || a.state !== 'open') return a;
    const rung = sosRung(a.ts, false, { level: a.level, slaBreached: slaBreached(a) }, clock.now(), config);
    const rule = escalate(rung, clock.now());
    if (rule(a) === null) return a;
    const out = await board.change(a.id, rule, 'tolerate');
    return out.ok ? out.value : a;
  }

  const tellTechnician = (state: 'acknowledged' | 'resolved') => (next: Alert) =>
    pushDevice(next.tech, { t: 'sos_status', incident: next.id, state });

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
      else if (msg.t === 'ack')
        next = await decide(
          state,
          acknowledge(msg.operator, clock.now()),
          'refuse',
          fx,
          msg.reply,
          tellTechnician('acknowledged'),
        );
      else if (msg.t === 'resolve')
        next = await decide(
          state,
          resolveRule(msg.operator, msg.note, clock.now()),
          'refuse',
          fx,
          msg.reply,
          tellTechnician('resolved'),
        );
      else next = await decide(state, cancelByTechnician(msg.tech, clock.now()), 'refuse', fx, msg.reply);
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

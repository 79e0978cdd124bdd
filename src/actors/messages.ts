/**
 * The typed messages actors exchange. Requests that need an answer carry a `reply`
 * callback (a resolver) instead of going through nact's `query`, which would arm a real
 * timeout per message: the ping path stays one dispatch and one promise. Replies are sent
 * by the registry only after the actor committed its new state.
 */

import type { Eta } from '../eta/eta.js';
import type { AckExtras, Outcome } from '../outcome.js';
import type { Alert, BatchPoint, OrderInput, OrderView, PingMsg } from '../protocol.js';
import type { OrderLink } from './records.js';

/** Answers a request; called exactly once per request. */
export type Reply<T> = (outcome: Outcome<T>) => void;

/** "Look at your deadlines now": sent by the actor's timer and after a restart. */
export interface Tick {
  t: 'tick';
}

/** The one tick message; it carries nothing, so one object serves every actor. */
export const TICK: Tick = Object.freeze({ t: 'tick' });

/** A fix as the technician actor receives it: a `ping` message without `t` and `seq`. */
export type IncomingFix = Omit<PingMsg, 't' | 'seq'>;

/** Messages of a technician actor. */
export type TechMsg =
  | { t: 'ping'; fix: IncomingFix; reply: Reply<AckExtras> }
  | { t: 'batch'; pts: BatchPoint[]; reply: Reply<AckExtras> }
  /** An order of this technician changed; `tech` is its (possibly new) technician. */
  | { t: 'order'; tech: string; link: OrderLink }
  | Tick;

/** The device commands that move an order. */
export type DeviceOrderCommand = 'depart' | 'checkin' | 'start' | 'complete';

/** Messages of an order actor. */
export type OrderMsg =
  | { t: 'put'; input: OrderInput; reply: Reply<OrderView> }
  | { t: 'cancel'; reply: Reply<OrderView> }
  | {
      t: 'device';
      tech: string;
      cmd: DeviceOrderCommand;
      ts: number | null;
      fix: { lat: number; lon: number; acc?: number } | null;
      reply: Reply<AckExtras>;
    }
  /** A live, accurate-enough fix of the order's technician (forwarded by the technician actor). */
  | { t: 'fix'; ts: number; lat: number; lon: number; acc: number | null }
  /** The ETA estimated from a fix of the order's technician while `departed` (eta/): decides approaching. */
  | { t: 'eta'; eta: Eta }
  | Tick;

/** Messages of an SOS incident actor. */
export type IncidentMsg =
  /** A new incident, `alert` as already announced to consoles (device-intake.ts). */
  | { t: 'open'; alert: Alert; reply: Reply<AckExtras> }
  /** Another `sos` of the technician while this incident is not resolved: one incident, one more press. */
  | { t: 'press'; tech: string; ts: number; lat: number; lon: number; note?: string; reply: Reply<AckExtras> }
  | { t: 'ack'; operator: string; reply: Reply<AckExtras> }
  | { t: 'resolve'; operator: string; note?: string; reply: Reply<AckExtras> }
  | { t: 'cancel'; tech: string; reply: Reply<AckExtras> }
  | Tick;

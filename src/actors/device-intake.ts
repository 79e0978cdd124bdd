/**
 * Where a device message enters the behaviour: each kind goes to the actor that owns it
 * (pings and batches to the technician, order commands to the order, `sos` and
 * `sos_cancel` to the incident), and an accepted position is published to the shared
 * live-position index. A fix that comes with a `checkin` or an `sos` is a position too.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { AckExtras, Outcome } from '../outcome.js';
import type { Alert, DeviceMessage } from '../protocol.js';
import type { NearbyIndex } from '../shared/nearby-index.js';
import type { AlertBoard } from './alert-board.js';
import type { LiveActors } from './deps.js';
import { newSosAlert } from './incident-actor.js';
import type { IncidentMsg, OrderMsg, TechMsg } from './messages.js';
import type { LivePosition, OrderRecord, TechRecord } from './records.js';
import { notYours } from './refusals.js';
import { ask } from './registry.js';

/** What the intake routes to: this node's actors, board and the live-position index. */
export interface IntakeDeps extends LiveActors {
  log: Logger;
  clock: Clock;
  board: AlertBoard;
  nearby: NearbyIndex;
  /** Whether a device of `tech` is attached to this node. */
  attached(tech: string): boolean;
}

/** See the module comment. One per node. */
export class DeviceIntake {
  /** Per technician, the end of the `sos` handling in progress (see oneSosAtATime). */
  private readonly sosInFlight = new Map<string, Promise<void>>();

  constructor(private readonly d: IntakeDeps) {}

  /** A device of `tech` attached here: its last known position is live again. */
  attach(tech: string): void {
    const pos = this.d.techs.records.get(tech)?.pos;
    if (pos !== undefined && pos !== null) this.d.nearby.put(tech, pos.lat, pos.lon, pos.ts);
  }

  /** The device of `tech` left: it is no longer offered as nearby. */
  detach(tech: string): void {
    this.d.nearby.remove(tech);
  }

  /** The technician actor accepted a newest position: offered as nearby while its device is here. */
  publish(tech: string, pos: LivePosition): void {
    if (this.d.attached(tech)) this.d.nearby.put(tech, pos.lat, pos.lon, pos.ts);
  }

  /** A device message handled with what this node holds. */
  handle(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    const { orders, incidents, board } = this.d;
    switch (msg.t) {
      case 'ping':
      case 'batch':
        return this.positions(tech, msg);
      case 'depart':
      case 'start':
      case 'complete':
      case 'checkin': {
        if (!orders.records.has(msg.order)) return Promise.resolve(notYours('order', msg.order));
        const fix =
          msg.t === 'checkin'
            ? { lat: msg.lat, lon: msg.lon, ...(msg.acc !== undefined ? { acc: msg.acc } : {}) }
            : null;
        const ts = msg.t === 'checkin' ? msg.ts : msg.t === 'depart' ? (msg.ts ?? null) : null;
        const moved = ask<OrderRecord, OrderMsg, AckExtras>(orders, msg.order, (reply) => ({
          t: 'device' as const,
          tech,
          cmd: msg.t,
          ts,
          fix,
          reply,
        }));
        if (msg.t !== 'checkin') return moved;
        // An accepted check-in's fix is a position like any other (archived, live, nearby).
        return moved.then(async (out) => {
          if (out.ok) await this.recordFix(tech, msg);
          return out;
        });
      }
      case 'sos':
        return this.oneSosAtATime(tech, () => this.sos(tech, msg));
      case 'sos_cancel': {
        const a = board.get(msg.incident);
        if (a === undefined || a.kind !== 'sos' || a.tech !== tech) {
          return Promise.resolve(notYours('incident', msg.incident));
        }
        if (a.state === 'resolved')
          return Promise.resolve({ ok: false, code: 'conflict', msg: 'incident is resolved' });
        return ask(incidents, msg.incident, (reply) => ({ t: 'cancel' as const, tech, reply }));
      }
    }
  }

  /** A `ping` or `batch` for the technician actor (which publishes an accepted newest fix). */
  private positions(tech: string, msg: DeviceMessage & { t: 'ping' | 'batch' }): Promise<Outcome<AckExtras>> {
    const { techs } = this.d;
    const asked =
      msg.t === 'ping'
        ? ask<TechRecord, TechMsg, AckExtras>(techs, tech, (reply) => ({ t: 'ping' as const, fix: msg, reply }))
        : ask<TechRecord, TechMsg, AckExtras>(techs, tech, (reply) => ({ t: 'batch' as const, pts: msg.pts, reply }));
    return asked;
  }

  /**
   * Runs `sos` handling of technician `tech` after the previous one has finished, so two
   * presses in a row cannot both find no open incident and open two.
   */
  private oneSosAtATime(tech: string, run: () => Promise<Outcome<AckExtras>>): Promise<Outcome<AckExtras>> {
    const before = this.sosInFlight.get(tech) ?? Promise.resolve();
    const result = before.then(run);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.sosInFlight.set(tech, settled);
    void settled.then(() => {
      if (this.sosInFlight.get(tech) === settled) this.sosInFlight.delete(tech);
    });
    return result;
  }

  /** An SOS: a press of the technician's unresolved incident, or a new incident; its fix is a position too. */
  private async sos(tech: string, msg: DeviceMessage & { t: 'sos' }): Promise<Outcome<AckExtras>> {
    const { incidents, board } = this.d;
    const fixRecorded = this.recordFix(tech, msg);
    const press = {
      tech,
      ts: msg.ts,
      lat: msg.lat,
      lon: msg.lon,
      ...(msg.note !== undefined ? { note: msg.note } : {}),
    };
    const open = board.openSosOf(tech);
    let out: Outcome<AckExtras> | null = null;
    if (open !== undefined) {
      out = await ask<Alert, IncidentMsg, AckExtras>(incidents, open, (reply) => ({
        t: 'press' as const,
        ...press,
        reply,
      }));
      // Resolved or cancelled meanwhile: this press opens a new incident.
      if (!out.ok && out.code === 'conflict') out = null;
    }
    if (out === null) {
      // Consoles hear of a new incident now, not after the actor's turn (alert-board.ts).
      const alert = newSosAlert(board.newSosId(tech), press, this.d.clock.now());
      board.announceNewSos(alert);
      try {
        out = await ask<Alert, IncidentMsg, AckExtras>(incidents, alert.id, (reply) => ({
          t: 'open' as const,
          alert,
          reply,
        }));
      } finally {
        board.newSosSettled(alert);
      }
    }
    await fixRecorded;
    return out;
  }

  /**
   * Stores a fix that came with a `checkin` or `sos` as the technician's position
   * (archived, live, nearby), exactly as a ping would be. Never fails the message that
   * brought it: that message's own effect is already durable; a refused fix is logged.
   */
  private async recordFix(tech: string, fix: { ts: number; lat: number; lon: number; acc?: number }): Promise<void> {
    const ping = { ts: fix.ts, lat: fix.lat, lon: fix.lon, ...(fix.acc !== undefined ? { acc: fix.acc } : {}) };
    try {
      const out = await ask<TechRecord, TechMsg, AckExtras>(this.d.techs, tech, (reply) => ({
        t: 'ping' as const,
        fix: ping,
        reply,
      }));
      if (!out.ok) this.d.log.warn({ tech, code: out.code }, 'fix of a checkin or sos not stored as a position');
    } catch (err) {
      this.d.log.error({ err, tech }, 'fix of a checkin or sos not stored as a position');
    }
  }
}

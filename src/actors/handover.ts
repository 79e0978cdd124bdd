/**
 * The local side of moving a technician between nodes: installing the state another
 * node left (`adopt`) and letting go of one (`evict`). The cluster decides when
 * (src/cluster/takeover.ts); this module only changes this node's registries and board.
 */
import type { Alert } from '../protocol.js';
import type { AlertBoard } from './alert-board.js';
import { type IncidentMsg, type OrderMsg, type TechMsg, TICK } from './messages.js';
import { activeOrderOf, isTerminalState, type OrderRecord, type TechRecord } from './records.js';
import type { RecoveredState } from './recovery.js';
import type { Registry } from './registry.js';

/** The registries and board a hand-over changes. */
export interface HandoverDeps {
  board: AlertBoard;
  techs: Registry<TechRecord, TechMsg>;
  orders: Registry<OrderRecord, OrderMsg>;
  incidents: Registry<Alert, IncidentMsg>;
}

/**
 * Installs technician `tech`'s state as loaded from shared storage, replacing what this
 * node had of it, and wakes everything with a deadline so it looks at it now, here.
 */
export async function adopt(d: HandoverDeps, tech: string, state: RecoveredState): Promise<void> {
  const { board, techs, orders, incidents } = d;
  for (const [id, o] of state.orders) await orders.replace(id, o);
  for (const a of state.alerts) {
    await board.evict(a.id);
    board.load([a]);
  }
  for (const a of state.incidents) await incidents.replace(a.id, a);
  const loaded = state.techs.get(tech);
  let rec: TechRecord | undefined;
  // Merged when the replacement runs, after the pings already sent to the technician.
  await techs.replace(tech, {
    from: (local) => {
      rec = loaded ?? local;
      if (rec !== undefined && local?.pos && (rec.pos === null || local.pos.ts > rec.pos.ts)) {
        // Pings this node accepted while waiting for the lease are newer than the shared copy.
        rec = { ...rec, pos: local.pos, recent: local.recent };
      }
      return rec;
    },
  });

  for (const [id] of state.orders) orders.send(id, TICK);
  for (const a of state.incidents) incidents.send(a.id, TICK);
  if (rec !== undefined && activeOrderOf(rec) !== undefined) techs.send(tech, TICK);
}

/** Drops technician `tech`'s actors, orders, incidents and alerts from this node. */
export async function evict(d: HandoverDeps, tech: string): Promise<void> {
  const { board, techs, orders, incidents } = d;
  for (const [id, o] of [...orders.records]) if (o.tech === tech) await orders.replace(id, undefined);
  for (const [id, a] of [...incidents.records]) if (a.tech === tech) await incidents.replace(id, undefined);
  for (const a of board.list()) if (a.tech === tech) await board.evict(a.id);
  await techs.replace(tech, undefined);
}

/** Sends a tick to every actor of technician `tech` with a deadline, so what came due runs now. */
export function wake(d: HandoverDeps, tech: string): void {
  const { techs, orders, incidents } = d;
  for (const [id, o] of orders.records) if (o.tech === tech && !isTerminalState(o.state)) orders.send(id, TICK);
  for (const [id, a] of incidents.records) if (a.tech === tech) incidents.send(id, TICK);
  const rec = techs.records.get(tech);
  if (rec !== undefined && activeOrderOf(rec) !== undefined) techs.send(tech, TICK);
}

/**
 * Journal reconciliation (multi-node mode), the pure part: given what a node's journal
 * holds of one technician and what the node running that technician holds now, which
 * journal records are missing there and must be written to shared state.
 *
 * Why it is needed: a node's writes to Redis are queued while Redis is unreachable; a
 * node killed then (kill -9, power loss) loses that queue, although every change in it
 * was journaled (fsynced) and acked. Its journal is the only copy left.
 *
 * The rules, chosen so a journal record never overwrites a newer change and never adds a
 * second alert for one cause. Every record here only moves forward (an alert from open to
 * acknowledged to resolved and up the levels, an order along its timeline, a position to
 * newer fixes), so "the more advanced one wins" is "the newer one wins":
 *
 * - An alert the present state has wins when the journal's version is further along
 *   (state, then level, then presses, then the SLA flag). An alert the present state lacks
 *   is added only when it is unresolved in the journal, shared storage never held it
 *   (`known`: a resolved alert leaves the open set, so absence alone could mean "resolved
 *   by another node since"), and no alert of the same cause is present (the same deadline
 *   kind for the same order; an uncleared `offline` or an unresolved `implausible_move` of
 *   the technician): the node that ran the technician since may have raised its own. An
 *   SOS has no such twin: every press the device was acked for is kept.
 * - An order wins when its timeline is longer (a transition the present state lacks). An
 *   order absent from the present state is added only when it is not finished and shared
 *   storage never had it (`known`), so an order completed elsewhere does not come back.
 *   An update of an order's fields that moved no state (same timeline) cannot be told
 *   from an older copy and is not reconciled (README, known limits).
 * - A position wins when its fix is newer.
 */
import { DEADLINE_KINDS } from '../actors/order-rules.js';
import type { LiveRecord, OrderRecord } from '../actors/records.js';
import { isTerminalState, isUnresolved, type LivePosition } from '../actors/records.js';
import type { RecoveredState } from '../actors/recovery.js';
import type { Alert, AlertState } from '../protocol.js';

/** What a node's journal holds of one technician. */
export interface Journaled {
  readonly tech: string;
  readonly orders: OrderRecord[];
  readonly alerts: Alert[];
  readonly position: { pos: LivePosition; quietSince: number } | null;
}

/** What the node running the technician holds of it now. */
export interface Present {
  readonly orders: ReadonlyMap<string, OrderRecord>;
  readonly alerts: ReadonlyMap<string, Alert>;
  readonly position: LivePosition | null;
}

/** Ids shared storage ever held (orders in its order index, alerts in its change stream). */
export interface Known {
  readonly orders: ReadonlySet<string>;
  readonly alerts: ReadonlySet<string>;
}

/** Groups a replayed journal (`recover`'s result) by technician. */
export function journaledByTech(state: RecoveredState): Map<string, Journaled> {
  const out = new Map<
    string,
    { tech: string; orders: OrderRecord[]; alerts: Alert[]; position: Journaled['position'] }
  >();
  const of = (tech: string) => {
    let j = out.get(tech);
    if (j === undefined) {
      j = { tech, orders: [], alerts: [], position: null };
      out.set(tech, j);
    }
    return j;
  };
  for (const o of state.orders.values()) of(o.tech).orders.push(o);
  for (const a of state.alerts) of(a.tech).alerts.push(a);
  for (const t of state.techs.values()) {
    if (t.pos !== null) of(t.id).position = { pos: t.pos, quietSince: t.quietSince };
  }
  return out;
}

const STATE_RANK: Record<AlertState, number> = { open: 0, acknowledged: 1, resolved: 2 };

/** How far along an alert is, compared left to right. */
function progress(a: Alert): number[] {
  const presses = typeof a.detail?.presses === 'number' ? a.detail.presses : 0;
  return [STATE_RANK[a.state], a.level, presses, a.detail?.slaBreached === true ? 1 : 0];
}

/** Whether `a` is strictly further along than `b`. */
export function aheadOf(a: Alert, b: Alert): boolean {
  const pa = progress(a);
  const pb = progress(b);
  for (let i = 0; i < pa.length; i++) {
    if (pa[i]! !== pb[i]!) return pa[i]! > pb[i]!;
  }
  return false;
}

/** Whether `alerts` already hold an alert of the same cause as `a` (see the module comment). */
function sameCause(a: Alert, alerts: Iterable<Alert>, orders: ReadonlyMap<string, OrderRecord>): boolean {
  const deadline = (DEADLINE_KINDS as readonly string[]).includes(a.kind) || a.kind === 'geofence_exit';
  if (deadline && a.order !== undefined) {
    if (orders.get(a.order)?.fired.includes(a.kind)) return true;
  }
  for (const b of alerts) {
    if (b.id === a.id || b.tech !== a.tech || b.kind !== a.kind) continue;
    if (deadline && b.order === a.order) return true;
    if (a.kind === 'offline' && isUnresolved(b) && b.detail?.clearedAt === undefined) return true;
    if (a.kind === 'implausible_move' && isUnresolved(b)) return true;
  }
  return false;
}

/** Journal records of one technician that the present state lacks; see the module comment. */
export function missingFrom(j: Journaled, present: Present, known: Known): LiveRecord[] {
  const out: LiveRecord[] = [];
  for (const o of j.orders) {
    const p = present.orders.get(o.id);
    if (
      p !== undefined ? o.timeline.length > p.timeline.length : !isTerminalState(o.state) && !known.orders.has(o.id)
    ) {
      out.push({ k: 'o', o });
    }
  }
  const added: Alert[] = [];
  for (const a of j.alerts) {
    const p = present.alerts.get(a.id);
    if (p !== undefined) {
      if (aheadOf(a, p)) out.push({ k: 'a', a });
      continue;
    }
    if (!isUnresolved(a) || known.alerts.has(a.id)) continue;
    if (sameCause(a, [...present.alerts.values(), ...added], present.orders)) continue;
    added.push(a);
    out.push({ k: 'a', a });
  }
  const pos = j.position;
  if (pos !== null && (present.position === null || pos.pos.ts > present.position.ts)) {
    out.push({ k: 'p', id: j.tech, pos: pos.pos, quietSince: pos.quietSince });
  }
  return out;
}

/** Order and alert ids of `j` whose history in shared storage `missingFrom` needs (`Known`). */
export function historyWanted(j: Journaled, present: Present): { orders: string[]; alerts: Alert[] } {
  return {
    orders: j.orders.filter((o) => !present.orders.has(o.id) && !isTerminalState(o.state)).map((o) => o.id),
    alerts: j.alerts.filter((a) => !present.alerts.has(a.id) && isUnresolved(a)),
  };
}

/**
 * Records of a technician this node runs that shared storage holds an older version of,
 * or lacks (after Redis lost writes: a failover to a replica that had not received them,
 * a restart without persistence). Here the node's state is the authority: it holds the
 * lease, so every record of it is at least as new as anything in shared storage, and a
 * record shared storage lacks is one it lost, never one another node finished since.
 * Unlike `missingFrom`, a finished order or resolved alert that shared storage still shows
 * open is written too (its removal was lost).
 */
export function staleInShared(local: readonly LiveRecord[], shared: Present): LiveRecord[] {
  const out: LiveRecord[] = [];
  for (const r of local) {
    if (r.k === 'o') {
      const s = shared.orders.get(r.o.id);
      const stale = isTerminalState(r.o.state)
        ? s !== undefined
        : s === undefined || r.o.timeline.length > s.timeline.length;
      if (stale) out.push(r);
    } else if (r.k === 'a') {
      const s = shared.alerts.get(r.a.id);
      const stale = isUnresolved(r.a) ? s === undefined || aheadOf(r.a, s) : s !== undefined;
      if (stale) out.push(r);
    } else if (shared.position === null || r.pos.ts > shared.position.ts) {
      out.push(r);
    }
  }
  return out;
}

/** Two sets of records of one technician as one: per order and alert the one further along, the newer position. */
export function combine(a: Journaled, b: Journaled): Journaled {
  const orders = new Map(a.orders.map((o) => [o.id, o]));
  for (const o of b.orders) {
    const had = orders.get(o.id);
    if (had === undefined || o.timeline.length >= had.timeline.length) orders.set(o.id, o);
  }
  const alerts = new Map(a.alerts.map((x) => [x.id, x]));
  for (const x of b.alerts) {
    const had = alerts.get(x.id);
    if (had === undefined || !aheadOf(had, x)) alerts.set(x.id, x);
  }
  const position =
    a.position === null || (b.position !== null && b.position.pos.ts >= a.position.pos.ts) ? b.position : a.position;
  return { tech: a.tech, orders: [...orders.values()], alerts: [...alerts.values()], position };
}

/** Adds `j` to what `into` keeps of its technician, combined with what was there; returns the result. */
export function keepCombined(into: Map<string, Journaled>, j: Journaled): Journaled {
  const before = into.get(j.tech);
  const kept = before === undefined ? j : combine(before, j);
  into.set(j.tech, kept);
  return kept;
}

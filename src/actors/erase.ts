/**
 * Erasing a technician (README, "Erasing a technician"): refuses while anything
 * safety-relevant is still going on; otherwise removes live state first (so no actor
 * writes new rows of it), then the journal (tombstones + compaction), the shared state
 * and last the archive.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Outcome } from '../outcome.js';
import type { Alert } from '../protocol.js';
import type { NearbyIndex } from '../shared/nearby-index.js';
import type { ArchiveEraser, ArchiveQueries } from '../telemetry/archive.js';
import type { AlertBoard } from './alert-board.js';
import type { TechnicianErased } from './api.js';
import type { ConsoleFanout } from './console-fanout.js';
import type { LiveActors } from './deps.js';
import { isStorageFailure, NOT_STORED } from './persistence.js';
import { isTerminalState, isUnresolved, type LiveJournal, type OrderRecord } from './records.js';
import { ARCHIVE_DOWN, notFound } from './refusals.js';

/**
 * Longest an erase waits for the archive (spool drain and delete mutations). Below the
 * node-to-node request timeout, so a forwarded erase answers instead of timing out.
 */
const ERASE_ARCHIVE_TIMEOUT_MS = 8000;
/** How long an erase waits for a message in flight to an actor it removes before giving up. */
const ERASE_BUSY_WAIT_MS = 5000;

const BUSY: Outcome<never> = { ok: false, code: 'unavailable', msg: 'the technician is busy right now; retry' };

/** What an erase removes from. */
export interface EraseDeps extends LiveActors {
  clock: Clock;
  log: Logger;
  archive: ArchiveQueries & Partial<ArchiveEraser>;
  journal: LiveJournal;
  board: AlertBoard;
  fanout: ConsoleFanout;
  nearby: NearbyIndex;
  /** Whether a device of `tech` is attached to this node. */
  attached(tech: string): boolean;
  /** Erases what other nodes could load of `tech` (multi-node), after the journal and before the archive. */
  eraseShared(tech: string): Promise<void>;
}

/** Erases technician `id` from this node, the shared state and the archive; see the module comment. */
export async function eraseTechnician(d: EraseDeps, id: string): Promise<Outcome<TechnicianErased>> {
  const eraseArchive = d.archive.eraseTechnician?.bind(d.archive);
  if (eraseArchive === undefined) return { ok: false, code: 'unavailable', msg: 'this archive cannot erase' };
  if (d.attached(id)) {
    return {
      ok: false,
      code: 'conflict',
      msg: 'the technician is connected: sign the device out first, or its next ping records it again',
    };
  }
  const orders = [...d.orders.records.values()].filter((o) => o.tech === id);
  const alerts = new Map<string, Alert>();
  for (const a of d.fanout.list()) if (a.tech === id) alerts.set(a.id, a);
  for (const a of d.board.list()) if (a.tech === id) alerts.set(a.id, a);
  const openOrders = orders.filter((o) => !isTerminalState(o.state)).map((o) => o.id);
  const openAlerts = [...alerts.values()].filter(isUnresolved).map((a) => a.id);
  if (openOrders.length > 0 || openAlerts.length > 0) {
    return {
      ok: false,
      code: 'conflict',
      msg: 'the technician has open orders or unresolved alerts: finish or cancel them and resolve the alerts first',
      extras: { orders: openOrders, alerts: openAlerts },
    };
  }
  const tech = d.techs.records.get(id);
  if (tech === undefined && orders.length === 0 && alerts.size === 0) {
    // Maybe only the archive still knows it (an erase that failed there, another node).
    const archived = await d.archive.track(id, 0, d.clock.now(), 1).catch(() => null);
    if (archived === null) return ARCHIVE_DOWN;
    if (archived.length === 0) return notFound(`no technician ${id}`);
  }

  // Each removal is a message after those already sent to the actor: a busy actor
  // finishes its message first. One that takes too long makes the erase answer "retry".
  const removed = await withDeadline(d.clock, ERASE_BUSY_WAIT_MS, removeLive(d, id, orders, alerts));
  if (removed !== true) return BUSY;
  await d.nearby.erase(id);
  try {
    await d.journal.erase([
      { kind: 'p', id },
      ...orders.map((o) => ({ kind: 'o' as const, id: o.id })),
      ...[...alerts.keys()].map((a) => ({ kind: 'a' as const, id: a })),
    ]);
  } catch (err) {
    if (!isStorageFailure(err)) throw err;
    d.log.warn({ err, tech: id }, 'erase: the journal cannot store the erasure');
    return {
      ...NOT_STORED,
      msg: 'the node cannot store the erasure right now (disk full or failing); retry the erase',
    };
  }
  await d.eraseShared(id);
  try {
    await eraseArchive(id, ERASE_ARCHIVE_TIMEOUT_MS);
  } catch (err) {
    d.log.warn({ err, tech: id }, 'erase: live state erased, archive not yet');
    return {
      ok: false,
      code: 'unavailable',
      msg: `live state is erased but the archive is not yet (${(err as Error).message}); retry the erase`,
    };
  }
  d.log.info({ tech: id, orders: orders.length, alerts: alerts.size }, 'technician erased');
  const value: TechnicianErased = {
    id,
    erased: {
      technician: tech !== undefined,
      orders: orders.map((o) => o.id),
      alerts: [...alerts.keys()],
      archive: true,
    },
  };
  return { ok: true, value };
}

/** Removes the technician's live records: its actor, orders and alerts; false if an alert could not go. */
async function removeLive(
  d: EraseDeps,
  id: string,
  orders: OrderRecord[],
  alerts: Map<string, Alert>,
): Promise<boolean> {
  await d.techs.forget(id);
  for (const o of orders) await d.orders.forget(o.id);
  for (const a of alerts.values()) {
    if (d.board.get(a.id) !== undefined && !(await d.board.forget(a.id))) return false;
    await d.incidents.forget(a.id);
    d.fanout.forget(a.id);
  }
  return true;
}

/** What `work` resolves with, or `null` if `ms` passes on `clock` first. */
function withDeadline<T>(clock: Clock, ms: number, work: Promise<T>): Promise<T | null> {
  return new Promise((resolve) => {
    const cancel = clock.setTimer(clock.now() + ms, () => resolve(null));
    void work.then((value) => {
      cancel();
      resolve(value);
    });
  });
}

/**
 * Journal reconciliation (multi-node mode): after a start, what this node's journal holds
 * and shared storage lacks is written there (journal-merge.ts says what is missing).
 *
 * Fencing: a journal record is only ever written by the node that holds the technician's
 * lease, with that lease's current fencing token, after comparing it with the state that
 * node runs. A technician whose lease is free is taken over here first (as any take-over:
 * a new token, state loaded from Redis), then merged here. A technician another live node
 * holds (it took it over while this node was down) is not written from here at all: its
 * journal records are sent to that node over the node bus (`reconcile` request), and that
 * node merges them into what it runs, in its own serialised actors, under its own token.
 * So a reconciling write can never race the owner's writes, nor be refused as stale, nor
 * add what the owner already superseded; and a node that lost its technician while frozen
 * can still not change anything (its token is stale, and it writes nothing itself).
 *
 * The same goes for what this node had of a technician it let go while running (its lease
 * went to another node, or came back under a new token: `keep`): Redis may have lost part
 * of it in a failover, and this node's copy is reconciled like a journal's.
 *
 * And for a record whose write Redis refused as stale (`keep` with the refused token): an
 * order this node acked while it could not tell where the technician runs (Redis down),
 * or while it ran it under a lease another node had taken meanwhile (a pause, a
 * partition). Without this it reached the owner only when this node restarted (seeds 27
 * and 28 of the chaos campaign). Such a record is never settled by merging it here while
 * this node still runs the technician under the token Redis refused: that run is stale,
 * the record stays pending until the lease renewal either drops the technician (then it
 * goes to the owner) or confirms it under a new token (then the take-over merged it).
 *
 * The pass repeats every LEASE_RENEW_MS until every technician of the journal is settled:
 * while Redis is unreachable, while the owner does not answer, or while a technician is
 * between nodes, it is tried again later.
 */
import type { LocalTracker } from '../actors/local-tracker.js';
import type { LiveRecord } from '../actors/records.js';
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { Outcome } from '../outcome.js';
import type { SharedState } from '../shared/shared-state.js';
import type { StateMirror } from '../shared/state-mirror.js';
import { type ClusterLink, LEASE_RENEW_MS } from './cluster-link.js';
import {
  historyWanted,
  type Journaled,
  journaledByTech,
  type Known,
  keepCombined,
  missingFrom,
  type Present,
} from './journal-merge.js';
import type { Takeover } from './takeover.js';

/** How far before an alert's raise time its history is read (clocks of nodes and Redis differ). */
const CLOCK_SLACK_MS = 60_000;

/** What reconciliation works on. */
export interface ReconcileDeps {
  cluster: ClusterLink;
  takeover: Takeover;
  mirror: StateMirror;
  shared: SharedState;
  local: LocalTracker;
  log: Logger;
  clock: Clock;
}

/** See the module comment. One per node in Redis mode. */
export class Reconciler {
  private pending = new Map<string, Journaled>();
  /** Per technician, the newest token among its pending records' refused writes (see the module comment). */
  private readonly refusedUnder = new Map<string, number>();
  private stopTimer: CancelTimer | null = null;
  private running = false;
  /** Records came (`keep`) since the current pass began: pass again right after it, not a renewal period later. */
  private again = false;
  private closed = false;

  constructor(private readonly d: ReconcileDeps) {}

  /** Takes the journal the local tracker replayed at start and begins reconciling it. */
  start(): void {
    const state = this.d.local.takeJournaled();
    if (state === null) return;
    this.pending = journaledByTech(state);
    if (this.pending.size === 0) return;
    this.d.log.info({ technicians: this.pending.size }, 'journal reconciliation: comparing the journal with redis');
    this.stopTimer = every(this.d.clock, LEASE_RENEW_MS, () => void this.pass());
    void this.pass();
  }

  /** Stops retrying, for good (the node is closing). */
  stop(): void {
    this.closed = true;
    this.stopTimer?.();
    this.stopTimer = null;
  }

  /** Technicians still to reconcile (tests, logs). */
  get remaining(): number {
    return this.pending.size;
  }

  /**
   * Merges journal records `j` of technician `tech` into what this node runs (it holds the
   * lease): runs on the node that asked for nothing (its own journal) or for another node
   * (a `reconcile` request). `unavailable` when this node does not run the technician.
   */
  async mergeHere(j: Journaled): Promise<Outcome<{ merged: number }>> {
    const { takeover, local, log } = this.d;
    if (!takeover.runs(j.tech)) return { ok: false, code: 'unavailable', msg: 'technician not run here; retry' };
    const cur = local.stateOf(j.tech);
    const present: Present = {
      orders: new Map(cur.orders.map((o) => [o.id, o])),
      alerts: new Map(cur.alerts.map((a) => [a.id, a])),
      position: cur.position,
    };
    const missing = missingFrom(j, present, await this.history(j, present));
    if (missing.length > 0) {
      await local.mergeJournaled(j.tech, missing);
      log.info({ tech: j.tech, records: describe(missing) }, 'journal reconciliation: records redis lacked merged');
    }
    return { ok: true, value: { merged: missing.length } };
  }

  /** Which ids of `j` absent from `present` shared storage ever held. */
  private history(j: Journaled, present: Present): Promise<Known> {
    return knownIn(this.d, j, present);
  }

  /**
   * Records of technician `j.tech` that this node ran until it had to let them go (its
   * lease went to another node, or came back under a new token after Redis lost writes):
   * they may be further along than what Redis holds (an operator's ack Redis lost in a
   * failover), so they are reconciled like a journal's, where the technician runs now.
   * `refusedToken`: these are records whose write Redis refused as stale, carrying that
   * token (see the module comment).
   */
  keep(j: Journaled, refusedToken?: number): void {
    if (this.closed) return;
    keepCombined(this.pending, j);
    if (refusedToken !== undefined) {
      this.refusedUnder.set(j.tech, Math.max(refusedToken, this.refusedUnder.get(j.tech) ?? 0));
    }
    this.stopTimer ??= every(this.d.clock, LEASE_RENEW_MS, () => void this.pass());
    this.again = true;
    void this.pass();
  }

  private async pass(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.again = false;
    try {
      for (const [tech, j] of [...this.pending]) {
        // Records that came meanwhile were combined into a new entry: settled on the next pass.
        if ((await this.settle(tech, j)) && this.pending.get(tech) === j) {
          this.pending.delete(tech);
          this.refusedUnder.delete(tech);
          this.d.takeover.forgetKept(tech);
        }
      }
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'journal reconciliation: redis unreachable; retrying');
    } finally {
      this.running = false;
      if (this.again && this.pending.size > 0 && !this.closed) void this.pass();
      else if (this.pending.size === 0 && this.stopTimer !== null) {
        this.stopTimer();
        this.stopTimer = null;
        this.d.log.info('journal reconciliation done');
      }
    }
  }

  /** Reconciles one technician; whether it is settled. */
  private async settle(tech: string, j: Journaled): Promise<boolean> {
    const { takeover, cluster, mirror, shared } = this.d;
    if (!takeover.runs(tech)) {
      // Compare with Redis first: most technicians of a journal lack nothing there, and
      // need no lease.
      const [mirrored, snap] = await Promise.all([mirror.load(tech), shared.feed.snapshot()]);
      const inRedis: Present = {
        orders: new Map(mirrored.orders.map((o) => [o.id, o])),
        alerts: new Map(snap.alerts.filter((a) => a.tech === tech).map((a) => [a.id, a])),
        position: mirrored.position?.pos ?? null,
      };
      if (missingFrom(j, inRedis, await this.history(j, inRedis)).length === 0) return true;
      const got = await takeover.adopt(tech);
      if (got === 'unreachable') return false;
      if (got === 'taken') {
        const owner = await cluster.owner(tech);
        if (owner === null || owner === cluster.nodeId) return false;
        const out = await cluster.forward<{ merged: number }>(owner, 'reconcile', { journaled: j });
        if (out.ok)
          this.d.log.info({ tech, owner, merged: out.value.merged }, 'journal reconciliation: sent to the owner');
        return out.ok;
      }
    }
    // This node runs the technician, but under the very token Redis refused (or an older
    // one): its run is stale and another node holds the lease. Merging here would call the
    // record settled while only this node has it; the renewal decides (module comment).
    const refused = this.refusedUnder.get(tech);
    if (refused !== undefined && this.d.shared.fences.get(tech) <= refused) return false;
    return (await this.mergeHere(j)).ok;
  }
}

/**
 * Which ids of `j` absent from `present` shared storage ever held (orders in its order
 * index, alerts in its change stream): what `missingFrom` needs.
 */
export async function knownIn(
  d: Pick<ReconcileDeps, 'mirror' | 'shared' | 'log'>,
  j: Journaled,
  present: Present,
): Promise<Known> {
  const want = historyWanted(j, present);
  const orders = new Set<string>();
  for (const id of want.orders) if ((await d.mirror.techOf(id)) !== null) orders.add(id);
  let alerts = new Set<string>();
  if (want.alerts.length > 0) {
    const since = Math.min(...want.alerts.map((a) => a.ts)) - CLOCK_SLACK_MS;
    const seen = await d.shared.feed.idsSince(since);
    alerts = seen.ids;
    if (!seen.complete) {
      // The feed no longer reaches back that far: these alerts cannot be told from ones
      // resolved long ago, so they are not brought back (README, known limits).
      for (const a of want.alerts) alerts.add(a.id);
      d.log.warn(
        { tech: j.tech, alerts: want.alerts.length },
        'journal reconciliation: alerts older than the feed’s history are not reconciled',
      );
    }
  }
  return { orders, alerts };
}

/** Counts of records by kind, for the log (never their content: positions, notes). */
function describe(recs: LiveRecord[]): Record<string, number> {
  const out: Record<string, number> = { orders: 0, alerts: 0, positions: 0 };
  for (const r of recs) out[r.k === 'o' ? 'orders' : r.k === 'a' ? 'alerts' : 'positions']! += 1;
  return out;
}

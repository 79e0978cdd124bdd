/**
 * Durable webhook state of one node, in `DATA_DIR/webhooks`: an AppendLog of JSON records.
 *
 * - `{k:'w', w}`: a subscription (id, url, types, secret, creation time, and `after`, the
 *   newest event id when it was made: it receives only later events); `{k:'x', id}`: deleted.
 * - `{k:'ok', w, e}`: event `e` delivered to webhook `w`; `{k:'dead', w, d}`: given up on
 *   (the whole event is in the record, so retention of the event log cannot lose it);
 *   `{k:'re', w, evs}`: dead events put back into delivery.
 * - `{k:'low', w, below}`: every event with an id before `below` is settled for `w`.
 *
 * Replay is additive and idempotent; after a restart the pending events of a webhook are
 * the events of the log after `max(after, below)` that it wants and that are not settled,
 * plus the redelivered ones. Compaction writes one snapshot of every webhook (its record,
 * its `low` mark, the settled ids above it, its dead and redelivered events) into a new
 * segment and drops the older ones, at start and whenever the file has doubled.
 *
 * Secrets are stored here in clear (the node needs them to sign): keep DATA_DIR private.
 */
import { join } from 'node:path';
import type { DispatchEvent } from '../protocol.js';
import { AppendLog } from '../storage/append-log.js';
import type { DeadEvent } from './delivery.js';

/** A subscription as stored. */
export interface StoredWebhook {
  id: string;
  url: string;
  /** Types, or `['*']`. */
  events: string[];
  secret: string;
  createdAt: number;
  /** Newest event id when it was created: it gets only events after this one. */
  after: string | null;
}

/** What replay gives back for one webhook. */
export interface WebhookState {
  hook: StoredWebhook;
  /** Every event with an id before this is settled (null: nothing known). */
  below: string | null;
  /** Settled ids at or after `below`. */
  settled: Set<string>;
  dead: Map<string, DeadEvent>;
  /** Dead events put back into delivery and not settled since. */
  requeued: Map<string, DispatchEvent>;
}

type StoreRecord =
  | { k: 'w'; w: StoredWebhook }
  | { k: 'x'; id: string }
  | { k: 'ok'; w: string; e: string }
  | { k: 'dead'; w: string; d: DeadEvent }
  | { k: 're'; w: string; evs: DispatchEvent[] }
  | { k: 'low'; w: string; below: string };

const encode = (rec: StoreRecord): Buffer => Buffer.from(JSON.stringify(rec));

/** See the module comment. */
export class WebhookStore {
  private compactedBytes = 0;
  private compacting: Promise<void> | null = null;

  private constructor(
    private readonly log: AppendLog,
    readonly states: Map<string, WebhookState>,
  ) {}

  /** Opens the store under `dataDir` and replays it. */
  static async open(dataDir: string): Promise<WebhookStore> {
    const log = await AppendLog.open({ dir: join(dataDir, 'webhooks'), segmentBytes: 4 << 20 });
    const states = new Map<string, WebhookState>();
    for await (const entry of log.read()) apply(states, JSON.parse(entry.record.toString('utf8')) as StoreRecord);
    return new WebhookStore(log, states);
  }

  /** A new subscription; resolves once durable. */
  async create(hook: StoredWebhook): Promise<void> {
    await this.log.append(encode({ k: 'w', w: hook }));
    apply(this.states, { k: 'w', w: hook });
  }

  /** Deletes a subscription; resolves once durable. */
  async remove(id: string): Promise<void> {
    await this.log.append(encode({ k: 'x', id }));
    apply(this.states, { k: 'x', id });
  }

  /** Event `e` delivered to `w`. Not awaited by delivery: a crash before the fsync means one more delivery, which receivers deduplicate. */
  delivered(w: string, e: string): Promise<unknown> {
    apply(this.states, { k: 'ok', w, e });
    return this.log.append(encode({ k: 'ok', w, e }));
  }

  /** An event of `w` given up on. */
  dead(w: string, d: DeadEvent): Promise<unknown> {
    apply(this.states, { k: 'dead', w, d });
    return this.log.append(encode({ k: 'dead', w, d }));
  }

  /** Dead events of `w` put back into delivery; resolves once durable. */
  async requeued(w: string, evs: DispatchEvent[]): Promise<void> {
    if (evs.length === 0) return;
    await this.log.append(encode({ k: 're', w, evs }));
    apply(this.states, { k: 're', w, evs });
  }

  /**
   * Rewrites the state of every webhook, with `belowOf(id)` as each one's new low mark
   * (its oldest pending event, or past the newest event), and drops the older segments.
   */
  compact(belowOf: (id: string) => string): Promise<void> {
    this.compacting ??= (async () => {
      const start = await this.log.rotate();
      const recs: Buffer[] = [];
      for (const [id, st] of this.states) {
        const below = belowOf(id);
        st.below = below;
        for (const e of st.settled) if (e < below) st.settled.delete(e);
        recs.push(encode({ k: 'w', w: st.hook }), encode({ k: 'low', w: id, below }));
        for (const e of st.settled) recs.push(encode({ k: 'ok', w: id, e }));
        for (const d of st.dead.values()) recs.push(encode({ k: 'dead', w: id, d }));
        if (st.requeued.size > 0) recs.push(encode({ k: 're', w: id, evs: [...st.requeued.values()] }));
      }
      if (recs.length > 0) await this.log.appendMany(recs);
      await this.log.trimBefore(start);
      this.compactedBytes = this.log.diskBytes;
    })().finally(() => {
      this.compacting = null;
    });
    return this.compacting;
  }

  /** Whether the file has grown enough since the last compaction to rewrite it. */
  get wantsCompaction(): boolean {
    return this.compacting === null && this.log.diskBytes > Math.max(4 << 20, 2 * this.compactedBytes);
  }

  async close(): Promise<void> {
    await this.compacting?.catch(() => undefined);
    await this.log.close();
  }
}

function apply(states: Map<string, WebhookState>, rec: StoreRecord): void {
  if (rec.k === 'w') {
    const st = states.get(rec.w.id);
    if (st !== undefined) st.hook = rec.w;
    else
      states.set(rec.w.id, {
        hook: rec.w,
        below: null,
        settled: new Set(),
        dead: new Map(),
        requeued: new Map(),
      });
    return;
  }
  if (rec.k === 'x') {
    states.delete(rec.id);
    return;
  }
  const st = states.get(rec.w);
  if (st === undefined) return;
  switch (rec.k) {
    case 'ok':
      st.settled.add(rec.e);
      st.requeued.delete(rec.e);
      break;
    case 'dead':
      st.settled.add(rec.d.event.id);
      st.requeued.delete(rec.d.event.id);
      st.dead.set(rec.d.event.id, rec.d);
      break;
    case 're':
      for (const ev of rec.evs) {
        st.dead.delete(ev.id);
        st.settled.delete(ev.id);
        st.requeued.set(ev.id, ev);
      }
      break;
    case 'low':
      if (st.below === null || rec.below > st.below) st.below = rec.below;
      break;
  }
}

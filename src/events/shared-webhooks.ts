/**
 * Webhooks in multi-node mode: every node serves the webhook API from Redis
 * (webhook-store-redis.ts), so a webhook created on any node applies to all of them, and
 * exactly one node at a time delivers every webhook, from the one stream of events that
 * spans every node (event-stream-redis.ts).
 *
 * - Delivering node: the holder of the lease `events:deliver` (leases.ts, with a fencing
 *   token). Every node tries to take it every LEASE_RENEW_MS; the holder renews it. It
 *   delivers only while its own monotonic clock says Redis confirmed the lease less than
 *   LEASE_TTL_MS - LEASE_MARGIN_MS ago (counted from when the confirming request was sent),
 *   so a node frozen or cut off stops sending before another can take the lease. Its marks
 *   (delivered, dead, low) are fenced by the token.
 * - Taking over: the new holder loads every webhook's marks and sends again every event of
 *   the stream not marked delivered or dead, in order (delivery.ts's queues), then follows
 *   the stream. An event whose 2xx came just before the old holder lost the lease (or died)
 *   may come twice: receivers deduplicate on the id, as on one node.
 * - Changes from any node (create, delete, redeliver) bump `webhooks:version`; the holder
 *   looks every SYNC_MS and applies them. `pending` and `lastError` of `GET /v1/webhooks`
 *   are what the holder last published (every STATS_MS); `delivered` counts all time.
 * - Retention of the stream: the holder trims it hourly to what is newer than the
 *   retention or still needed by a webhook.
 */
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome } from '../outcome.js';
import type { DispatchEvent } from '../protocol.js';
import { LEASE_TTL_MS, type Leases, leaseProven } from '../shared/leases.js';
import type { DeadEvent } from './delivery.js';
import { eventIdBefore } from './event-id.js';
import type { RedisEventStream } from './event-stream-redis.js';
import type { Send } from './http-sender.js';
import {
  type CreatedWebhook,
  webhookNotFound as notFound,
  type WebhookApi,
  type WebhookInput,
  type WebhookOptions,
  type WebhookView,
} from './webhook-api.js';
import { createdAnswer, newWebhook } from './webhook-create.js';
import { type LiveDeps, type LiveWebhook, liveWebhook, pendingFor } from './webhook-live.js';
import { directSenders, type SenderPool } from './webhook-sender.js';
import type { StoredWebhook, WebhookState } from './webhook-store.js';
import {
  DELIVERY_LEASE,
  type FencedWrite,
  type PublishedStats,
  type RedisWebhookStore,
} from './webhook-store-redis.js';
import { WorkerSenders } from './worker-senders.js';

/** How often the holder renews the lease and the others try to take it. */
export const LEASE_RENEW_MS = 2_000;
/** How often the holder looks for changes made on other nodes. */
const SYNC_MS = 500;
/** How often the holder publishes pending counts and compacts its marks. */
const STATS_MS = 1_000;
const PAGE = 500;

/** What the shared webhooks work with. */
export interface SharedWebhookDeps {
  stream: RedisEventStream;
  store: RedisWebhookStore;
  leases: Leases;
  /** This node's id, as written in the lease. */
  nodeId: string;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Replaces HTTP in tests. */
  send?: Send;
}

/** See the module comment. One per node in multi-node mode. */
export class SharedWebhooks implements WebhookApi {
  private deliverer: Deliverer | null = null;
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private stopLease: CancelTimer | null = null;
  private leasing = false;
  private closed = false;
  /** A failure to reach Redis was logged (once per outage). */
  private reported = false;
  /** Every deliverer's senders: on a worker thread (worker-senders.ts), or `send` in tests. */
  private readonly senders: SenderPool;

  constructor(
    private readonly d: SharedWebhookDeps,
    private readonly opts: WebhookOptions,
  ) {
    this.senders =
      d.send !== undefined
        ? directSenders(d.send)
        : new WorkerSenders(
            {
              timeoutMs: opts.timeoutMs,
              allowPrivate: opts.allowPrivate,
              maxSockets: opts.maxInFlight,
              nice: opts.threadNice ?? 0,
            },
            d.log,
            d.metrics,
          );
    d.metrics.webhookPendingSource = () => this.deliverer?.pending() ?? [];
  }

  /** Starts competing for the delivery lease. */
  start(): void {
    this.stopLease = every(this.d.clock, LEASE_RENEW_MS, () => void this.tend());
    void this.tend();
  }

  /** Whether this node delivers now (lease confirmed recently enough). */
  delivers(): boolean {
    return this.deliverer !== null && leaseProven(this.confirmedAt, this.d.clock.monotonic());
  }

  private async tend(): Promise<void> {
    if (this.leasing || this.closed) return;
    this.leasing = true;
    const { leases, nodeId, clock, log } = this.d;
    const sentAt = clock.monotonic();
    try {
      if (this.deliverer !== null) {
        if (await leases.renew(DELIVERY_LEASE, nodeId, LEASE_TTL_MS)) {
          this.confirmedAt = sentAt;
          this.reported = false;
        } else {
          this.stopDelivering('the delivery lease passed to another node');
        }
        return;
      }
      const token = await leases.acquire(DELIVERY_LEASE, nodeId, LEASE_TTL_MS);
      this.reported = false;
      if (token === null || this.closed) return;
      this.confirmedAt = sentAt;
      const deliverer: Deliverer = new Deliverer(
        token,
        this.d,
        this.senders,
        this.opts,
        () => this.delivers(),
        () => {
          if (this.deliverer === deliverer)
            this.stopDelivering('the delivery lease is not confirmed or is held elsewhere');
        },
      );
      this.deliverer = deliverer;
      log.info({ token }, 'webhooks: this node delivers every webhook now');
      // Not awaited: renewals go on while the marks load and the backlog is read.
      deliverer.open().catch((err: Error) => {
        log.warn({ err: err.message }, 'webhooks: taking delivery over failed; retrying');
        if (this.deliverer === deliverer) this.stopDelivering('taking delivery over failed');
      });
    } catch (err) {
      // Redis unreachable: once the lease may have run out this node stops (and starts
      // afresh from the marks in Redis when it holds the lease again).
      if (this.deliverer !== null && !this.delivers()) this.stopDelivering('redis unreachable past the lease');
      if (!this.reported) log.warn({ err: (err as Error).message }, 'webhooks: delivery lease not confirmed; retrying');
      this.reported = true;
    } finally {
      this.leasing = false;
    }
  }

  private stopDelivering(reason: string): void {
    if (this.deliverer !== null) this.d.log.warn({ reason }, 'webhooks: this node stops delivering');
    this.deliverer?.stop();
    this.deliverer = null;
    this.confirmedAt = Number.NEGATIVE_INFINITY;
  }

  async create(input: WebhookInput): Promise<Outcome<CreatedWebhook>> {
    const { store, stream, clock, log } = this.d;
    const made = await newWebhook(input, {
      held: await store.count(),
      allowPrivate: this.opts.allowPrivate,
      now: clock.now(),
      // The newest id given by the stream so far.
      newestId: () => stream.lastId(),
    });
    if (!made.ok) return made;
    const hook = made.value;
    await store.create(hook);
    log.info({ webhook: hook.id, events: hook.events }, 'webhook created');
    return { ok: true, value: createdAnswer(hook) };
  }

  async list(): Promise<WebhookView[]> {
    const hooks = await this.d.store.hooks();
    const views = await this.views(hooks);
    return views.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async get(id: string): Promise<Outcome<WebhookView>> {
    const hook = await this.d.store.hook(id);
    if (hook === null) return notFound(id);
    const [view] = await this.views([hook]);
    return { ok: true, value: view as WebhookView };
  }

  private async views(hooks: StoredWebhook[]): Promise<WebhookView[]> {
    const { store } = this.d;
    const [stats, delivered, dead] = await Promise.all([
      store.stats(),
      store.deliveredCounts(),
      store.deadCounts(hooks.map((h) => h.id)),
    ]);
    return hooks.map((h, i) => ({
      id: h.id,
      url: h.url,
      events: h.events,
      createdAt: h.createdAt,
      pending: stats.get(h.id)?.pending ?? 0,
      delivered: delivered.get(h.id) ?? 0,
      dead: dead[i] ?? 0,
      lastError: stats.get(h.id)?.lastError ?? null,
    }));
  }

  async remove(id: string): Promise<Outcome<{ id: string; deleted: true }>> {
    if (!(await this.d.store.remove(id))) return notFound(id);
    this.d.log.info({ webhook: id }, 'webhook deleted');
    return { ok: true, value: { id, deleted: true } };
  }

  async dead(id: string): Promise<Outcome<DeadEvent[]>> {
    if ((await this.d.store.hook(id)) === null) return notFound(id);
    return { ok: true, value: await this.d.store.deadOf(id) };
  }

  async redeliver(id: string, ids?: string[]): Promise<Outcome<{ redelivered: number; ids: string[] }>> {
    const moved = await this.d.store.requeue(id, ids);
    if (moved === null) return notFound(id);
    return { ok: true, value: { redelivered: moved.length, ids: moved } };
  }

  /** Stops delivering and gives the lease up, so another node takes over at once. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopLease?.();
    const was = this.deliverer !== null;
    this.stopDelivering('shutdown');
    await this.senders.close();
    if (was) await this.d.leases.release(DELIVERY_LEASE, this.d.nodeId).catch(() => false);
  }
}

/** The delivery of every webhook by the lease holder; see the module comment. */
class Deliverer {
  private readonly live = new Map<string, LiveWebhook>();
  /** The newest stream id offered to the live webhooks. */
  private cursor: string | null = null;
  private version: string | null = null;
  private opened = false;
  private stopped = false;
  private busy = false;
  private again = false;
  private readonly timers: CancelTimer[] = [];
  private unsubscribe: () => void = () => {};
  private lastDelivered = new Map<string, number>();

  constructor(
    private readonly token: number,
    private readonly d: SharedWebhookDeps,
    private readonly senders: SenderPool,
    private readonly opts: WebhookOptions,
    private readonly mayDeliver: () => boolean,
    private readonly lost: () => void,
  ) {}

  pending(): Array<[string, number, number]> {
    return [...this.live].map(([id, l]) => [id, l.delivery.pendingCount, l.delivery.inMemoryCount]);
  }

  /** Loads every webhook's marks, puts their unsettled events back into delivery and follows the stream. */
  async open(): Promise<void> {
    const { store, stream, log } = this.d;
    this.version = await store.version();
    const states = await store.states();
    if (this.stopped) return;
    let recovered = 0;
    for (const st of states.values()) this.live.set(st.hook.id, this.liveOf(st));
    const starts = [...states.values()].map(scanStart);
    if (starts.length === 0) this.cursor = await stream.lastId();
    else {
      const from = starts.reduce(earlier);
      this.cursor = from;
      for await (const ev of stream.scan(from)) {
        if (this.stopped) return;
        for (const st of states.values()) {
          if (!pendingFor(st, ev)) continue;
          const l = this.live.get(st.hook.id) as LiveWebhook;
          if (!l.delivery.wants(ev.type)) continue;
          l.delivery.offer(ev);
          recovered++;
        }
        this.cursor = ev.id;
      }
    }
    for (const st of states.values()) {
      const l = this.live.get(st.hook.id) as LiveWebhook;
      for (const ev of st.requeued.values()) l.delivery.restore(ev);
    }
    this.opened = true;
    log.info({ webhooks: this.live.size, pending: recovered }, 'webhooks: delivery taken over');
    this.unsubscribe = stream.subscribe(() => this.kick());
    const { clock } = this.d;
    this.timers.push(every(clock, SYNC_MS, () => this.kick()));
    this.timers.push(every(clock, STATS_MS, () => void this.publish()));
    this.timers.push(every(clock, 60 * 60 * 1000, () => void this.retention()));
    void this.retention();
    this.kick();
  }

  private liveOf(st: WebhookState): LiveWebhook {
    const { clock, log, metrics, store } = this.d;
    const deps: LiveDeps = {
      clock,
      log,
      metrics,
      opts: this.opts,
      mayDeliver: () => {
        if (this.mayDeliver()) return true;
        // Frozen or cut off past the lease: nothing more from this node (a new holder sends it).
        queueMicrotask(this.lost);
        return false;
      },
      senders: this.senders,
    };
    const marks = {
      delivered: (id: string, ev: DispatchEvent) =>
        void store.delivered(this.token, id, ev.id).then(this.checked, this.failed),
      dead: (id: string, dead: DeadEvent) => void store.dead(this.token, id, dead).then(this.checked, this.failed),
    };
    // Past the in-memory bound, pending events are read back from the stream, as a take-over
    // finds them (against the marks loaded with `st`: only this holder has settled any since).
    const backlog = {
      read: (after: string | null, limit: number) => this.d.stream.read(after, limit),
      isPending: (ev: DispatchEvent) => pendingFor(st, ev),
    };
    const l = liveWebhook(st.hook, deps, marks, backlog);
    for (const dead of st.dead.values()) l.delivery.deadEvents.set(dead.event.id, dead);
    return l;
  }

  private checked = (w: FencedWrite): void => {
    if (w !== 'stale' || this.stopped) return;
    this.lost();
  };

  private failed = (err: Error): void => {
    // The event is sent again by the next holder: at least once still holds.
    this.d.log.error({ err: err.message }, 'webhooks: could not record a delivery in redis');
  };

  private kick(): void {
    if (this.stopped || !this.opened) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.pump()
      .catch((err: Error) => this.d.log.warn({ err: err.message }, 'webhooks: reading the event stream failed'))
      .finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Applies changes made on other nodes, then offers the new events of the stream. */
  private async pump(): Promise<void> {
    const version = await this.d.store.version();
    if (version !== this.version) {
      this.version = version;
      await this.sync();
    }
    for (;;) {
      if (this.stopped) return;
      const page = await this.d.stream.read(this.cursor, PAGE);
      for (const ev of page) {
        for (const l of this.live.values()) {
          if (l.hook.after === null || ev.id > l.hook.after) l.delivery.offer(ev);
        }
        this.cursor = ev.id;
      }
      if (page.length < PAGE) return;
    }
  }

  /** Webhooks created or deleted, and events redelivered, on any node. */
  private async sync(): Promise<void> {
    const states = await this.d.store.states();
    if (this.stopped) return;
    for (const [id, l] of this.live) {
      if (states.has(id)) continue;
      l.delivery.stop();
      l.sender.close();
      this.live.delete(id);
    }
    for (const st of states.values()) {
      let l = this.live.get(st.hook.id);
      if (l === undefined) {
        // New: catch up from its creation to where the others are, then it follows with them.
        const fresh = this.liveOf(st);
        const from = scanStart(st);
        if (this.cursor !== null && (from === null || from < this.cursor)) {
          for await (const ev of this.d.stream.scan(from)) {
            if (ev.id > this.cursor) break;
            if (pendingFor(st, ev)) fresh.delivery.offer(ev);
          }
        }
        if (this.stopped) {
          fresh.delivery.stop();
          fresh.sender.close();
          return;
        }
        this.live.set(st.hook.id, fresh);
        l = fresh;
      }
      const requeued = [...st.requeued.values()];
      const dead = requeued.filter((ev) => l.delivery.deadEvents.has(ev.id)).map((ev) => ev.id);
      if (dead.length > 0) l.delivery.redeliver(dead);
      for (const ev of requeued) l.delivery.restore(ev);
    }
  }

  /** Publishes pending counts and last errors, and compacts each webhook's marks. */
  private async publish(): Promise<void> {
    if (this.stopped || !this.mayDeliver()) return;
    const { store } = this.d;
    const stats = new Map<string, PublishedStats>();
    const compact: Array<Promise<FencedWrite>> = [];
    for (const [id, l] of this.live) {
      stats.set(id, { pending: l.delivery.pendingCount, lastError: l.delivery.lastError });
      // Every event before the oldest pending one (or before everything offered) is settled.
      const below = l.delivery.oldestPending ?? (this.cursor === null ? null : `${this.cursor}~`);
      if (below !== null && this.lastDelivered.get(id) !== l.delivery.delivered + l.delivery.deadEvents.size) {
        this.lastDelivered.set(id, l.delivery.delivered + l.delivery.deadEvents.size);
        compact.push(store.compact(this.token, id, below));
      }
    }
    try {
      await store.publishStats(stats);
      for (const w of await Promise.all(compact)) this.checked(w);
    } catch (err) {
      this.failed(err as Error);
    }
  }

  /** Trims the stream to the retention, keeping every event a webhook still needs. */
  private async retention(): Promise<void> {
    if (this.stopped || !this.mayDeliver()) return;
    let keepFrom: string | null = null;
    for (const l of this.live.values()) {
      const p = l.delivery.oldestPending;
      if (p !== null && (keepFrom === null || p < keepFrom)) keepFrom = p;
    }
    await this.d.stream
      .trim(this.d.clock.now() - this.opts.retentionMs, keepFrom)
      .catch((err: Error) => this.d.log.error({ err: err.message }, 'event stream retention failed'));
  }

  /** Stops every delivery (attempts in flight are abandoned: the next holder sends them again). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe();
    for (const t of this.timers) t();
    for (const l of this.live.values()) {
      l.delivery.stop();
      l.sender.close();
    }
    this.live.clear();
  }
}

/**
 * The id after which a scan must start to find every event still pending for `st`
 * (exclusive; null: from the oldest kept).
 */
function scanStart(st: WebhookState): string | null {
  let from = st.hook.after;
  if (st.below !== null) {
    // `below` is either an event id (pending from it on, inclusive) or `<id>~` (settled up to `<id>`).
    const b = st.below.endsWith('~') ? st.below.slice(0, -1) : eventIdBefore(st.below);
    if (b !== null && b !== '' && (from === null || b > from)) from = b;
  }
  return from;
}

/** The earlier of two scan starts (null: from the oldest kept, earliest of all). */
function earlier(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  if (a < b) return a;
  return b;
}

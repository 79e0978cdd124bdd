/**
 * Prometheus metrics of one node. Each server instance owns its own registry so that
 * several servers can live in one test process without clashing names.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Every metric the node exports on `/metrics`, grouped by the layer that updates it. */
export class Metrics {
  readonly registry = new Registry();

  // gateway
  readonly connections = new Gauge({
    name: 'fieldtrack_connections',
    help: 'Open WebSocket connections by endpoint',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });
  readonly connectionsClosed = new Counter({
    name: 'fieldtrack_connections_closed_total',
    help: 'Closed WebSocket connections by endpoint and reason',
    labelNames: ['endpoint', 'reason'] as const,
    registers: [this.registry],
  });
  readonly messages = new Counter({
    name: 'fieldtrack_messages_total',
    help: 'Client messages received by endpoint and type',
    labelNames: ['endpoint', 'type'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'fieldtrack_errors_total',
    help: 'Error answers sent, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly ackLatency = new Histogram({
    name: 'fieldtrack_ack_latency_seconds',
    help: 'Time from receiving a client message to sending its answer, by type',
    labelNames: ['type'] as const,
    // Fine between 1 and 10 ms, where a healthy node's answers fall (a durable write and a
    // send): a change of a millisecond or two there is what an operator needs to see.
    buckets: [
      0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
      2.5,
    ],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'fieldtrack_auth_failures_total',
    help: 'Refused upgrades and HTTP requests, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly slowConsumersDropped = new Counter({
    name: 'fieldtrack_slow_consumers_dropped_total',
    help: 'Safety consoles disconnected because they did not read fast enough',
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'fieldtrack_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly loadShed = new Counter({
    name: 'fieldtrack_load_shed_total',
    help: 'Pings and batches refused at once with rate_limited because the node had too many unanswered (MAX_FIXES_IN_FLIGHT), by message type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  readonly shareStreams = new Gauge({
    name: 'fieldtrack_share_streams',
    help: 'Open customer tracking streams (/t/<token>/stream) on this node',
    registers: [this.registry],
  });
  readonly etaRouted = new Counter({
    name: 'fieldtrack_eta_route_total',
    help: 'ETAs the router (ROUTER_URL) answered with a route',
    registers: [this.registry],
  });
  readonly etaFallbacks = new Counter({
    name: 'fieldtrack_eta_fallback_total',
    help: 'Router requests for an ETA that fell back to the straight line, by reason (timeout, error, status, no_route, bad_answer)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly approaching = new Counter({
    name: 'fieldtrack_order_approaching_total',
    help: 'order.approaching fired (once per order) on this node',
    registers: [this.registry],
  });

  readonly fixesOutsideWindow = new Counter({
    name: 'fieldtrack_fixes_outside_window_total',
    help: 'Fixes whose ts was outside the time window (ping refused, batch point left out, checkin/sos/depart ts replaced), by message type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  // actors
  /** Shared-state writes Redis refused because their fencing token was stale (another node holds the technician). */
  readonly staleWritesRefused = new Counter({
    name: 'fieldtrack_stale_writes_refused_total',
    help: 'Writes to shared state refused by Redis as stale (fencing token older than the lease), by what was written',
    labelNames: ['what'] as const,
    registers: [this.registry],
  });
  readonly alerts = new Counter({
    name: 'fieldtrack_alerts_raised_total',
    help: 'Alerts raised, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly openAlerts = new Gauge({
    name: 'fieldtrack_alerts_open',
    help: 'Alerts not yet resolved',
    registers: [this.registry],
  });
  readonly activeActors = new Gauge({
    name: 'fieldtrack_actors_active',
    help: 'Actors currently in memory, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  // telemetry
  readonly spoolRows = new Gauge({
    name: 'fieldtrack_archive_spool_rows',
    help: 'Rows in the local spool not yet archived (archive queue depth)',
    registers: [this.registry],
  });
  readonly spoolBytes = new Gauge({
    name: 'fieldtrack_archive_spool_bytes',
    help: 'Bytes of the local spool on disk',
    registers: [this.registry],
  });
  readonly rowsArchived = new Counter({
    name: 'fieldtrack_archive_rows_total',
    help: 'Rows written to the archive, by table',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });
  readonly insertLatency = new Histogram({
    name: 'fieldtrack_archive_insert_seconds',
    help: 'Duration of archive inserts',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly insertFailures = new Counter({
    name: 'fieldtrack_archive_insert_failures_total',
    help: 'Archive inserts that failed and will be retried',
    registers: [this.registry],
  });
  readonly oldestUnarchivedAge = new Gauge({
    name: 'fieldtrack_archive_oldest_unarchived_seconds',
    help: 'Age of the oldest spooled row not yet archived',
    registers: [this.registry],
  });
  readonly archiveWorkerDeaths = new Counter({
    name: 'fieldtrack_archive_worker_deaths_total',
    help: "Times the archive writer's batch worker thread died (the batch is read on the main thread instead; none lost)",
    registers: [this.registry],
  });
  readonly deadLetterRows = new Counter({
    name: 'fieldtrack_archive_dead_letter_rows_total',
    help: 'Rows the archive store refused for good (or that could not be encoded), moved to the dead-letter files, by table',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  // events for the dispatch system
  readonly eventsStored = new Counter({
    name: 'fieldtrack_events_total',
    help: 'Events for the dispatch system stored in the event log, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  /** Where the pending gauges read `[webhook, pending, held in memory]` at scrape time (set by the webhook service). */
  webhookPendingSource: () => Iterable<[string, number, number]> = () => [];
  readonly webhookPending = new Gauge({
    name: 'fieldtrack_webhook_pending',
    help: 'Events waiting to be delivered (not yet delivered nor dead), by webhook',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
    collect: () => {
      this.webhookPending.reset();
      for (const [webhook, n] of this.webhookPendingSource()) this.webhookPending.set({ webhook }, n);
    },
  });
  readonly webhookPendingInMemory = new Gauge({
    name: 'fieldtrack_webhook_pending_in_memory',
    help: 'Pending events held in memory, by webhook (at most WEBHOOK_MAX_PENDING_IN_MEMORY; the rest are read back from the event log or stream)',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
    collect: () => {
      this.webhookPendingInMemory.reset();
      for (const [webhook, , n] of this.webhookPendingSource()) this.webhookPendingInMemory.set({ webhook }, n);
    },
  });
  readonly webhookDelivered = new Counter({
    name: 'fieldtrack_webhook_delivered_total',
    help: 'Events delivered (2xx answer), by webhook',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });
  readonly webhookRetried = new Counter({
    name: 'fieldtrack_webhook_retried_total',
    help: 'Failed delivery attempts that will be retried, by webhook',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });
  readonly webhookDead = new Counter({
    name: 'fieldtrack_webhook_dead_total',
    help: 'Events given up on after the retry window (dead), by webhook',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });
  readonly webhookSenderRestarts = new Counter({
    name: 'fieldtrack_webhook_sender_restarts_total',
    help: 'Times the webhook sender worker thread stopped unexpectedly (crash, or no answer in time) and was started again; its attempts in flight were failed and are retried',
    registers: [this.registry],
  });
  readonly webhookLatency = new Histogram({
    name: 'fieldtrack_webhook_delivery_latency_seconds',
    help: 'Time from storing an event to its delivery (2xx answer), retries included',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600, 3600, 86400],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fieldtrack_' });
  }
}

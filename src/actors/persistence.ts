/**
 * The actors' persistence: durable writes of behaviour changes, the archive row (through
 * ArchiveWriter, fsynced in its spool) and then the journal record. The archive goes first
 * because it is the one that can refuse (SpoolFullError): a refused change must leave
 * nothing behind. Alert changes on the safety lane, which the archive never refuses, are
 * written to both at once.
 *
 * Spool-full policy (README): a change a client asked for (a ping, an order transition, an
 * operator's ack) is refused with `unavailable` and nothing changes. A change the server
 * or a technician in danger initiates (a deadline alert, an escalation, an SOS) is never
 * held back by a full archive: it is journaled and pushed, and only its archive row is
 * lost (logged). Safety first: no SOS is refused because analytics storage is full.
 *
 * Full or failing disk (README, "When the disk is full"): the same two lanes. Client data
 * (pings, order creation and transitions: policy 'refuse') is bulk: refused with
 * `unavailable` (never `internal`) when the archive or the journal cannot store it, and
 * refused before anything is written while the journal's disk reserve is partly given
 * away. Alerts (raised, escalated, acknowledged, resolved, cancelled) and the order marks
 * that go with server-raised alerts (policy 'tolerate') are safety writes: an archive that
 * cannot store them loses only the row, and the journal stores them with its reserve.
 * When even that fails, a change whose caller expects a refusal gets one; the others
 * throw `StorageUnavailableError`, which the registry answers as `unavailable`.
 *
 * Events for the dispatch system (README, "Events for the dispatch system"): an order
 * transition or an alert change that makes an event appends it to the event log in the
 * same step as its journal record (both fsyncs run together), and the caller answers only
 * once both settled, so an acked change has its event on disk. When the event log alone
 * fails, the change stands (it is journaled) and the event is retried until it lands.
 * With several nodes, `emit` also waits until the event is in the shared stream (`inStream`,
 * bounded while Redis does not answer: events/event-relay.ts), so an acked change's event
 * survives a kill -9 of the node right after the ack. Pings make no event and never wait.
 */
import type { Clock } from '../clock.js';
import type { EventDraft, EventLog } from '../events/event-log.js';
import type { Logger } from '../log.js';
import type { Refusal } from '../outcome.js';
import type { Alert, EventType, OrderState } from '../protocol.js';
import { LogClosedError } from '../storage/append-log.js';
import { JournalFullError, type Lane } from '../storage/journal.js';
import { type ArchiveRecord, type ArchiveWriter, type PingRecord, SpoolFullError } from '../telemetry/archive.js';
import type { LiveJournal, LiveRecord, OrderRecord } from './records.js';

/** What to do when the archive spool is full: refuse the change, or go on without the archive row. */
export type SpoolPolicy = 'refuse' | 'tolerate';

/** The refusal sent when the spool is over budget. */
export const SPOOL_FULL: Refusal = {
  ok: false,
  code: 'unavailable',
  msg: 'the node cannot store data right now; retry later',
};

/** The refusal sent when the disk cannot store a change (full or failing). */
export const NOT_STORED: Refusal = {
  ok: false,
  code: 'unavailable',
  msg: 'the node cannot store data right now (disk full or failing); retry later',
};

/**
 * Thrown for a change that could not be stored and whose caller has no refusal to give
 * (a deadline, an escalation, an SOS): the registry answers a waiting client with
 * `refusal` instead of `internal`, and retries a deadline shortly.
 */
export class StorageUnavailableError extends Error {
  readonly refusal: Refusal = NOT_STORED;
  constructor(cause: Error) {
    super(`change not stored: ${cause.message}`, { cause });
    this.name = 'StorageUnavailableError';
  }
}

/** Errors of the disk itself (no space, I/O error, a log closed by an earlier failure), as opposed to bugs. */
export function isStorageFailure(err: unknown): boolean {
  if (err instanceof JournalFullError || err instanceof LogClosedError) return true;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

/** One order event for the archive: the order's state at `ts`, with the position if known. */
export interface OrderEvent {
  state: OrderState;
  ts: number;
  lat?: number;
  lon?: number;
}

const stored = (): null => null;

/** How long a failed event append waits before it is tried again. */
const EVENT_RETRY_MS = 1000;

/** The event of an order transition: `data` holds the order as dispatch knows it, and where the technician was. */
export function orderEventDraft(rec: OrderRecord, event: OrderEvent): EventDraft {
  const data: Record<string, unknown> = {
    state: event.state,
    technician: rec.tech,
    scheduledAt: rec.scheduledAt,
    durationMin: rec.durationMin,
    lat: rec.lat,
    lon: rec.lon,
    radius: rec.radius,
  };
  if (event.lat !== undefined && event.lon !== undefined) data.at = { lat: event.lat, lon: event.lon };
  return { type: `order.${event.state}` as EventType, ts: event.ts, order: rec.id, tech: rec.tech, data };
}

/** The event of an alert change: `data` is the alert as consoles see it. */
export function alertEventDraft(alert: Alert, at: number, kind: 'opened' | 'changed'): EventDraft {
  return {
    type: kind === 'opened' ? 'alert.opened' : 'alert.changed',
    ts: at,
    tech: alert.tech,
    ...(alert.order !== undefined ? { order: alert.order } : {}),
    data: { ...alert },
  };
}

/** Archive-then-journal writer shared by the actors. */
export class Persistence {
  private closed = false;

  constructor(
    private readonly archive: ArchiveWriter,
    private readonly journal: LiveJournal,
    private readonly log: Logger,
    /** The event log; null where no events are wanted (benchmarks of the actors alone). */
    private readonly events: EventLog | null = null,
    private readonly clock: Clock | null = null,
    /**
     * Multi-node: resolves once stored event `id` is in the shared stream, or once the wait
     * gave up (Redis does not answer). Null: one node, the event log is the stream.
     */
    private readonly inStream: ((id: string) => Promise<void>) | null = null,
  ) {}

  /**
   * Stores an event; resolves once it is durable (and, with several nodes, in the shared
   * stream or given up on: `inStream`), or once its first attempt failed (it is then retried
   * in the background every second until it lands or the node stops).
   */
  emit(draft: EventDraft): Promise<void> {
    const events = this.events;
    if (events === null) return Promise.resolve();
    const inStream = this.inStream;
    const attempt = (): Promise<void> =>
      events.append(draft).then(
        (ev) => (inStream === null ? undefined : inStream(ev.id)),
        (err: Error) => {
          if (this.closed) return;
          this.log.error({ err, type: draft.type }, 'event log cannot store an event; retrying');
          const clock = this.clock;
          if (clock !== null) clock.setTimer(clock.now() + EVENT_RETRY_MS, () => void attempt());
        },
      );
    return attempt();
  }

  /** No more event retries (shutdown). */
  stop(): void {
    this.closed = true;
  }

  /** Archives accepted pings; a refusal when the spool or the disk is full. Pings are not journaled (see storage/journal.ts). */
  savePings(rows: PingRecord[]): Promise<Refusal | null> {
    if (!this.journal.acceptsBulk) return Promise.resolve(NOT_STORED);
    const records: ArchiveRecord[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) records[i] = { table: 'pings', row: rows[i] as PingRecord };
    return this.archiveRows(records, 'refuse', 'bulk');
  }

  /**
   * Persists an order's new state (and its archive event, when given); resolves after both
   * fsyncs. `emit`: the change is a transition (or an assignment) that dispatch hears of.
   */
  async saveOrder(
    rec: OrderRecord,
    event: OrderEvent | null,
    policy: SpoolPolicy,
    emit = event !== null,
  ): Promise<Refusal | null> {
    const lane: Lane = policy === 'tolerate' ? 'safety' : 'bulk';
    if (lane === 'bulk' && !this.journal.acceptsBulk) return NOT_STORED;
    if (event !== null) {
      const refused = await this.archiveRows(
        [
          {
            table: 'order_events',
            row: {
              order: rec.id,
              tech: rec.tech,
              state: event.state,
              ts: event.ts,
              lat: event.lat ?? null,
              lon: event.lon ?? null,
            },
          },
        ],
        policy,
        lane,
      );
      if (refused !== null) return refused;
    }
    // A journal refusal after the archive row landed leaves that row behind: the archive
    // then shows an event the live state never took (only when the disk fills in between).
    if (!emit || event === null) return this.journalPut({ k: 'o', o: rec }, lane, policy);
    const [journaled] = await Promise.all([
      this.journalPut({ k: 'o', o: rec }, lane, policy),
      this.emit(orderEventDraft(rec, event)),
    ]);
    return journaled;
  }

  /**
   * Persists an alert change that happened at `at`; resolves after both fsyncs. A safety
   * write ('tolerate') goes to the archive and the journal at once: the archive cannot
   * refuse it (a lost row is only logged), so nothing has to wait for the archive's verdict,
   * and an SOS is acked one fsync round sooner.
   */
  async saveAlert(
    alert: Alert,
    at: number,
    policy: SpoolPolicy,
    kind: 'opened' | 'changed' = 'changed',
  ): Promise<Refusal | null> {
    const archived = this.archiveRows(
      [
        {
          table: 'alert_events',
          row: {
            alert: alert.id,
            kind: alert.kind,
            level: alert.level,
            state: alert.state,
            tech: alert.tech,
            order: alert.order ?? null,
            ts: at,
            raisedAt: alert.ts,
            lat: alert.lat ?? null,
            lon: alert.lon ?? null,
            detail: JSON.stringify(alert.detail ?? {}),
          },
        },
      ],
      policy,
      'safety',
    );
    const emitted = (): Promise<void> => this.emit(alertEventDraft(alert, at, kind));
    if (policy === 'tolerate') {
      const [, journaled] = await Promise.all([
        archived,
        this.journalPut({ k: 'a', a: alert }, 'safety', policy),
        emitted(),
      ]);
      return journaled;
    }
    const refused = await archived;
    if (refused !== null) return refused;
    const [journaled] = await Promise.all([this.journalPut({ k: 'a', a: alert }, 'safety', policy), emitted()]);
    return journaled;
  }

  private async journalPut(rec: LiveRecord, lane: Lane, policy: SpoolPolicy): Promise<Refusal | null> {
    try {
      await this.journal.put(rec, lane);
      return null;
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      if (policy === 'refuse') return NOT_STORED;
      throw new StorageUnavailableError(err as Error);
    }
  }

  /** Archives `records`; null once stored, or the refusal its lane and policy call for. */
  private archiveRows(records: ArchiveRecord[], policy: SpoolPolicy, lane: Lane): Promise<Refusal | null> {
    // A plain promise chain, no async frame: every ping comes through here.
    return this.archive.write(records).then(stored, (err: unknown) => {
      const table = records[0]?.table;
      if (err instanceof SpoolFullError) {
        if (policy === 'refuse') return SPOOL_FULL;
        this.log.error({ table }, 'archive spool full: change kept in the journal, archive row lost');
        return null;
      }
      if (!isStorageFailure(err)) throw err;
      if (lane === 'bulk') return NOT_STORED;
      this.log.error({ err, table }, 'archive cannot store: safety change kept in the journal, archive row lost');
      return null;
    });
  }
}

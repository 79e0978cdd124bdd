/**
 * Durable writes of behaviour changes: the archive row (through ArchiveWriter, fsynced in
 * its spool) and then the journal record. The archive goes first because it is the one
 * that can refuse (SpoolFullError): a refused change must leave nothing behind.
 *
 * Spool-full policy (README): a change a client asked for (a ping, an order transition, an
 * operator's ack) is refused with `unavailable` and nothing changes. A change the server
 * or a technician in danger initiates (a deadline alert, an escalation, an SOS) is never
 * held back by a full archive: it is journaled and pushed, and only its archive row is
 * lost (logged). Safety first: no SOS is refused because analytics storage is full.
 */
import type { Logger } from '../log.js';
import type { Alert, OrderState } from '../protocol.js';
import { type ArchiveRecord, type ArchiveWriter, type PingRecord, SpoolFullError } from '../telemetry/archive.js';
import type { Refusal } from './api.js';
import type { Journal } from './journal.js';
import type { OrderRecord } from './records.js';

/** What to do when the archive spool is full: refuse the change, or go on without the archive row. */
export type SpoolPolicy = 'refuse' | 'tolerate';

/** The refusal sent when the spool is over budget. */
export const SPOOL_FULL: Refusal = {
  ok: false,
  code: 'unavailable',
  msg: 'the node cannot store data right now; retry later',
};

/** One order event for the archive: the order's state at `ts`, with the position if known. */
export interface OrderEvent {
  state: OrderState;
  ts: number;
  lat?: number;
  lon?: number;
}

/** Archive-then-journal writer shared by the actors. */
export class Store {
  constructor(
    private readonly archive: ArchiveWriter,
    private readonly journal: Journal,
    private readonly log: Logger,
  ) {}

  /** Archives accepted pings; a refusal when the spool is full. Pings are not journaled (see journal.ts). */
  async savePings(rows: PingRecord[]): Promise<Refusal | null> {
    return this.archiveRows(
      rows.map((row) => ({ table: 'pings', row })),
      'refuse',
    );
  }

  /** Persists an order's new state (and its archive event, when given); resolves after both fsyncs. */
  async saveOrder(rec: OrderRecord, event: OrderEvent | null, policy: SpoolPolicy): Promise<Refusal | null> {
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
      );
      if (refused !== null) return refused;
    }
    await this.journal.put({ k: 'o', o: rec });
    return null;
  }

  /** Persists an alert change that happened at `at`; resolves after both fsyncs. */
  async saveAlert(alert: Alert, at: number, policy: SpoolPolicy): Promise<Refusal | null> {
    const refused = await this.archiveRows(
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
    );
    if (refused !== null) return refused;
    await this.journal.put({ k: 'a', a: alert });
    return null;
  }

  private async archiveRows(records: ArchiveRecord[], policy: SpoolPolicy): Promise<Refusal | null> {
    try {
      await this.archive.write(records);
      return null;
    } catch (err) {
      if (!(err instanceof SpoolFullError)) throw err;
      if (policy === 'refuse') return SPOOL_FULL;
      this.log.error({ table: records[0]?.table }, 'archive spool full: change kept in the journal, archive row lost');
      return null;
    }
  }
}

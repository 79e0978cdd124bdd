/**
 * Event ids: `<13-digit milliseconds>-<4-digit sequence>`, e.g. `1767258000000-0003`.
 * Fixed width, so they sort as plain strings in the order the events were stored, which
 * is what `?after=` and `Last-Event-ID` rely on. The millisecond part is the storing
 * node's clock, never moved backwards: when the clock steps back or one millisecond
 * holds 10,000 events, the id takes the next millisecond instead.
 */

/** A well-formed event id. */
export const EVENT_ID_PATTERN = /^\d{13}-\d{4}$/;

const SEQ_LIMIT = 10_000;

/** The id of sequence `seq` in millisecond `ms`. */
export function formatEventId(ms: number, seq: number): string {
  return `${String(ms).padStart(13, '0')}-${String(seq).padStart(4, '0')}`;
}

/** The id just before `id` in the fixed-width order, or null for the first possible id. */
export function eventIdBefore(id: string): string | null {
  const [ms, seq] = id.split('-').map(Number) as [number, number];
  if (seq > 0) return formatEventId(ms, seq - 1);
  if (ms > 0) return formatEventId(ms - 1, SEQ_LIMIT - 1);
  return null;
}

/** Makes strictly increasing ids from a clock reading; `resume` continues after an id already used. */
export class EventIdGenerator {
  private ms = 0;
  private seq = -1;

  /** Continues after `last` (the newest id stored), so a restart never reuses an id. */
  resume(last: string | null): void {
    if (last === null) return;
    const [ms, seq] = last.split('-').map(Number) as [number, number];
    this.ms = ms;
    this.seq = seq;
  }

  /** The next id at clock time `now`. */
  next(now: number): string {
    if (now > this.ms) {
      this.ms = now;
      this.seq = 0;
    } else if (this.seq + 1 >= SEQ_LIMIT) {
      this.ms += 1;
      this.seq = 0;
    } else {
      this.seq += 1;
    }
    return formatEventId(this.ms, this.seq);
  }
}

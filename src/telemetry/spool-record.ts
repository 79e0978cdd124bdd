/**
 * The spool's log record: `[u32 LE rows][f64 LE spooledAt ms][msgpack array of ArchiveRecord]`.
 * The small header lets start-up count the backlog and the writer report the age of the
 * oldest unarchived row without decoding every record.
 *
 * One record holds every write of a group-commit round. Each write is packed on its own
 * when it arrives (so its exact size is known for the budget), and the record is made by
 * putting a msgpack array32 head with the total count in front of the writes' packed
 * elements: that decodes to the same flat array as packing all the rows at once, so
 * records written one per write (before rounds were coalesced) read back unchanged.
 */
import { pack, unpack } from 'msgpackr';
import type { ArchiveRecord } from './archive.js';

/** Bytes of the rows + spooledAt header. */
export const RECORD_HEADER = 12;
/** A msgpack array32 head: 0xdd and a u32 BE count. One fixed size keeps a write's cost exact. */
const ARRAY_HEAD = 5;
/** Bytes a record adds to its writes' packed rows. */
export const RECORD_OVERHEAD = RECORD_HEADER + ARRAY_HEAD;

/** One write's rows, packed as msgpack array elements without the array's head. */
export interface PackedWrite {
  rows: number;
  elements: Uint8Array;
}

/** Length of the msgpack array head at the start of `packed` (fixarray, array16 or array32). */
function arrayHeadLength(packed: Uint8Array): number {
  const b = packed[0]!;
  if (b >= 0x90 && b <= 0x9f) return 1;
  if (b === 0xdc) return 3;
  if (b === 0xdd) return 5;
  throw new TypeError(`expected a msgpack array, got type byte 0x${b.toString(16)}`);
}

/** Packs the rows of one write. */
export function packWrite(records: readonly ArchiveRecord[]): PackedWrite {
  const packed = pack(records);
  return { rows: records.length, elements: packed.subarray(arrayHeadLength(packed)) };
}

/** The writes of one group-commit round, made into one log record when the log flushes. */
export class RecordBuilder {
  rows = 0;
  /** Bytes of the writes' packed elements so far. */
  bytes = 0;
  private readonly parts: Uint8Array[] = [];

  constructor(readonly spooledAt: number) {}

  add(write: PackedWrite): void {
    this.parts.push(write.elements);
    this.rows += write.rows;
    this.bytes += write.elements.length;
  }

  /** The record's bytes: `RECORD_OVERHEAD + bytes` long. */
  build(): Buffer {
    const out = Buffer.allocUnsafe(RECORD_OVERHEAD + this.bytes);
    out.writeUInt32LE(this.rows, 0);
    out.writeDoubleLE(this.spooledAt, 4);
    out[RECORD_HEADER] = 0xdd;
    out.writeUInt32BE(this.rows, RECORD_HEADER + 1);
    let at = RECORD_OVERHEAD;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Rows in a record, from its header. */
export const recordRows = (record: Buffer): number => record.readUInt32LE(0);

/** When a record's first write was spooled (ms), from its header. */
export const recordSpooledAt = (record: Buffer): number => record.readDoubleLE(4);

/** The rows of a record. */
export function decodeRecord(record: Buffer): ArchiveRecord[] {
  return unpack(record.subarray(RECORD_HEADER)) as ArchiveRecord[];
}

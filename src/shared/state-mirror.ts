/**
 * The copy in shared storage of what a node's journal holds, per technician, so the node
 * that takes a technician over (its first node died) resumes with its state: every open
 * order and the technician's last position. Alerts are not here: the alert feed already
 * keeps every unresolved alert, atomically with the stream consoles read.
 *
 * Records are whole states, "last record per key wins", like the journal. Values are plain
 * JSON data; `load` checks them against their schemas (`record-schemas.ts`) and leaves out
 * what fails. Embedded mode has no mirror: there is one node.
 */
import type { MirroredOrder, MirroredPosition } from './record-schemas.js';

/** What a node loads when it takes technician `tech` over. */
export interface MirroredTech {
  /** Every open order of the technician, as last written. */
  readonly orders: MirroredOrder[];
  /** The technician's last position record, or null. */
  readonly position: MirroredPosition | null;
}

/** See the module comment. */
export interface StateMirror {
  /** Writes order `id` of `tech` (null: finished, drop it). Fire-and-forget, in order. */
  putOrder(tech: string, id: string, value: unknown): void;
  /** Writes `tech`'s last position record. Fire-and-forget, in order. */
  putPosition(tech: string, value: unknown): void;
  /** Everything mirrored of `tech`. */
  load(tech: string): Promise<MirroredTech>;
  /** The technician of order `id`, or null if it was never mirrored. */
  techOf(id: string): Promise<string | null>;
  /** Technicians with at least one open order. */
  busy(): Promise<string[]>;
  /**
   * Erases everything mirrored of `tech` (its data erased on request): its orders, last
   * position, busy mark and the order-to-technician index entries of its orders. Waits for
   * earlier writes first so none of them lands after the erase; rejects when Redis cannot
   * be reached.
   */
  eraseTech(tech: string): Promise<void>;
  /** Resolves once every write issued so far is stored (or failed). */
  flush(): Promise<void>;
  /** Waits for writes in flight and releases connections. */
  close(): Promise<void>;
}

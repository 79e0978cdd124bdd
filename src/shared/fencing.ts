/**
 * Fencing tokens: every technician lease comes with a number that grows each time the
 * lease passes to a different node (`Leases.acquire`). The node holding it writes that
 * number with every change it makes to shared state (alert feed, state mirror), and the
 * backend refuses, atomically with the write, any change carrying a smaller number than
 * the newest issued: a node that was frozen or cut off while another took its technician
 * over cannot change anything when it wakes, whatever it had queued.
 *
 * `FenceTokens` is this node's table of the tokens it holds, filled by the cluster link
 * and read by the shared-state backends when they issue a write. A technician with no
 * token here writes with 0, which only passes while no node ever held the technician.
 *
 * A refused write is reported with the record it carried (`StaleRecord`): the change was
 * acked by this node (journaled), so refusing it in Redis must not lose it. The cluster
 * (src/cluster/clustered-tracker.ts) sends such records to the node that holds the
 * technician, which merges them under its own token; this node never writes them again
 * itself under the token Redis refused.
 */
import type { Alert } from '../protocol.js';

/** Key of technician `tech`'s fence (the newest token issued and its holder), under the store's prefix. */
export function fenceKey(prefix: string, tech: string): string {
  return `${prefix}fence:tech:${tech}`;
}

/** What a refused (stale) write was, for the metric and the log. */
export type StaleWrite = 'alert' | 'order' | 'position';

/**
 * A write Redis refused as stale, with what it carried and the token it carried. An
 * order's `value` is null when the write removed a finished order.
 */
export type StaleRecord =
  | {
      readonly what: 'order';
      readonly tech: string;
      readonly token: number;
      readonly id: string;
      readonly value: unknown;
    }
  | { readonly what: 'alert'; readonly tech: string; readonly token: number; readonly alert: Alert }
  | { readonly what: 'position'; readonly tech: string; readonly token: number };

/** Thrown (as a rejection) by a shared write that Redis refused as stale. */
export class StaleWriteError extends Error {
  constructor(
    readonly what: StaleWrite,
    readonly tech: string,
  ) {
    super(`stale ${what} write of technician ${tech} refused: another node holds its lease`);
    this.name = 'StaleWriteError';
  }
}

/** See the module comment. One per node. */
export class FenceTokens {
  private readonly tokens = new Map<string, number>();

  /** `onStale` is told of every write the backend refused as stale (metrics). */
  constructor(private readonly onStale: (what: StaleWrite, tech: string) => void = () => {}) {}

  /** The token this node holds for `tech`, or 0. */
  get(tech: string): number {
    return this.tokens.get(tech) ?? 0;
  }

  /** Records the token this node was given for `tech`. */
  set(tech: string, token: number): void {
    this.tokens.set(tech, token);
  }

  /** Forgets `tech`'s token (lease lost or given up): later writes carry 0. */
  delete(tech: string): void {
    this.tokens.delete(tech);
  }

  /**
   * Told of every refused write with its record (set by the cluster, which gets the record
   * to the technician's owner; see the module comment).
   */
  onRefused: (r: StaleRecord) => void = () => {};

  /** A backend reports a refused write. */
  refused(r: StaleRecord): void {
    this.onStale(r.what, r.tech);
    this.onRefused(r);
  }
}

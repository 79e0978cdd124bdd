/**
 * In-process state mirror, shared by the nodes of one process (tests that run several
 * nodes on one manual clock). Same rules as the Redis mirror: open orders per technician,
 * the last position, the busy set and the order-to-technician index; values are copied
 * through JSON, as Redis stores them.
 */
import type { MirroredTech, StateMirror } from './state-mirror.js';

const copy = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** See the module comment. */
export class MemoryStateMirror implements StateMirror {
  private readonly orders = new Map<string, Map<string, unknown>>();
  private readonly positions = new Map<string, unknown>();
  private readonly orderTech = new Map<string, string>();

  putOrder(tech: string, id: string, value: unknown): void {
    const mine = this.orders.get(tech) ?? new Map<string, unknown>();
    this.orders.set(tech, mine);
    if (value === null) mine.delete(id);
    else mine.set(id, copy(value));
    if (mine.size === 0) this.orders.delete(tech);
    this.orderTech.set(id, tech);
  }

  putPosition(tech: string, value: unknown): void {
    this.positions.set(tech, copy(value));
  }

  async load(tech: string): Promise<MirroredTech> {
    return {
      orders: [...(this.orders.get(tech)?.values() ?? [])].map(copy),
      position: this.positions.get(tech) ?? null,
    };
  }

  async techOf(id: string): Promise<string | null> {
    return this.orderTech.get(id) ?? null;
  }

  async busy(): Promise<string[]> {
    return [...this.orders.keys()];
  }

  async eraseTech(tech: string): Promise<void> {
    this.orders.delete(tech);
    this.positions.delete(tech);
    for (const [id, t] of this.orderTech) if (t === tech) this.orderTech.delete(id);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * In-process state mirror, shared by the nodes of one process (tests that run several
 * nodes on one manual clock). Same rules as the Redis mirror: open orders per technician,
 * the last position, the busy set and the order-to-technician index; values are kept as
 * JSON text and read back through the same checks as the Redis mirror's.
 */
import {
  type MirroredOrder,
  mirroredOrderCheck,
  mirroredPositionCheck,
  type OnCorrupt,
  readRecord,
} from './record-schemas.js';
import type { MirroredTech, StateMirror } from './state-mirror.js';

/** See the module comment. */
export class MemoryStateMirror implements StateMirror {
  private readonly orders = new Map<string, Map<string, string>>();
  private readonly positions = new Map<string, string>();
  private readonly orderTech = new Map<string, string>();

  constructor(private readonly onCorrupt?: OnCorrupt) {}

  putOrder(tech: string, id: string, value: unknown): void {
    const mine = this.orders.get(tech) ?? new Map<string, string>();
    this.orders.set(tech, mine);
    if (value === null) mine.delete(id);
    else mine.set(id, JSON.stringify(value));
    if (mine.size === 0) this.orders.delete(tech);
    this.orderTech.set(id, tech);
  }

  putPosition(tech: string, value: unknown): void {
    this.positions.set(tech, JSON.stringify(value));
  }

  async load(tech: string): Promise<MirroredTech> {
    return {
      orders: [...(this.orders.get(tech)?.values() ?? [])]
        .map((raw) => readRecord(mirroredOrderCheck, raw, 'state mirror order', this.onCorrupt))
        .filter((o): o is MirroredOrder => o !== null),
      position: readRecord(mirroredPositionCheck, this.positions.get(tech), 'state mirror position', this.onCorrupt),
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

/**
 * In-process node bus: the nodes of one process (tests that run several nodes on one
 * manual clock) post to each other's inboxes through a shared `MemoryBusHub`. Messages
 * are copied through JSON, as they would be on the wire, and delivered on a later turn
 * of the event loop, in order per sender. A closed node's inbox drops what arrives, as a
 * dead node does.
 */
import type { BusMessage, NodeBus } from './node-bus.js';

/** The inboxes of every node of the process. */
export class MemoryBusHub {
  private readonly inboxes = new Map<string, (msg: BusMessage) => void>();

  /** A bus for node `nodeId` on this hub. */
  node(nodeId: string): NodeBus {
    const hub = this.inboxes;
    return {
      nodeId,
      send(node: string, msg: BusMessage): void {
        const copy = JSON.parse(JSON.stringify(msg)) as BusMessage;
        setImmediate(() => hub.get(node)?.(copy));
      },
      listen(onMessage: (msg: BusMessage) => void): void {
        hub.set(nodeId, onMessage);
      },
      async close(): Promise<void> {
        hub.delete(nodeId);
      },
    };
  }
}

/**
 * Node-to-node messages in Redis mode: each node has an inbox that the others can post to,
 * used to run a request where the state it touches lives (an operator's ack on node B of
 * an SOS whose actor runs on node A) and to reach a device connected to another node.
 * Messages are plain JSON objects; the receiver validates them (they cross a network).
 * Embedded mode has no bus: there is only one node.
 */

/** A message between nodes: a JSON object with a string `t` naming its kind. */
export type BusMessage = { readonly t: string } & Record<string, unknown>;

/** See the module comment. */
export interface NodeBus {
  /** This node's id (random per process), the address other nodes post to. */
  readonly nodeId: string;
  /** Posts `msg` to node `node`'s inbox; fire-and-forget, delivered in order per sender. */
  send(node: string, msg: BusMessage): void;
  /** Starts delivering this node's inbox to `onMessage`, in order, until `close`. */
  listen(onMessage: (msg: BusMessage) => void): void;
  /** Stops listening and releases connections. */
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy in front of a server, so a test can cut a browser's connections
 * while the server keeps running (and raise alerts meanwhile), or point the same address
 * at a restarted server. The browser only ever sees the proxy's origin. In front of a
 * Redis primary it can also hold back the replication stream to its replicas while every
 * connection stays up (`holdReplication`): replication lag, made on purpose.
 *
 * It can also stall: hold every byte in both directions, connections left open, so the
 * far side looks alive but does not answer (a Redis that hangs), then let it all through
 * in order (`release`) or drop it (`cut`); or stall only the one connection on which the
 * client sends some text (`stallWhen`), the others flowing on.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private stalled = false;
  /** Text that, sent by a client, stalls that client's connection (`stallWhen`). */
  private trigger: string | null = null;
  /** Connections stalled by the trigger, by their client socket. */
  private readonly stalledConnections = new Set<Socket>();
  /** Bytes held while stalled, in arrival order, with the socket they go to (null: its end). */
  private held: Array<[Socket, Buffer | null]> = [];
  private holdingReplication = false;
  /** Connections on which the client asked for Redis replication (PSYNC/SYNC): server side to client side. */
  private readonly replicationStreams = new Map<Socket, Socket>();
  /** Replication streams held (`holdReplication`): never resumed by the forwarding. */
  private readonly replicationHeld = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private targetPort: number,
  ) {}

  /** Listens on a free loopback port and forwards every connection to `targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Forwards new connections to another port (a restarted server). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Drops every open connection (and any bytes held) and refuses new ones until `restore`: the network is gone. */
  cut(): void {
    this.refusing = true;
    this.held = [];
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Holds every byte from now on, both ways, until `release` (or `cut`): the far side stops answering. */
  stall(): void {
    this.stalled = true;
  }

  /**
   * Stalls only the connection on which a client sends `text` (from that chunk on, both
   * ways), until `release`: one of a server's several connections to Redis stops answering.
   */
  stallWhen(text: string): void {
    this.trigger = text;
  }

  /** Sends what was held, in order, and forwards as usual again. */
  release(): void {
    this.stalled = false;
    this.trigger = null;
    this.stalledConnections.clear();
    const held = this.held;
    this.held = [];
    for (const [to, chunk] of held) {
      if (to.destroyed) continue;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
  }

  /** Whether the bytes held now contain `text` (a request that is stuck in the proxy). */
  holds(text: string): boolean {
    // Per destination, all held bytes together: a request may span chunks.
    const by = new Map<Socket, Buffer[]>();
    for (const [to, chunk] of this.held) {
      if (chunk === null) continue;
      const list = by.get(to) ?? [];
      list.push(chunk);
      by.set(to, list);
    }
    for (const list of by.values()) if (Buffer.concat(list).includes(text)) return true;
    return false;
  }

  /**
   * Stops passing on what a Redis primary sends on connections where the client asked for
   * replication (a replica's `PSYNC`), now and later, while those connections stay up: the
   * replica keeps its link and its role, and receives no more writes. Everything else
   * (clients, sentinels) flows as before.
   */
  holdReplication(): void {
    this.holdingReplication = true;
    for (const upstream of this.replicationStreams.keys()) this.hold(upstream);
  }

  private hold(upstream: Socket): void {
    this.replicationHeld.add(upstream);
    upstream.pause();
  }

  /** Lets connections through again. */
  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    const watchForReplication = (chunk: Buffer): void => {
      if (!/\b(P?SYNC)\r\n/i.test(chunk.toString('latin1'))) return;
      client.off('data', watchForReplication);
      this.replicationStreams.set(upstream, client);
      upstream.on('close', () => {
        this.replicationStreams.delete(upstream);
        this.replicationHeld.delete(upstream);
      });
      if (this.holdingReplication) this.hold(upstream);
    };
    client.on('data', watchForReplication);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      // By hand rather than pipe(), so that bytes can be held while stalled.
      a.on('data', (chunk: Buffer) => {
        if (a === client && this.trigger !== null && chunk.includes(this.trigger)) this.stalledConnections.add(client);
        if (this.stalled || this.stalledConnections.has(client)) this.held.push([b, chunk]);
        else if (!b.destroyed && !b.write(chunk)) {
          a.pause();
          b.once('drain', () => {
            if (!this.replicationHeld.has(a)) a.resume();
          });
        }
      });
      a.on('end', () => {
        if (this.stalled || this.stalledConnections.has(client)) this.held.push([b, null]);
        else b.end();
      });
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        if (a === client) this.stalledConnections.delete(client);
        b.destroy();
      });
    }
  }
}

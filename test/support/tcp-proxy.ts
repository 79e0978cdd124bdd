/**
 * A loopback TCP proxy in front of a server, so a test can cut a browser's connections
 * while the server keeps running (and raise alerts meanwhile), or point the same address
 * at a restarted server. The browser only ever sees the proxy's origin. In front of a
 * Redis primary it can also hold back the replication stream to its replicas while every
 * connection stays up (`holdReplication`): replication lag, made on purpose.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private holdingReplication = false;
  /** Connections on which the client asked for Redis replication (PSYNC/SYNC): server side to client side. */
  private readonly replicationStreams = new Map<Socket, Socket>();

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

  /** Drops every open connection and refuses new ones until `restore`: the network is gone. */
  cut(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /**
   * Stops passing on what a Redis primary sends on connections where the client asked for
   * replication (a replica's `PSYNC`), now and later, while those connections stay up: the
   * replica keeps its link and its role, and receives no more writes. Everything else
   * (clients, sentinels) flows as before.
   */
  holdReplication(): void {
    this.holdingReplication = true;
    for (const [upstream, client] of this.replicationStreams) this.hold(upstream, client);
  }

  private hold(upstream: Socket, client: Socket): void {
    upstream.unpipe(client);
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
      upstream.on('close', () => this.replicationStreams.delete(upstream));
      if (this.holdingReplication) this.hold(upstream, client);
    };
    client.on('data', watchForReplication);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
    }
  }
}

/**
 * A small typed client for PROTOCOL.md, for Node and TypeScript tools: the load
 * simulator, the tests and other teams' scripts. It connects with a token, numbers
 * requests with `seq`, matches each answer to its request, surfaces pushes as events and
 * can reconnect with backoff.
 */
import { EventEmitter } from 'node:events';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import type {
  AckAlertMsg,
  AckReply,
  BatchMsg,
  CheckinMsg,
  CompleteMsg,
  DepartMsg,
  DeviceMessage,
  DevicePush,
  ErrReply,
  PingMsg,
  ResolveAlertMsg,
  SafetyMessage,
  SafetyPush,
  ServerMessage,
  SosCancelMsg,
  SosMsg,
  StartMsg,
} from '../protocol.js';
import { WIRE_MSGPACK_OPTIONS } from '../protocol.js';

const packr = new Packr(WIRE_MSGPACK_OPTIONS);

/**
 * Drops keys whose value is undefined: msgpackr would encode them as an extension type,
 * which the server refuses like every other extension.
 */
function withoutUndefined<T extends object>(msg: T): T {
  for (const k of Object.keys(msg) as (keyof T)[]) if (msg[k] === undefined) delete msg[k];
  return msg;
}

/** The answer to one request: an `ack` or an `err`. */
export type Reply = AckReply | ErrReply;

/** Rejects requests still waiting when the connection closes. */
export class ConnectionClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    /** The socket error that preceded the close, if any (a 1006 is otherwise unexplained). */
    readonly after?: Error,
  ) {
    super(`connection closed (${code}${reason ? `: ${reason}` : ''})${after ? ` after ${after.message}` : ''}`);
    this.name = 'ConnectionClosedError';
  }
}

export interface ClientOptions {
  /** Server base URL, e.g. `ws://127.0.0.1:8080`. */
  url: string;
  token: string;
  /** Send the token as `?token=` instead of the Authorization header. */
  tokenInQuery?: boolean;
  /** Reconnect after an unexpected close, with exponential backoff. Default false. */
  reconnect?: boolean;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Local address to connect from (load tests spread over 127.0.0.x). */
  localAddress?: string;
  /** For `wss://`: extra trusted CA certificate(s) in PEM, e.g. a private CA or a self-signed server. */
  ca?: string | Buffer | (string | Buffer)[];
  /** For `wss://`: false accepts any certificate. Only for local testing; default true. */
  rejectUnauthorized?: boolean;
}

type Without<M> = M extends unknown ? Omit<M, 'seq'> : never;

interface Events<Push> {
  open: [];
  close: [code: number, reason: string];
  push: [msg: Push];
  /** An `err` with `seq: null` (the server could not read a frame). */
  unmatched: [msg: ErrReply];
  error: [err: Error];
}

/** Shared connection logic of both roles. */
abstract class BaseClient<Out extends { seq: number }, Push> extends EventEmitter<Events<Push>> {
  private ws: WebSocket | undefined;
  private nextSeq = 1;
  private readonly pending = new Map<number, (reply: Reply) => void>();
  private readonly failures = new Map<number, (err: Error) => void>();
  private closedByUs = false;
  private attempt = 0;
  private lastError: Error | undefined;

  protected constructor(
    private readonly path: string,
    readonly options: ClientOptions,
  ) {
    super();
  }

  /** Opens the connection; rejects if the server refuses it (status in the message). */
  connect(): Promise<void> {
    this.closedByUs = false;
    return new Promise((resolve, reject) => {
      const url = new URL(this.path, this.options.url);
      const headers: Record<string, string> = {};
      if (this.options.tokenInQuery) url.searchParams.set('token', this.options.token);
      else headers.authorization = `Bearer ${this.options.token}`;
      const ws = new WebSocket(url, {
        headers,
        perMessageDeflate: false,
        ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
        ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
        ...(this.options.rejectUnauthorized === undefined
          ? {}
          : { rejectUnauthorized: this.options.rejectUnauthorized }),
      });
      this.ws = ws;
      ws.binaryType = 'nodebuffer';
      let opened = false;
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade refused with HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.once('open', () => {
        opened = true;
        this.lastError = undefined;
        this.attempt = 0;
        this.emit('open');
        resolve();
      });
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) this.receive(packr.unpack(data) as ServerMessage);
      });
      ws.on('error', (err) => {
        this.lastError = err;
        // Before open the connect() promise reports it; after, only listeners that asked.
        if (!opened) reject(err);
        else if (this.listenerCount('error') > 0) this.emit('error', err);
      });
      ws.on('close', (code, reason) => this.closed(code, reason.toString()));
    });
  }

  /** Sends `msg` with the next `seq` and resolves with its `ack` or `err`. */
  request(msg: Without<Out>): Promise<Reply> {
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, resolve);
      this.failures.set(seq, reject);
      try {
        this.sendRaw(packr.pack(withoutUndefined({ ...msg, seq })));
      } catch (err) {
        this.pending.delete(seq);
        this.failures.delete(seq);
        reject(err as Error);
      }
    });
  }

  /** Sends raw bytes or text (tests of malformed input). */
  sendRaw(data: Buffer | string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw new ConnectionClosedError(1006, 'not connected');
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Closes for good (no reconnect) and resolves when the socket is closed. */
  close(code = 1000): Promise<void> {
    this.closedByUs = true;
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      ws.close(code);
    });
  }

  private receive(msg: ServerMessage): void {
    if (msg.t === 'ack' || msg.t === 'err') {
      if (msg.seq === null) {
        this.emit('unmatched', msg as ErrReply);
        return;
      }
      const resolve = this.pending.get(msg.seq);
      this.pending.delete(msg.seq);
      this.failures.delete(msg.seq);
      resolve?.(msg);
      return;
    }
    this.emit('push', msg as Push);
  }

  private closed(code: number, reason: string): void {
    const failure = new ConnectionClosedError(code, reason, this.lastError);
    for (const reject of this.failures.values()) reject(failure);
    this.pending.clear();
    this.failures.clear();
    this.emit('close', code, reason);
    if (this.options.reconnect && !this.closedByUs) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const min = this.options.minReconnectDelayMs ?? 250;
    const max = this.options.maxReconnectDelayMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    setTimeout(() => {
      if (this.closedByUs) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay).unref();
  }
}

/** A technician's device on `/v1/device`. */
export class DeviceClient extends BaseClient<DeviceMessage, DevicePush> {
  constructor(options: ClientOptions) {
    super('/v1/device', options);
  }
  ping(p: Omit<PingMsg, 't' | 'seq'>): Promise<Reply> {
    return this.request({ t: 'ping', ...p });
  }
  batch(pts: BatchMsg['pts']): Promise<Reply> {
    return this.request({ t: 'batch', pts });
  }
  depart(order: string, ts?: number): Promise<Reply> {
    return this.request({ t: 'depart', order, ...(ts === undefined ? {} : { ts }) } as Without<DepartMsg>);
  }
  checkin(c: Omit<CheckinMsg, 't' | 'seq'>): Promise<Reply> {
    return this.request({ t: 'checkin', ...c });
  }
  start(order: string): Promise<Reply> {
    return this.request({ t: 'start', order } as Without<StartMsg>);
  }
  complete(order: string): Promise<Reply> {
    return this.request({ t: 'complete', order } as Without<CompleteMsg>);
  }
  sos(s: Omit<SosMsg, 't' | 'seq'>): Promise<Reply> {
    return this.request({ t: 'sos', ...s });
  }
  sosCancel(incident: string): Promise<Reply> {
    return this.request({ t: 'sos_cancel', incident } as Without<SosCancelMsg>);
  }
}

/** A safety console on `/v1/safety`. */
export class SafetyClient extends BaseClient<SafetyMessage, SafetyPush> {
  constructor(options: ClientOptions) {
    super('/v1/safety', options);
  }
  ack(id: string): Promise<Reply> {
    return this.request({ t: 'ack', id } as Without<AckAlertMsg>);
  }
  resolve(id: string, note?: string): Promise<Reply> {
    return this.request({ t: 'resolve', id, ...(note === undefined ? {} : { note }) } as Without<ResolveAlertMsg>);
  }
}

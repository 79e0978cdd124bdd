/**
 * The console's `/v1/safety` connection: token in `?token=` (browsers cannot set headers
 * on a WebSocket), binary MessagePack frames, `seq`-matched requests, and reconnection
 * with backoff. Close codes decide what happens next (README, Protocol decisions):
 * 4001 means the token expired, so it stops and asks for a new one instead of looping;
 * everything else (1001 shutdown, 4002 slow consumer, a lost network) reconnects, and
 * the snapshot sent on every connect replaces the list so nothing missed stays missed.
 */
import { type Alert, CloseCode, type ServerMessage } from '../../protocol.js';
import type { Codec } from './wire.js';

/** What the status bar shows. `live` starts when the snapshot has arrived, not at open. */
export type LinkState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  /** Disconnected; the next attempt is at `at` (Date.now() time). */
  | { kind: 'retrying'; at: number; why: string }
  /** Given up: the operator has to sign in again. */
  | { kind: 'stopped'; why: string };

/** The answer to an `ack` or `resolve`. */
export type Reply = { t: 'ack' } | { t: 'err'; code: string; msg: string };

/** What the server's HTTP side says about the token, asked after a failed upgrade. */
export type TokenVerdict = { kind: 'ok' } | { kind: 'refused'; msg: string } | { kind: 'unreachable'; msg: string };

export interface LinkOptions {
  /** Base URL with the ws: or wss: scheme of the page's own origin. */
  url: string;
  token: string;
  codec: Codec;
  /**
   * Asks the server whether the token is good. A browser sees a refused upgrade (401,
   * 403) only as a closed socket, the same as a server that is down, so the link asks.
   */
  checkToken(): Promise<TokenVerdict>;
  onState(state: LinkState): void;
  onSnapshot(alerts: Alert[]): void;
  onAlert(alert: Alert): void;
  minDelayMs?: number;
  maxDelayMs?: number;
  requestTimeoutMs?: number;
}

interface Pending {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One operator's live alert feed. */
export class SafetyLink {
  private ws: WebSocket | undefined;
  private stopped = true;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private state: LinkState = { kind: 'connecting' };

  constructor(private readonly options: LinkOptions) {}

  /** Connects, and keeps reconnecting until `stop` or a token problem. */
  start(): void {
    this.stopped = false;
    this.open();
  }

  /** Closes for good (sign-out). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000, 'signed out');
    this.failPending('signed out');
  }

  /** Skips the backoff wait (the operator pressed "Reconnect now"). */
  retryNow(): void {
    if (this.stopped || this.state.kind !== 'retrying') return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /** Sends `ack` or `resolve` and resolves with the server's answer; rejects if the connection drops first. */
  request(msg: { t: 'ack'; id: string } | { t: 'resolve'; id: string; note?: string }): Promise<Reply> {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('not connected; try again once the console is live'));
    }
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error('no answer from the server within 10 s'));
      }, this.options.requestTimeoutMs ?? 10_000);
      this.pending.set(seq, { resolve, reject, timer });
      ws.send(this.options.codec.encode({ ...msg, seq }));
    });
  }

  private setState(state: LinkState): void {
    this.state = state;
    this.options.onState(state);
  }

  private open(): void {
    this.setState({ kind: 'connecting' });
    const url = new URL('/v1/safety', this.options.url);
    url.searchParams.set('token', this.options.token);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event: MessageEvent<unknown>) => {
      if (this.ws === ws && event.data instanceof ArrayBuffer) this.receive(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // an old socket, replaced or stopped on purpose
      this.ws = undefined;
      this.failPending('connection lost before the server answered; check the alert and retry');
      if (!this.stopped) void this.closed(event.code, event.reason, opened);
    };
  }

  private async closed(code: number, reason: string, opened: boolean): Promise<void> {
    if (code === CloseCode.tokenExpired) {
      this.giveUp('Your token expired. Sign in again with a new safety token.');
      return;
    }
    if (code === CloseCode.operatorConnectionLimit) {
      // Retrying cannot help until one of this operator's other consoles is closed.
      this.giveUp(`This operator has too many consoles open (${reason}). Close one, then sign in again.`);
      return;
    }
    if (!opened) {
      const verdict = await this.options.checkToken();
      if (this.stopped) return;
      if (verdict.kind === 'refused') {
        this.giveUp(`Sign-in refused: ${verdict.msg}`);
        return;
      }
      this.schedule(verdict.kind === 'unreachable' ? 'server unreachable' : 'connection refused');
      return;
    }
    this.schedule(describeClose(code, reason));
  }

  private giveUp(why: string): void {
    this.stopped = true;
    this.setState({ kind: 'stopped', why });
  }

  /** Exponential backoff with jitter, so a room of consoles does not reconnect in lockstep. */
  private schedule(why: string): void {
    const min = this.options.minDelayMs ?? 500;
    const max = this.options.maxDelayMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.setState({ kind: 'retrying', at: Date.now() + delay, why });
  }

  private receive(frame: ArrayBuffer): void {
    let msg: ServerMessage;
    try {
      msg = this.options.codec.decode(frame) as ServerMessage;
    } catch {
      return; // not ours to repair; the next snapshot is the source of truth
    }
    if (msg === null || typeof msg !== 'object') return;
    switch (msg.t) {
      case 'snapshot':
        this.attempt = 0;
        this.options.onSnapshot(msg.alerts);
        this.setState({ kind: 'live' });
        break;
      case 'alert':
        this.options.onAlert(msg.alert);
        break;
      case 'ack':
      case 'err': {
        if (msg.seq === null) return;
        const waiting = this.pending.get(msg.seq);
        if (waiting === undefined) return;
        this.pending.delete(msg.seq);
        clearTimeout(waiting.timer);
        waiting.resolve(msg.t === 'ack' ? { t: 'ack' } : { t: 'err', code: msg.code, msg: msg.msg });
        break;
      }
    }
  }

  private failPending(why: string): void {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(why));
    }
    this.pending.clear();
  }
}

function describeClose(code: number, reason: string): string {
  switch (code) {
    case CloseCode.goingAway:
      return 'the server restarted';
    case CloseCode.slowConsumer:
      return 'the console fell behind';
    case 1006:
      return 'connection lost';
    default:
      return `connection closed (${code}${reason ? `: ${reason}` : ''})`;
  }
}

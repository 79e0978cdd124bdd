/**
 * One WebSocket endpoint: upgrade with token check, then per frame: binary-only,
 * decode, rate limit, validate, hand the typed message to the behaviour, answer with
 * exactly one `ack` or `err` carrying the client's `seq`. Outgoing messages go through
 * one send path that watches the socket's buffered amount, so a client that does not
 * read is dropped (4002) instead of growing server memory or stalling anyone else.
 */

import { type Clock, type Deadline, DeadlineQueue } from '../clock.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AckExtras, Outcome } from '../outcome.js';
import { CloseCode, ErrorCode, MAX_FRAME_BYTES, type Role, type ServerMessage } from '../protocol.js';
import type { Admission } from './admission.js';
import { extractToken, type Principal, type TokenVerifier } from './auth.js';
import { closeCodeLabel } from './close-label.js';
import { decodeFrame, encodeAck, encodeMessage, encodeShared, RefusalFrames } from './codec.js';
import type { FixLane } from './fix-lane.js';
import { writeHttpError } from './http.js';
import type { InflightTracker } from './inflight.js';
import { type LoadShedder, SHEDDABLE } from './load-shed.js';
import type { Validated } from './messages.js';
import { peekTypeAndSeq } from './msgpack-scan.js';
import { discardOutbox, flushOutbox, queueFrame, writeNow } from './outbox.js';
import { RateLimiter } from './rate-limit.js';
import type { TemplatedApp, WebSocket } from './uws.js';

/** Per-connection state kept by uWS as the socket's user data. */
export interface Connection {
  readonly principal: Principal;
  readonly endpoint: string;
  readonly remote: string;
  readonly openedAt: number;
  readonly limiter: RateLimiter;
  /** `batch` points budget; made on the first message that spends points. */
  points?: RateLimiter;
  /** Undecodable frames in a row. */
  garbageInARow: number;
  messages: number;
  /** Set as soon as the socket is closing: nothing may be sent on it after that. */
  closed: boolean;
  /** Why the server closed it, for the close log line. */
  closeReason?: string;
  /** When its token's `exp` passes (see `registerSocketEndpoint`); set on open. */
  expiry?: Deadline<WebSocket<Connection>>;
  /** What `EndpointBehaviour.attach` did, undone on close; set on open. */
  attachment?: Attachment;
  /** Frames waiting for this turn's corked write (outbox.ts). */
  outbox?: Buffer[];
}

/** A connection attached to its behaviour (one object, not a closure each: there is one per device). */
export interface Attachment {
  /** Undoes the attach; called once, on close. */
  detach(): void;
}

/** The attachment of a connection refused at attach time: nothing to undo. */
export const NOT_ATTACHED: Attachment = { detach() {} };

/** What makes an endpoint differ: who may use it, how its messages are checked and handled. */
export interface EndpointBehaviour<M extends { t: string; seq: number }> {
  readonly path: '/v1/device' | '/v1/safety';
  readonly roles: readonly Role[];
  validate(frame: Record<string, unknown>, now: number): Validated<M>;
  /** Points a valid message spends from the connection's point budget (BATCH_POINTS_*); absent means none. */
  pointsOf?(msg: M): number;
  handle(principal: Principal, msg: M): Promise<Outcome<AckExtras>>;
  /** After the upgrade: attaches the connection to the behaviour; returns what undoes it on close. */
  attach(ws: WebSocket<Connection>): Attachment;
}

/** Shared collaborators of every endpoint. */
export interface EndpointDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  verifier: TokenVerifier;
  inflight: InflightTracker;
  /** True once shutdown began: new upgrades are refused with 503. */
  isShuttingDown(): boolean;
  /** Every open connection, for shutdown. */
  connections: Set<WebSocket<Connection>>;
  /** Connection ceilings and upgrade rate, shared by every endpoint; absent means no ceilings. */
  admission?: Admission;
  /** Decides when pings and batches are refused at once (load-shed.ts); absent means no shedding. */
  shedder?: LoadShedder;
  /** Where pings and batches wait so other frames go first (fix-lane.ts); absent means handled on arrival. */
  lane?: FixLane;
}

const SHED_MSG = 'node busy: keep the fixes and send them later';
/** The answer to a shed ping or batch, encoded once but for its seq and retryMs. */
const SHED_REFUSAL = new RefusalFrames({ code: ErrorCode.rateLimited, msg: SHED_MSG });

/** Message types the per-connection message rate limit lets through even past its budget. */
const NEVER_RATE_LIMITED: ReadonlySet<string> = new Set(['sos', 'sos_cancel', 'ack', 'resolve']);

/** Closes `ws` from the server side with `code` and a short reason; safe to call twice. */
export function closeConnection(ws: WebSocket<Connection>, code: CloseCode, reason: string): void {
  const conn = ws.getUserData();
  if (conn.closed) return;
  flushOutbox(ws);
  conn.closed = true;
  conn.closeReason = reason;
  ws.end(code, reason);
}

/**
 * Pushes one message (an alert, a snapshot, a notice, an `sos_status`), unless the socket
 * is closing. Pushes are written at once rather than with the turn's batched answers
 * (outbox.ts). Past the buffered-amount limit the client is dropped with 4002: it must
 * reconnect and take a fresh snapshot rather than silently miss messages.
 */
export function sendMessage(ws: WebSocket<Connection>, msg: ServerMessage, deps: EndpointDeps, shared = false): void {
  if (ws.getUserData().closed) return;
  sendFrame(ws, shared ? encodeShared(msg) : encodeMessage(msg), deps, true);
}

/**
 * Sends an encoded frame on an open socket: `now`, or batched with the socket's other
 * frames of this turn (answers to pings and batches, refusals); see sendMessage.
 */
function sendFrame(ws: WebSocket<Connection>, frame: Buffer, deps: EndpointDeps, now: boolean): void {
  const conn = ws.getUserData();
  if (conn.closed) return;
  if (ws.getBufferedAmount() > deps.config.SAFETY_MAX_BUFFERED_BYTES) {
    deps.metrics.slowConsumersDropped.inc();
    closeConnection(ws, CloseCode.slowConsumer, 'slow consumer: too much unread data');
    return;
  }
  if (now) writeNow(ws, frame);
  else queueFrame(ws, frame);
}

/**
 * Answers a handled message: its `ack` (a plain one written without the encoder), or its
 * `err`. `now`: every answer but a fix's is written at once (an SOS, a check-in, an order
 * transition, a console's ack), ahead of the batched acks of pings.
 */
function answer(
  ws: WebSocket<Connection>,
  deps: EndpointDeps,
  seq: number,
  outcome: Outcome<AckExtras>,
  now: boolean,
): void {
  if (!outcome.ok) {
    refuse(ws, deps, seq, outcome.code, outcome.msg, outcome.extras, now);
    return;
  }
  sendFrame(
    ws,
    isEmpty(outcome.value) ? encodeAck(seq) : encodeMessage({ ...outcome.value, t: 'ack', seq }),
    deps,
    now,
  );
}

function isEmpty(extras: AckExtras): boolean {
  for (const _ in extras) return false;
  return true;
}

/** A message type's counter and answer-time histogram. */
interface MessageStats {
  received: { inc(): void };
  latency: { observe(seconds: number): void };
}

function refuse(
  ws: WebSocket<Connection>,
  deps: EndpointDeps,
  seq: number | null,
  code: ErrorCode,
  msg: string,
  extras?: Record<string, unknown>,
  now = false,
): void {
  deps.metrics.errors.inc({ code });
  sendFrame(ws, encodeMessage({ ...extras, t: 'err', seq, code, msg }), deps, now);
}

/** Registers `behaviour` on `app` at its path. */
export function registerSocketEndpoint<M extends { t: string; seq: number }>(
  app: TemplatedApp,
  behaviour: EndpointBehaviour<M>,
  deps: EndpointDeps,
): void {
  const { config, log, metrics } = deps;
  const endpoint = behaviour.path;
  // The token's exp is enforced on open connections too: each is closed with 4001 when its
  // exp passes, even if it sends nothing. One queue of deadlines for every connection of
  // the endpoint rather than a timer each (a connection is cancelled from it on close).
  const expiries = new DeadlineQueue<WebSocket<Connection>>(deps.clock, (ws) => {
    closeConnection(ws, CloseCode.tokenExpired, 'token expired');
  });

  // Labelled metric children, looked up once per message type instead of hashing labels per message.
  const stats = new Map<string, MessageStats>();
  const statsOf = (type: string): MessageStats => {
    let s = stats.get(type);
    if (s === undefined) {
      s = { received: metrics.messages.labels(endpoint, type), latency: metrics.ackLatency.labels(type) };
      stats.set(type, s);
    }
    return s;
  };

  /** Refuses a ping or batch at once rather than queueing it: the device keeps the fixes for a later batch. */
  const shed = (ws: WebSocket<Connection>, shedder: LoadShedder, type: string, seq: number): void => {
    metrics.loadShed.inc({ type });
    metrics.errors.inc({ code: ErrorCode.rateLimited });
    const retryMs = shedder.retryMs();
    if (RefusalFrames.fits(seq, retryMs)) sendFrame(ws, SHED_REFUSAL.encode(seq, retryMs), deps, false);
    else refuse(ws, deps, seq, ErrorCode.rateLimited, SHED_MSG, { retryMs });
  };

  /**
   * Counts a message as in flight (for shutdown, and for the shedder when it is a fix);
   * returns the one call that settles it once answered, with how long it took.
   */
  const beginMessage = (type: string, started: number): (() => void) => {
    const stats = statsOf(type);
    const fixShedder = SHEDDABLE.has(type) ? deps.shedder : undefined;
    deps.inflight.begin();
    fixShedder?.begin();
    return () => {
      const took = performance.now() - started;
      stats.latency.observe(took / 1000);
      fixShedder?.end(took);
      deps.inflight.end();
    };
  };

  const onFrame = (ws: WebSocket<Connection>, frame: ArrayBuffer, isBinary: boolean): void => {
    const conn = ws.getUserData();
    if (conn.closed) return;
    if (!isBinary) {
      closeConnection(ws, CloseCode.unsupportedData, 'text frames are not accepted; send binary MessagePack');
      return;
    }
    const now = deps.clock.now();
    if (now >= conn.principal.expiresAt) {
      closeConnection(ws, CloseCode.tokenExpired, 'token expired');
      return;
    }
    conn.messages += 1;
    const allowed = conn.limiter.take(now);
    const bytes = new Uint8Array(frame);
    const lane = deps.lane;
    const shedder = deps.shedder;
    if (allowed && (lane !== undefined || shedder?.saturated)) {
      const peeked = peekTypeAndSeq(bytes);
      if (peeked !== null && SHEDDABLE.has(peeked.t)) {
        // A node that sheds answers a ping or batch from its first bytes: decoding and
        // validating up to a thousand points it refuses anyway is what would sink it.
        if (shedder?.shouldShed(performance.now())) {
          shed(ws, shedder, peeked.t, peeked.seq);
          return;
        }
        if (lane === undefined) {
          handleFrame(ws, bytes, now, allowed, true, null);
          return;
        }
        // uWS reuses the frame's memory once this callback returns: the lane keeps a copy.
        const copy = bytes.slice();
        const settle = beginMessage(peeked.t, performance.now());
        lane.push(() => {
          if (conn.closed || !handleFrame(ws, copy, now, allowed, true, settle)) settle();
        });
        return;
      }
    }
    handleFrame(ws, bytes, now, allowed, false, null);
  };

  /**
   * Decodes, validates and hands one frame to the behaviour, which answers it. `admitted`:
   * the shedder already took this frame. `settle`: the frame is already counted in flight
   * (queued in the lane), and this settles it. Returns whether the frame went to the
   * behaviour, which then settles it; false when it was refused here.
   */
  const handleFrame = (
    ws: WebSocket<Connection>,
    bytes: Uint8Array,
    now: number,
    allowed: boolean,
    admitted: boolean,
    settle: (() => void) | null,
  ): boolean => {
    const conn = ws.getUserData();
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) {
      conn.garbageInARow += 1;
      metrics.messages.inc({ endpoint, type: 'invalid' });
      if (conn.garbageInARow >= config.GARBAGE_DISCONNECT_AFTER) {
        closeConnection(ws, CloseCode.policyViolation, 'too many undecodable frames');
        return false;
      }
      refuse(ws, deps, null, ErrorCode.badRequest, decoded.reason);
      return false;
    }
    conn.garbageInARow = 0;
    const validated = behaviour.validate(decoded.value, now);
    // A distress call or an operator's answer to one is never refused for rate: it passes
    // even past the budget. It still counts as refused in a row, so a device flooding SOS
    // is disconnected below rather than answered forever.
    const critical = validated.ok && NEVER_RATE_LIMITED.has(validated.value.t);
    if (!allowed && (!critical || conn.limiter.refusedInARow >= config.RATE_LIMIT_DISCONNECT_AFTER)) {
      if (conn.limiter.refusedInARow >= config.RATE_LIMIT_DISCONNECT_AFTER) {
        closeConnection(ws, CloseCode.policyViolation, 'sustained rate limit abuse');
        return false;
      }
      const seq = validated.ok ? validated.value.seq : validated.seq;
      refuse(ws, deps, seq, ErrorCode.rateLimited, `more than ${config.RATE_LIMIT_PER_SEC} messages per second`, {
        retryMs: conn.limiter.retryMs(now),
      });
      return false;
    }
    if (validated.outOfWindow !== undefined) {
      // A refusal for the window is always a ping's (other types keep the message): a bounded label.
      const type = validated.ok ? validated.value.t : 'ping';
      metrics.fixesOutsideWindow.inc({ type }, validated.outOfWindow);
    }
    if (!validated.ok) {
      metrics.messages.inc({ endpoint, type: 'invalid' });
      refuse(ws, deps, validated.seq, ErrorCode.badRequest, validated.msg);
      return false;
    }
    const msg = validated.value;
    const points = behaviour.pointsOf?.(msg) ?? 0;
    if (points > 0) {
      conn.points ??= new RateLimiter(config.BATCH_POINTS_PER_SEC, config.BATCH_POINTS_BURST, now);
      if (!conn.points.take(now, points)) {
        // Refused whole and at once: the device keeps these points and sends them after retryMs.
        refuse(
          ws,
          deps,
          msg.seq,
          ErrorCode.rateLimited,
          `more than ${config.BATCH_POINTS_PER_SEC} batch points per second`,
          { retryMs: conn.points.retryMs(now, points) },
        );
        return false;
      }
    }
    const shedder = deps.shedder;
    if (shedder !== undefined && !admitted && SHEDDABLE.has(msg.t) && shedder.shouldShed(performance.now())) {
      shed(ws, shedder, msg.t, msg.seq);
      return false;
    }
    statsOf(msg.t).received.inc();
    // One settlement per message, no promise chained on it: this runs for every ping.
    const settled = settle ?? beginMessage(msg.t, performance.now());
    // Safety work keeps the lane's slices short until it is answered (fix-lane.ts).
    const calm = critical ? deps.lane?.urgent() : undefined;
    const answered =
      calm === undefined
        ? settled
        : () => {
            calm();
            settled();
          };
    // The counters are settled even if answering throws: a leaked count would leave the
    // shedder refusing pings for good and a shutdown waiting for an answer that never comes.
    behaviour.handle(conn.principal, msg).then(
      (outcome) => {
        try {
          answer(ws, deps, msg.seq, outcome, !SHEDDABLE.has(msg.t));
        } finally {
          answered();
        }
      },
      (err: unknown) => {
        try {
          log.error({ err, endpoint, sub: conn.principal.sub, type: msg.t }, 'message handler failed');
          refuse(ws, deps, msg.seq, ErrorCode.internal, 'internal error', undefined, !SHEDDABLE.has(msg.t));
        } finally {
          answered();
        }
      },
    );
    return true;
  };

  app.ws<Connection>(endpoint, {
    maxPayloadLength: MAX_FRAME_BYTES,
    idleTimeout: config.IDLE_TIMEOUT_SEC,
    sendPingsAutomatically: true,
    // uWS would silently drop sends past maxBackpressure; ours is higher so that
    // sendMessage's own limit closes the socket first and nothing is lost unnoticed.
    maxBackpressure: config.SAFETY_MAX_BUFFERED_BYTES * 4,
    closeOnBackpressureLimit: 1,
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const token = extractToken(req.getHeader('authorization'), req.getQuery() ?? '');
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      // Everything below runs inside this handler, where uWS has corked the response: an
      // upgrade finished later, from a promise, can have the new socket shut down by uWS
      // (see jwt-hs256.ts). That is why the token check is synchronous.
      if (deps.isShuttingDown()) {
        writeHttpError(res, 503, ErrorCode.unavailable, 'server is shutting down');
        return;
      }
      const refusal = deps.admission?.admit(remote, deps.clock.now());
      if (refusal) {
        log.warn({ endpoint, remote, status: refusal.status }, 'upgrade refused: connection limit');
        const code = refusal.status === 503 ? ErrorCode.unavailable : ErrorCode.rateLimited;
        writeHttpError(res, refusal.status, code, refusal.msg);
        return;
      }
      const auth = deps.verifier.verify(token, behaviour.roles);
      if (!auth.ok) {
        deps.admission?.release(remote);
        metrics.authFailures.inc({ reason: auth.reason });
        log.warn({ endpoint, remote, status: auth.status, reason: auth.reason }, 'upgrade refused');
        writeHttpError(res, auth.status, ErrorCode.forbidden, auth.msg);
        return;
      }
      const conn: Connection = {
        principal: auth.principal,
        endpoint,
        remote,
        openedAt: deps.clock.now(),
        limiter: new RateLimiter(config.RATE_LIMIT_PER_SEC, config.RATE_LIMIT_BURST, deps.clock.now()),
        garbageInARow: 0,
        messages: 0,
        closed: false,
      };
      res.upgrade(conn, key, protocol, extensions, context);
    },
    open: (ws) => {
      const conn = ws.getUserData();
      deps.connections.add(ws);
      metrics.connections.inc({ endpoint });
      log.info(
        { endpoint, sub: conn.principal.sub, role: conn.principal.role, remote: conn.remote },
        'connection open',
      );
      conn.expiry = expiries.add(conn.principal.expiresAt, ws);
      conn.attachment = behaviour.attach(ws);
    },
    message: onFrame,
    close: (ws, code, message) => {
      const conn = ws.getUserData();
      conn.closed = true;
      discardOutbox(ws);
      if (conn.expiry !== undefined) expiries.cancel(conn.expiry);
      deps.connections.delete(ws);
      deps.admission?.release(conn.remote);
      metrics.connections.dec({ endpoint });
      const reason = conn.closeReason ?? (Buffer.from(message).toString() || 'closed by client');
      metrics.connectionsClosed.inc({ endpoint, reason: closeCodeLabel(code) });
      log.info(
        {
          endpoint,
          sub: conn.principal.sub,
          remote: conn.remote,
          code,
          reason,
          durationMs: deps.clock.now() - conn.openedAt,
          messages: conn.messages,
        },
        'connection closed',
      );
      conn.attachment?.detach();
    },
  });
}

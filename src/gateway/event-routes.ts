/**
 * The HTTP routes of the events for the dispatch system (PROTOCOL.md, role `dispatch`):
 * webhooks (`/v1/webhooks...`), the pull API (`GET /v1/events?after=&limit=`) and the
 * Server-Sent Events stream (`GET /v1/events/stream`). The routes check their input and
 * hand plain values to the webhook service and the event reader (src/events).
 *
 * The stream never buffers without bound: each connection keeps a cursor (the last id it
 * wrote) and reads after it (from the node's event log, or in multi-node mode from the
 * shared stream); while the socket cannot take more it stops writing and picks up from the
 * cursor when it drains, so a slow reader costs a cursor, not memory, and misses nothing.
 */
import { EVENT_ID_PATTERN as EVENT_ID } from '../events/event-id.js';
import type { EventReader } from '../events/event-reader.js';
import type { WebhookApi, WebhookInput } from '../events/webhook-api.js';
import type { Logger } from '../log.js';
import type { Outcome } from '../outcome.js';
import {
  ErrorCode,
  EVENTS_PAGE_DEFAULT,
  EVENTS_PAGE_MAX,
  EventTypes,
  Role,
  WEBHOOK_SECRET_MAX_LENGTH,
  WEBHOOK_SECRET_MIN_LENGTH,
  WEBHOOK_URL_MAX_LENGTH,
} from '../protocol.js';
import { extractToken } from './auth.js';
import { errorAnswer, type HttpAnswer, type HttpDeps, route, statusLine, writeHttpError } from './http.js';
import type { Checked } from './queries.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

const WEBHOOK_ID = /^wh_[A-Za-z0-9_-]{1,64}$/;
const HEARTBEAT_MS = 15_000;
const STREAM_BATCH = 500;

const badRequest = (msg: string) => errorAnswer(ErrorCode.badRequest, msg);

function fromOutcome<T>(outcome: Outcome<T>, status = 200): HttpAnswer {
  if (outcome.ok) return { status, json: outcome.value };
  return errorAnswer(outcome.code, outcome.msg);
}

/** Checks the body of `POST /v1/webhooks`. */
export function validateWebhookInput(body: unknown): Checked<WebhookInput> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('body must be a JSON object');
  const { url, events, secret } = body as Record<string, unknown>;
  if (typeof url !== 'string' || url.length === 0 || url.length > WEBHOOK_URL_MAX_LENGTH) {
    return fail(`field url: a string of 1-${WEBHOOK_URL_MAX_LENGTH} characters`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('field url: not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return fail('field url: must be http or https');
  if (!Array.isArray(events) || events.length === 0 || events.length > EventTypes.length) {
    return fail(`field events: a non-empty array of event types, or ["*"]`);
  }
  const types = [...new Set(events)];
  if (types.includes('*') && types.length > 1) return fail('field events: "*" stands alone');
  for (const t of types) {
    if (t !== '*' && !(EventTypes as readonly unknown[]).includes(t)) {
      return fail(`field events: unknown event type ${JSON.stringify(t).slice(0, 80)}`);
    }
  }
  if (
    secret !== undefined &&
    (typeof secret !== 'string' ||
      secret.length < WEBHOOK_SECRET_MIN_LENGTH ||
      secret.length > WEBHOOK_SECRET_MAX_LENGTH)
  ) {
    return fail(`field secret: a string of ${WEBHOOK_SECRET_MIN_LENGTH}-${WEBHOOK_SECRET_MAX_LENGTH} characters`);
  }
  return {
    ok: true,
    value: {
      url: parsed.href,
      events: types as string[],
      ...(secret !== undefined ? { secret: secret as string } : {}),
    },
  };
}

function fail(msg: string): { ok: false; msg: string } {
  return { ok: false, msg };
}

/** Reads `after` (an event id, `0` or absent: from the oldest kept). */
function afterParam(raw: string | null): Checked<string | null> {
  if (raw === null || raw === '' || raw === '0') return { ok: true, value: null };
  if (!EVENT_ID.test(raw)) return fail('after: an event id (13 digits, "-", 4 digits) or 0');
  return { ok: true, value: raw };
}

function limitParam(raw: string | null): Checked<number> {
  if (raw === null || raw === '') return { ok: true, value: EVENTS_PAGE_DEFAULT };
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > EVENTS_PAGE_MAX) return fail(`limit: a whole number 1-${EVENTS_PAGE_MAX}`);
  return { ok: true, value: n };
}

/** Open streams, so shutdown can end them. */
export interface EventStreams {
  closeAll(): void;
}

/** Registers the webhook, pull and stream routes; returns the open streams. */
export function registerEventRoutes(
  app: TemplatedApp,
  deps: HttpDeps,
  events: EventReader,
  webhooks: WebhookApi,
): EventStreams {
  const roles = [Role.dispatch] as const;
  const idOf = (raw: string): Checked<string> =>
    WEBHOOK_ID.test(raw) ? { ok: true, value: raw } : fail('webhook id: wh_ and up to 64 letters, digits, _ or -');

  route(app, 'post', '/v1/webhooks', { roles, body: true }, deps, async (call) => {
    const input = validateWebhookInput(call.body);
    if (!input.ok) return badRequest(input.msg);
    return fromOutcome(await webhooks.create(input.value), 201);
  });
  route(app, 'get', '/v1/webhooks', { roles }, deps, async () => ({
    status: 200,
    json: { webhooks: await webhooks.list() },
  }));
  route(app, 'get', '/v1/webhooks/:id', { roles, params: 1 }, deps, async (call) => {
    const id = idOf(call.params[0] as string);
    return id.ok ? fromOutcome(await webhooks.get(id.value)) : errorAnswer(ErrorCode.notFound, id.msg);
  });
  route(app, 'del', '/v1/webhooks/:id', { roles, params: 1 }, deps, async (call) => {
    const id = idOf(call.params[0] as string);
    return id.ok ? fromOutcome(await webhooks.remove(id.value)) : errorAnswer(ErrorCode.notFound, id.msg);
  });
  route(app, 'get', '/v1/webhooks/:id/dead', { roles, params: 1 }, deps, async (call) => {
    const id = idOf(call.params[0] as string);
    if (!id.ok) return errorAnswer(ErrorCode.notFound, id.msg);
    const dead = await webhooks.dead(id.value);
    return dead.ok ? { status: 200, json: { events: dead.value } } : fromOutcome(dead);
  });
  // The body is optional: `{ids:[...]}` redelivers those dead events, no body (or `{}`) all of them.
  route(app, 'post', '/v1/webhooks/:id/redeliver', { roles, params: 1, body: 'raw' }, deps, async (call) => {
    const id = idOf(call.params[0] as string);
    if (!id.ok) return errorAnswer(ErrorCode.notFound, id.msg);
    let ids: string[] | undefined;
    const text = call.raw?.toString('utf8').trim() ?? '';
    if (text !== '') {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return badRequest('body is not valid JSON');
      }
      const given = (body as { ids?: unknown } | null)?.ids;
      if (given !== undefined) {
        if (!Array.isArray(given) || given.some((x) => typeof x !== 'string' || !EVENT_ID.test(x))) {
          return badRequest('field ids: an array of event ids');
        }
        ids = given as string[];
      }
    }
    return fromOutcome(await webhooks.redeliver(id.value, ids));
  });

  route(app, 'get', '/v1/events', { roles }, deps, async (call) => {
    const after = afterParam(call.query.get('after'));
    if (!after.ok) return badRequest(after.msg);
    const limit = limitParam(call.query.get('limit'));
    if (!limit.ok) return badRequest(limit.msg);
    const page = await events.read(after.value, limit.value);
    // `next` is always given: the cursor to ask with next time (unchanged when nothing is new).
    return { status: 200, json: { events: page, next: page.at(-1)?.id ?? after.value ?? '0' } };
  });

  const streams = new Set<SseStream>();
  app.get('/v1/events/stream', (res, req) => {
    const token = extractToken(req.getHeader('authorization'), req.getQuery() ?? '');
    const lastEventId = req.getHeader('last-event-id');
    const query = new URLSearchParams(req.getQuery() ?? '');
    const state = { aborted: false, stream: null as SseStream | null };
    res.onAborted(() => {
      state.aborted = true;
      state.stream?.close();
    });
    void (async () => {
      const auth = deps.verifier.verify(token, roles);
      if (state.aborted) return;
      if (!auth.ok) {
        deps.metrics.authFailures.inc({ reason: auth.reason });
        res.cork(() => writeHttpError(res, auth.status, ErrorCode.forbidden, auth.msg));
        return;
      }
      // Resume after Last-Event-ID (what EventSource sends on reconnect), else after `?after=`;
      // with neither, only events stored from now on.
      const given = lastEventId !== '' ? lastEventId : query.get('after');
      let cursor: string | null;
      if (given === null) cursor = await events.newest();
      else {
        const after = afterParam(given);
        if (!after.ok) {
          res.cork(() => writeHttpError(res, 400, ErrorCode.badRequest, after.msg));
          return;
        }
        cursor = after.value;
      }
      res.cork(() => {
        res
          .writeStatus(statusLine(200))
          .writeHeader('content-type', 'text/event-stream; charset=utf-8')
          .writeHeader('cache-control', 'no-cache')
          .writeHeader('x-accel-buffering', 'no');
        res.write('retry: 2000\n\n');
      });
      const stream = new SseStream(res, events, cursor, deps.log, () => streams.delete(stream));
      state.stream = stream;
      streams.add(stream);
      stream.start();
    })().catch((err: unknown) => {
      deps.log.error({ err }, 'event stream failed');
      if (!state.aborted) res.cork(() => res.close());
    });
  });

  return {
    closeAll() {
      for (const s of [...streams]) s.end();
    },
  };
}

/** One Server-Sent Events connection; see the module comment. */
class SseStream {
  private closed = false;
  private busy = false;
  private again = false;
  private blocked = false;
  private unsubscribe: () => void = () => {};
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly res: HttpResponse,
    private readonly events: EventReader,
    private cursor: string | null,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {}

  start(): void {
    this.unsubscribe = this.events.subscribe(() => this.kick());
    this.res.onWritable(() => {
      this.blocked = false;
      this.kick();
      return true;
    });
    this.heartbeat = setInterval(() => {
      if (this.closed || this.blocked) return;
      this.res.cork(() => {
        if (!this.res.write(': keep-alive\n\n')) this.blocked = true;
      });
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    this.kick();
  }

  private kick(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    if (this.blocked) return;
    this.busy = true;
    this.drain()
      .catch((err: unknown) => {
        this.log.error({ err }, 'event stream read failed');
        this.end();
      })
      .finally(() => {
        this.busy = false;
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      this.again = false;
      const batch = await this.events.read(this.cursor, STREAM_BATCH);
      if (this.closed) return;
      if (batch.length > 0) {
        this.res.cork(() => {
          for (const ev of batch) {
            const ok = this.res.write(`id: ${ev.id}\ndata: ${JSON.stringify(ev)}\n\n`);
            this.cursor = ev.id;
            if (!ok) {
              // Written into uWS's buffer, but the socket is full: wait for onWritable.
              this.blocked = true;
              break;
            }
          }
        });
        if (this.blocked) return;
        continue;
      }
      if (!this.again) return;
    }
  }

  /** The client went away. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.onClose();
  }

  /** Ends the response (shutdown); the client reconnects with Last-Event-ID. */
  end(): void {
    if (this.closed) return;
    this.close();
    this.res.cork(() => this.res.end());
  }
}

/**
 * HTTP plumbing over uWS: a route wrapper that copies what it needs from the request
 * before the first await (uWS request objects die when the callback returns), checks the
 * token and role, reads a bounded JSON body, runs an async handler and answers JSON,
 * mapping protocol error codes to statuses. Handlers only see plain data.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { ErrorCode, type Role } from '../protocol.js';
import { extractToken, type Principal, type TokenVerifier } from './auth.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** What a handler gets: the request's parts, copied out of uWS. */
export interface HttpCall {
  params: string[];
  query: URLSearchParams;
  /** The caller, when the route requires a role. */
  principal?: Principal;
  /** Parsed JSON body, when the route reads one. */
  body?: unknown;
  /** The body's bytes, when the route reads it raw (`body: 'raw'`). */
  raw?: Buffer;
  /** The request headers the route asked for (`headers`), by lower-case name; '' when absent. */
  headers?: Record<string, string>;
}

/** What a handler answers: a JSON value, or ready text with its content type, and any extra headers. */
export type HttpAnswer = ({ status: number; json: unknown } | { status: number; text: string; contentType: string }) & {
  headers?: Readonly<Record<string, string>>;
};

export interface RouteOptions {
  /** Roles allowed; omitted for the unauthenticated operations routes. */
  roles?: readonly Role[];
  /** Whether the route reads a JSON body (`true`) or the body's bytes as they are (`'raw'`). */
  body?: boolean | 'raw';
  /** How many `:params` the pattern has. */
  params?: number;
  /** Request headers the handler needs, lower-case. */
  headers?: readonly string[];
  /**
   * Where the token is, for routes used by apps that cannot send it the usual way
   * (`Authorization: Bearer` or `?token=`, the default): from the authorization header, the
   * query string and the path parameters; undefined when there is none.
   */
  token?: (authorization: string, query: string, params: readonly string[]) => string | undefined;
}

export interface HttpDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  verifier: TokenVerifier;
  maxBodyBytes: number;
}

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  304: '304 Not Modified',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  410: '410 Gone',
  413: '413 Payload Too Large',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** The HTTP status line for `status`. */
export function statusLine(status: number): string {
  return statusLines[status] ?? `${status} Status`;
}

/** HTTP status of each protocol error code. */
export const statusOfCode: Record<ErrorCode, number> = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  outside_geofence: 409,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** An error answer `{code, msg}` with the status of `code` (or `status` when given). */
export function errorAnswer(code: ErrorCode, msg: string, status = statusOfCode[code]): HttpAnswer {
  return { status, json: { code, msg } };
}

/** Writes a JSON error `{code, msg}` response; the caller corks. */
export function writeHttpError(res: HttpResponse, status: number, code: ErrorCode, msg: string): void {
  res
    .writeStatus(statusLine(status))
    .writeHeader('content-type', 'application/json')
    .end(JSON.stringify({ code, msg }));
}

class BodyTooLarge extends Error {}

/** Collects the request body up to `limit` bytes; must be called before the handler returns. */
function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size > limit) {
        reject(new BodyTooLarge());
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(Buffer.from(chunk)));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

type Method = 'get' | 'put' | 'del' | 'post';

/** Registers `handler` for `method pattern` with auth, body reading and error mapping. */
export function route(
  app: TemplatedApp,
  method: Method,
  pattern: string,
  options: RouteOptions,
  deps: HttpDeps,
  handler: (call: HttpCall) => Promise<HttpAnswer> | HttpAnswer,
): void {
  app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
    const params = Array.from({ length: options.params ?? 0 }, (_, i) => req.getParameter(i) ?? '');
    const query = new URLSearchParams(req.getQuery() ?? '');
    const headers = options.headers ? Object.fromEntries(options.headers.map((h) => [h, req.getHeader(h)])) : undefined;
    const findToken = options.token ?? extractToken;
    const token = options.roles ? findToken(req.getHeader('authorization'), req.getQuery() ?? '', params) : undefined;
    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const body = options.body ? readBody(res, deps.maxBodyBytes) : undefined;
    body?.catch(() => {}); // handled below; avoid an unhandled rejection if auth fails first
    answer(res, state, pattern, deps, async () => {
      const call: HttpCall = { params, query, ...(headers ? { headers } : {}) };
      if (options.roles) {
        const auth = deps.verifier.verify(token, options.roles);
        if (!auth.ok) {
          deps.metrics.authFailures.inc({ reason: auth.reason });
          deps.log.warn({ route: pattern, status: auth.status, reason: auth.reason }, 'request refused');
          return errorAnswer(ErrorCode.forbidden, auth.msg, auth.status);
        }
        call.principal = auth.principal;
      }
      if (body) {
        let raw: Buffer;
        try {
          raw = await body;
        } catch {
          return errorAnswer(ErrorCode.badRequest, `body is larger than ${deps.maxBodyBytes} bytes`, 413);
        }
        if (options.body === 'raw') return handler({ ...call, raw });
        try {
          call.body = JSON.parse(raw.toString('utf8'));
        } catch {
          return errorAnswer(ErrorCode.badRequest, 'body is not valid JSON');
        }
      }
      return handler(call);
    });
  });
}

function answer(
  res: HttpResponse,
  state: { aborted: boolean },
  pattern: string,
  deps: HttpDeps,
  produce: () => Promise<HttpAnswer>,
): void {
  produce()
    .catch((err: unknown): HttpAnswer => {
      deps.log.error({ err, route: pattern }, 'HTTP handler failed');
      return errorAnswer(ErrorCode.internal, 'internal error');
    })
    .then((reply) => {
      deps.metrics.httpRequests.inc({ route: pattern, status: String(reply.status) });
      if (state.aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(reply.status));
        for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value);
        if ('json' in reply) {
          res.writeHeader('content-type', 'application/json').end(JSON.stringify(reply.json));
        } else {
          res.writeHeader('content-type', reply.contentType).end(reply.text);
        }
      });
    });
}

/**
 * The customer tracking link over HTTP (PROTOCOL.md, "Customer tracking link"):
 * - `POST /v1/orders/:id/share` (dispatch): `201 {url, token, expiresAt}`;
 *   `DELETE /v1/orders/:id/share` (dispatch): revokes the order's links, `200 {order, revokedAt}`;
 * - `GET /t/<token>`: the page for the customer's phone, in Chinese or English by
 *   `Accept-Language`; `GET /t/<token>/state`: the state as JSON; `GET /t/<token>/stream`:
 *   Server-Sent Events of the state on every change;
 * - `/share/...`: the page's stylesheet and browser modules, served from memory.
 * Unknown or malformed token `404`; revoked, expired, or finished more than
 * SHARE_LINGER_MIN ago `410`. A link token is not a JWT: every `/v1` route refuses it.
 * Every `/t/` answer carries the pages' CSP, `no-referrer` (the token is in the URL: tile
 * requests must not carry it away) and `no-store`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, Role, type ShareLink } from '../protocol.js';
import { GONE_EVENT, type OpenResult, type ShareHub, type ShareSink } from '../share/share-hub.js';
import { pickLanguage, SHARE_TEXTS, type ShareLanguage } from '../share/share-i18n.js';
import type { ShareLinks, TokenVerdict } from '../share/share-links.js';
import { type ConsoleSources, securityHeaders } from './console-routes.js';
import { errorAnswer, type HttpAnswer, type HttpDeps, route, statusLine } from './http.js';
import { pageCsp, type TileSettings } from './map-tiles.js';
import { checkId } from './queries.js';
import { StaticFiles } from './static-files.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

/** The customer page: its HTML template and the files under `/share/`. */
export interface SharePage {
  readonly template: string;
  readonly files: StaticFiles;
}

/** URL prefix of the page's files; the browser modules are under `/share/js/`. */
export const SHARE_ASSETS_PREFIX = '/share/';

/** Reads the customer page's files (the console's sources: same page folder and browser build). */
export function loadSharePage(sources: ConsoleSources): SharePage {
  if (!existsSync(join(sources.scripts, 'console', 'app', 'share', 'main.js'))) {
    throw new Error(`the customer page's browser build is missing in ${sources.scripts} (run npm run build)`);
  }
  const files = new StaticFiles();
  files.addFile('/share/share.css', join(sources.page, 'share.css'));
  files.addFile('/share/favicon.svg', join(sources.page, 'favicon.svg'));
  files.addTree('/share/js/', sources.scripts, ['.js']);
  return { template: readFileSync(join(sources.page, 'share.html.tmpl'), 'utf8'), files };
}

/** JSON safe inside an HTML data block (no `</script>`, no `<!--`). */
function jsonInHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/**
 * The page in `lang`: `{{name}}` placeholders get the escaped text of that name; `{{texts}}`
 * and `{{config}}` become JSON data blocks the browser module reads (never executed, so the
 * CSP's no-inline-script holds). `status` is `live`, `gone` or `unknown`: the last two show
 * their message with no script needed.
 */
export function renderSharePage(
  template: string,
  lang: ShareLanguage,
  status: 'live' | 'gone' | 'unknown',
  tiles: TileSettings | null,
): string {
  const texts = SHARE_TEXTS[lang];
  const message = status === 'gone' ? texts.gone : status === 'unknown' ? texts.notFound : texts.loading;
  const config = { status, tiles: tiles === null ? null : { url: tiles.url, attribution: tiles.attribution } };
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (name === 'texts') return jsonInHtml(texts);
    if (name === 'config') return jsonInHtml(config);
    if (name === 'message') return escapeHtml(message ?? '');
    if (name === 'status') return status;
    return escapeHtml(texts[name] ?? '');
  });
}

export interface ShareRouteDeps {
  links: ShareLinks;
  hub: ShareHub;
  /** SHARE_BASE_URL, or undefined: `http(s)://<Host>` of the request. */
  baseUrl: string | undefined;
  /** Whether the node serves TLS itself (for the link's scheme without SHARE_BASE_URL). */
  tls: boolean;
  tiles: TileSettings | null;
  /** The page, or why it could not be loaded (then `/t/<token>` answers 503 saying so). */
  page: SharePage | Error;
}

const GONE_MSG = 'this tracking link has expired or was revoked';
const UNKNOWN_MSG = 'no such tracking link';

/** The status and JSON body of a link that does not answer: unknown, dead, or not checkable now. */
function deadAnswer(v: { kind: 'unknown' } | { kind: 'gone' } | { kind: 'unavailable'; msg: string }): {
  status: number;
  body: string;
} {
  if (v.kind === 'unavailable')
    return { status: 503, body: JSON.stringify({ code: ErrorCode.unavailable, msg: v.msg }) };
  return v.kind === 'gone'
    ? { status: 410, body: JSON.stringify({ code: ErrorCode.notFound, msg: GONE_MSG }) }
    : { status: 404, body: JSON.stringify({ code: ErrorCode.notFound, msg: UNKNOWN_MSG }) };
}
const GONE = { kind: 'gone' } as const;

/** Registers the link routes (see the module comment). */
export function registerShareRoutes(app: TemplatedApp, deps: HttpDeps, d: ShareRouteDeps): void {
  const { links, hub } = d;
  const pageHeaders = securityHeaders(pageCsp(d.tiles));
  const privateHeaders = { ...pageHeaders, 'cache-control': 'no-store' };

  route(
    app,
    'post',
    '/v1/orders/:id/share',
    { roles: [Role.dispatch], params: 1, headers: ['host'] },
    deps,
    async (call): Promise<HttpAnswer> => {
      const id = checkId(call.params[0]!, 'order');
      if (!id.ok) return errorAnswer(ErrorCode.badRequest, id.msg);
      const made = await links.create(id.value);
      if (!made.ok) return errorAnswer(made.code, made.msg);
      const host = call.headers?.host ?? '';
      const base = (d.baseUrl ?? `${d.tls ? 'https' : 'http'}://${host}`).replace(/\/+$/, '');
      const { token, expiresAt } = made.value;
      return { status: 201, json: { url: `${base}/t/${token}`, token, expiresAt } satisfies ShareLink };
    },
  );

  route(app, 'del', '/v1/orders/:id/share', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return errorAnswer(ErrorCode.badRequest, id.msg);
    const revoked = await links.revoke(id.value);
    return revoked.ok ? { status: 200, json: revoked.value } : errorAnswer(revoked.code, revoked.msg);
  });

  /** The verdict on a token, down to the order: unknown, gone, unavailable, or live with its claims. */
  const judge = async (token: string): Promise<TokenVerdict> => {
    const v = await links.check(token);
    if (v.kind !== 'ok') return v;
    const answer = await hub.answer(v.claims.order, v.claims.exp);
    if (answer.live) return v;
    return answer.unavailable !== undefined ? { kind: 'unavailable', msg: answer.unavailable } : GONE;
  };

  route(app, 'get', '/t/:token', { params: 1, headers: ['accept-language'] }, deps, async (call) => {
    const lang = pickLanguage(call.headers?.['accept-language'] ?? '');
    const headers = { ...privateHeaders, 'content-language': SHARE_TEXTS[lang].htmlLang!, vary: 'accept-language' };
    if (d.page instanceof Error) {
      return { status: 503, text: `page unavailable: ${d.page.message}\n`, contentType: 'text/plain', headers };
    }
    const v = await judge(call.params[0]!);
    // Unavailable (the revocations cannot be read now): the page as if live, answered 503;
    // its script then finds `/state` and the stream 503 too and keeps retrying.
    const status = v.kind === 'ok' || v.kind === 'unavailable' ? 'live' : v.kind;
    return {
      status: v.kind === 'ok' ? 200 : v.kind === 'gone' ? 410 : v.kind === 'unavailable' ? 503 : 404,
      text: renderSharePage(d.page.template, lang, status, d.tiles),
      contentType: 'text/html; charset=utf-8',
      headers,
    };
  });

  route(app, 'get', '/t/:token/state', { params: 1 }, deps, async (call) => {
    const v = await links.check(call.params[0]!);
    if (v.kind !== 'ok') {
      const dead = deadAnswer(v);
      return { status: dead.status, text: dead.body, contentType: 'application/json', headers: privateHeaders };
    }
    const answer = await hub.answer(v.claims.order, v.claims.exp);
    if (!answer.live) {
      const dead = deadAnswer(
        answer.unavailable !== undefined ? { kind: 'unavailable', msg: answer.unavailable } : GONE,
      );
      return { status: dead.status, text: dead.body, contentType: 'application/json', headers: privateHeaders };
    }
    return { status: 200, json: answer.state, headers: privateHeaders };
  });

  app.get('/t/:token/stream', (res, req) => openStream(res, req.getParameter(0) ?? ''));

  /** A Server-Sent Events stream of one order's state, fed by the hub, once `token` checked out. */
  function openStream(res: HttpResponse, token: string): void {
    /** The link's order, once the token checked out. */
    let order: string | null = null;
    let aborted = false;
    let ended = false;
    let started = false;
    /** Set while uWS holds unsent bytes; then only the newest state waits, older ones are dropped. */
    let blocked = false;
    let pending: string | Uint8Array | null = null;
    const start = (): void => {
      started = true;
      res.writeStatus('200 OK');
      writeHeaders(res, privateHeaders);
      res.writeHeader('content-type', 'text/event-stream; charset=utf-8');
      res.writeHeader('x-accel-buffering', 'no');
      // A page that lost its stream reconnects after 1 s (EventSource's retry).
      blocked = !res.write('retry: 1000\n\n');
    };
    const sink: ShareSink = {
      write(chunk) {
        if (aborted || ended) return;
        if (blocked) {
          // Heartbeats are dropped while blocked; the newest state (or the end) is kept.
          if (typeof chunk !== 'string' || chunk === GONE_EVENT) pending = chunk;
          return;
        }
        res.cork(() => {
          if (!started) start();
          if (!res.write(chunk)) blocked = true;
        });
      },
      end() {
        if (aborted || ended) return;
        ended = true;
        res.cork(() => {
          if (!started) start();
          res.end();
        });
      },
    };
    res.onAborted(() => {
      aborted = true;
      if (order !== null) hub.close(order, sink);
    });
    res.onWritable(() => {
      blocked = false;
      if (pending !== null && !aborted && !ended) {
        const chunk = pending;
        pending = null;
        blocked = !res.write(chunk);
      }
      return true;
    });
    const refuse = (dead: { status: number; body: string }): void => {
      deps.metrics.httpRequests.inc({ route: '/t/:token/stream', status: String(dead.status) });
      if (aborted) return;
      ended = true;
      res.cork(() => {
        res.writeStatus(statusLine(dead.status));
        writeHeaders(res, privateHeaders);
        res.writeHeader('content-type', 'application/json').end(dead.body);
      });
    };
    links
      .check(token)
      .then((v): Promise<OpenResult> | null => {
        if (v.kind !== 'ok') {
          refuse(deadAnswer(v));
          return null;
        }
        if (aborted) return null;
        order = v.claims.order;
        return hub.open(order, v.claims, sink);
      })
      .then(
        (result) => {
          if (result === null || order === null) return;
          if (result === 'opened') {
            deps.metrics.httpRequests.inc({ route: '/t/:token/stream', status: '200' });
            if (aborted) hub.close(order, sink);
            return;
          }
          refuse(
            result === 'gone'
              ? deadAnswer(GONE)
              : result === 'unavailable'
                ? deadAnswer({ kind: 'unavailable', msg: 'the order cannot be read now, retry' })
                : {
                    status: result === 'node_full' ? 503 : 429,
                    body: JSON.stringify({
                      code: result === 'node_full' ? ErrorCode.unavailable : ErrorCode.rateLimited,
                      msg:
                        result === 'node_full' ? 'too many open streams on this node' : 'too many streams of this link',
                    }),
                  },
          );
        },
        (err: unknown) => {
          deps.log.error({ err }, 'customer stream failed to open');
          if (order !== null) hub.close(order, sink);
          if (aborted || ended || started) return;
          ended = true;
          res.cork(() => {
            res.writeStatus(statusLine(500));
            res.writeHeader('content-type', 'application/json');
            res.end(JSON.stringify({ code: ErrorCode.internal, msg: 'internal error' }));
          });
        },
      );
  }

  const serveFile = (res: HttpResponse, path: string, ifNoneMatch: string): void => {
    const file = d.page instanceof Error ? undefined : d.page.files.get(path);
    const status = file === undefined ? 404 : ifNoneMatch === file.etag ? 304 : 200;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      writeHeaders(res, pageHeaders);
      if (file === undefined) {
        res.writeHeader('content-type', 'text/plain; charset=utf-8').end('not found\n');
        return;
      }
      res.writeHeader('cache-control', 'no-cache').writeHeader('etag', file.etag);
      if (status === 304) res.endWithoutBody();
      else res.writeHeader('content-type', file.contentType).end(file.body);
    });
    deps.metrics.httpRequests.inc({ route: '/share/*', status: String(status) });
  };
  app.get('/share/*', (res, req) => serveFile(res, req.getUrl(), req.getHeader('if-none-match')));
}

function writeHeaders(res: HttpResponse, headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
}

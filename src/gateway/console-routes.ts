/**
 * The safety-center console at `/console`: the page, its stylesheet, its compiled browser
 * modules and the MessagePack codec from node_modules, all served by the node itself so a
 * console works with no internet access. Also two small JSON routes the page needs: the
 * non-secret SOS timings (for the escalation countdown) and a token check, because a
 * browser cannot see why a WebSocket upgrade was refused (401 and 403 look the same as a
 * dead server to it).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { ConsoleSettings } from '../console/app/model.js';
import { Role } from '../protocol.js';
import { type HttpDeps, route, statusLine } from './http.js';
import { pageCsp, type TileSettings } from './map-tiles.js';
import { StaticFiles } from './static-files.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** Where the console's files are on disk. */
export interface ConsoleSources {
  /** Hand-written page files: `index.html`, `console.css`, `favicon.svg`. */
  page: string;
  /** Browser modules compiled by `tsc -p src/console` (`npm run build`). */
  scripts: string;
  /** msgpackr's self-contained browser build. */
  msgpackr: string;
}

/**
 * The default locations, found from this compiled module (`dist/src/gateway/`): the page
 * files stay in the source tree (`src/console/page/`, nothing to copy at build time) and
 * the browser build lands in `dist/web/`. Both are fixed by tsconfig's rootDir and outDir.
 */
export function defaultConsoleSources(): ConsoleSources {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const require = createRequire(import.meta.url);
  // The no-eval build: our Content-Security-Policy forbids eval and new Function.
  const msgpackrDist = dirname(require.resolve('msgpackr/index-no-eval'));
  return {
    page: join(root, 'src', 'console', 'page'),
    scripts: join(root, 'dist', 'web'),
    msgpackr: join(msgpackrDist, 'index-no-eval.min.js'),
  };
}

/** URL prefix of the compiled browser modules; their relative imports resolve inside it. */
export const CONSOLE_SCRIPTS_PREFIX = '/console/js/';

/** Reads every console file into memory; throws naming what is missing (e.g. the browser build). */
export function loadConsoleFiles(sources: ConsoleSources): StaticFiles {
  const files = new StaticFiles();
  if (!existsSync(join(sources.scripts, 'console', 'app', 'main.js'))) {
    throw new Error(`the console's browser build is missing in ${sources.scripts} (run npm run build)`);
  }
  files.addFile('/console', join(sources.page, 'index.html'));
  files.addFile('/console/', join(sources.page, 'index.html'));
  files.addFile('/console/console.css', join(sources.page, 'console.css'));
  files.addFile('/console/favicon.svg', join(sources.page, 'favicon.svg'));
  files.addFile('/console/vendor/msgpackr.js', sources.msgpackr);
  files.addTree(CONSOLE_SCRIPTS_PREFIX, sources.scripts, ['.js']);
  return files;
}

/**
 * Same-origin only: no inline script or style, no eval, no other origin for anything.
 * `connect-src 'self'` covers the page's fetches and its ws:// (or wss://) connection.
 * With map tiles configured, `img-src` also names the tile origin (map-tiles.ts).
 */
export const CONSOLE_CSP = pageCsp(null);

/** Headers on every response of the node's pages (console, customer page), with `csp`. */
export function securityHeaders(csp: string): Readonly<Record<string, string>> {
  return {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function writeHeaders(res: HttpResponse, headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
}

/**
 * Registers `/console` and everything under it. `files` is the loaded file set, or the
 * error that prevented loading it: then the page answers 503 saying why, and the rest of
 * the server works as usual.
 */
export function registerConsoleRoutes(
  app: TemplatedApp,
  config: Config,
  deps: HttpDeps,
  files: StaticFiles | Error,
  tiles: TileSettings | null = null,
): void {
  const pageHeaders = securityHeaders(pageCsp(tiles));
  route(app, 'get', '/console/config.json', {}, deps, () => ({
    status: 200,
    json: {
      sosLevel2Ms: config.SOS_LEVEL2_MS,
      sosLevel3Ms: config.SOS_LEVEL3_MS,
      sosSlaMs: config.SOS_SLA_MS,
      serverTime: deps.clock.now(),
      tiles: tiles === null ? null : { url: tiles.url, attribution: tiles.attribution },
    } satisfies ConsoleSettings,
    headers: { ...pageHeaders, 'cache-control': 'no-store' },
  }));

  // The page's sign-in check: the same verifier and role as the /v1/safety upgrade, so a
  // 401 or 403 here is exactly what the upgrade would answer.
  route(app, 'get', '/console/session', { roles: [Role.safety] }, deps, (call) => ({
    status: 200,
    json: { sub: call.principal!.sub, exp: Math.floor(call.principal!.expiresAt / 1000) },
    headers: { ...pageHeaders, 'cache-control': 'no-store' },
  }));

  const serve = (res: HttpResponse, req: HttpRequest): void => {
    const file = files instanceof StaticFiles ? files.get(req.getUrl()) : undefined;
    const status =
      file === undefined
        ? files instanceof Error
          ? 503
          : 404
        : req.getHeader('if-none-match') === file.etag
          ? 304
          : 200;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      writeHeaders(res, pageHeaders);
      if (file === undefined) {
        res.writeHeader('content-type', 'text/plain; charset=utf-8').writeHeader('cache-control', 'no-store');
        res.end(files instanceof Error ? `console unavailable: ${files.message}\n` : 'not found\n');
        return;
      }
      // no-cache: the browser may keep a copy but asks each time (a 304 when unchanged),
      // so operators always run the build the node serves, right after a deployment.
      res.writeHeader('cache-control', 'no-cache').writeHeader('etag', file.etag);
      if (status === 304) res.endWithoutBody();
      else res.writeHeader('content-type', file.contentType).end(file.body);
    });
    deps.metrics.httpRequests.inc({ route: '/console/*', status: String(status) });
  };
  app.get('/console', serve);
  app.get('/console/*', serve);
}

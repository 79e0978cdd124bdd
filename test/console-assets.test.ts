/**
 * How the node serves the safety console: every file of the page's module graph with its
 * content type, a strict same-origin Content-Security-Policy and revalidation headers; the
 * settings and token-check routes; and no way out of the served set (raw requests with
 * `..`, encoded slashes and source files are all 404).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONSOLE_CSP, loadConsoleFiles } from '../src/gateway/console-routes.js';
import { StaticFiles } from '../src/gateway/static-files.js';
import { ServerProcess, token } from './support/server-process.js';

/** One raw HTTP/1.1 GET, path sent byte for byte (fetch would normalise `..` away). */
function rawGet(port: number, path: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    });
    let data = '';
    socket.setEncoding('latin1');
    socket.setTimeout(5000, () => reject(new Error(`no answer to GET ${path}`)));
    socket.on('data', (chunk: string) => {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end);
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (data.length - end - 4 < length) return;
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), head, body: data.slice(end + 4) });
    });
    socket.on('error', reject);
  });
}

describe('console assets', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({
      env: { SOS_LEVEL2_MS: '12345', SOS_LEVEL3_MS: '23456', SOS_SLA_MS: '34567' },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('serves the page with a strict same-origin CSP and revalidation headers, without a token', async () => {
    const res = await fetch(`${server.httpUrl}/console`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.equal(csp, CONSOLE_CSP);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(res.headers.get('etag') ?? '', /^"[\w-]{22}"$/);
    const html = await res.text();
    assert.match(html, /<script type="module" src="\/console\/js\/console\/app\/main\.js">/);
    assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'the page names no other origin');
    assert.doesNotMatch(html, /<script>|style=/, 'no inline script or style (the CSP would block them)');
  });

  it('serves every file the page and its modules reference, with the right content type', async () => {
    const html = await (await fetch(`${server.httpUrl}/console`)).text();
    const refs = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length >= 4, refs.join(' '));
    const types: Record<string, string> = {
      '.css': 'text/css; charset=utf-8',
      '.js': 'text/javascript; charset=utf-8',
      '.svg': 'image/svg+xml',
    };
    // Walk the module graph from main.js through every relative import.
    const queue = [...refs];
    const seen = new Set<string>();
    while (queue.length > 0) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await fetch(server.httpUrl + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), types[path.slice(path.lastIndexOf('.'))], path);
      assert.ok(res.headers.get('content-security-policy'), path);
      const text = await res.text();
      if (path.startsWith('/console/js/')) {
        for (const m of text.matchAll(/(?:from|import)\s*['"](\.[^'"]+)['"]/g)) {
          queue.push(new URL(m[1]!, `http://x${path}`).pathname);
        }
      }
    }
    for (const module of ['main', 'connection', 'map-view', 'alert-list', 'model', 'wire']) {
      assert.ok(seen.has(`/console/js/console/app/${module}.js`), `${module}.js is reachable from the page`);
    }
    assert.ok(seen.has('/console/js/protocol.js'), 'the browser shares protocol.ts with the server');
  });

  it('serves msgpackr from node_modules, the build without eval', async () => {
    const res = await fetch(`${server.httpUrl}/console/vendor/msgpackr.js`);
    assert.equal(res.status, 200);
    const require = createRequire(import.meta.url);
    const file = join(dirname(require.resolve('msgpackr/index-no-eval')), 'index-no-eval.min.js');
    assert.equal(await res.text(), readFileSync(file, 'utf8'));
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await fetch(`${server.httpUrl}/console/console.css`);
    const etag = first.headers.get('etag')!;
    const again = await fetch(`${server.httpUrl}/console/console.css`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    assert.equal(await again.text(), '');
  });

  it('serves the SOS timings of its own configuration', async () => {
    const res = await fetch(`${server.httpUrl}/console/config.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, number>;
    assert.deepEqual(Object.keys(body).sort(), ['serverTime', 'sosLevel2Ms', 'sosLevel3Ms', 'sosSlaMs', 'tiles']);
    assert.equal(body.sosLevel2Ms, 12345);
    assert.equal(body.sosLevel3Ms, 23456);
    assert.equal(body.sosSlaMs, 34567);
    assert.ok(Math.abs(body.serverTime! - Date.now()) < 5000);
    assert.equal((body as Record<string, unknown>).tiles, null, 'no tiles without MAP_TILE_URL');
  });

  it('checks a token exactly as the /v1/safety upgrade does', async () => {
    assert.equal((await server.http('GET', '/console/session')).status, 401);
    assert.equal((await server.http('GET', '/console/session', { token: 'not-a-jwt' })).status, 401);
    const expired = await token('op-1', 'safety', { exp: 1_000_000 });
    assert.equal((await server.http('GET', '/console/session', { token: expired })).status, 401);
    assert.equal((await server.http('GET', '/console/session', { role: 'device' })).status, 403);
    assert.equal((await server.http('GET', '/console/session', { role: 'dispatch' })).status, 403);
    const ok = await server.http('GET', '/console/session', { role: 'safety', sub: 'op-7' });
    assert.equal(ok.status, 200);
    assert.equal((ok.body as { sub: string }).sub, 'op-7');
  });

  it('refuses every path outside the served set, traversal included', async () => {
    const secret = readFileSync(new URL('../../package.json', import.meta.url), 'utf8').slice(0, 40);
    // The raw client itself works: a served file comes back whole.
    const control = await rawGet(server.port, '/console/console.css');
    assert.equal(control.status, 200);
    assert.match(control.body, /--sos:/);
    for (const path of [
      '/console/../package.json',
      '/console/../../package.json',
      '/console/%2e%2e/package.json',
      '/console/%2e%2e%2f%2e%2e%2fpackage.json',
      '/console/js/../../../package.json',
      '/console/js/..%2f..%2f..%2fpackage.json',
      '/console/js/console/app/../../../../package.json',
      '/console/vendor/../../node_modules/msgpackr/package.json',
      '/console//etc/passwd',
      '/console/js/console/app/main.ts',
      '/console/js/console/app/main.js.map',
      '/console/tsconfig.json',
      '/console/page/index.html',
      '/console/js/',
      '/console/%00',
    ]) {
      const res = await rawGet(server.port, path);
      assert.equal(res.status, 404, `${path}: ${res.head}`);
      assert.ok(!res.body.includes(secret), path);
    }
  });
});

describe('console file set', () => {
  it('serves only listed extensions, by exact path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-static-'));
    try {
      mkdirSync(join(dir, 'a'));
      writeFileSync(join(dir, 'a', 'x.js'), 'export {};');
      writeFileSync(join(dir, 'a', 'x.js.map'), '{}');
      writeFileSync(join(dir, 'a', 'x.d.ts'), '');
      const files = new StaticFiles();
      assert.equal(files.addTree('/p/', dir, ['.js']), 1);
      assert.deepEqual(files.paths, ['/p/a/x.js']);
      assert.equal(files.get('/p/a/x.js')?.contentType, 'text/javascript; charset=utf-8');
      assert.equal(files.get('/p/a/../a/x.js'), undefined);
      assert.throws(() => files.addFile('/p/y', join(dir, 'a', 'x.d.ts')), /no content type/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what is missing when the browser build is absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-static-'));
    try {
      assert.throws(() => loadConsoleFiles({ page: dir, scripts: dir, msgpackr: join(dir, 'm.js') }), /npm run build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The customer's page in headless Chromium at a phone's 360x740, on a real node with map
 * tiles served by a loopback tile server (MAP_TILE_URL): the customer sees the visit
 * scheduled, the technician depart and approach on real streets with a falling ETA,
 * arrive, and the link expire SHARE_LINGER_MIN after completion; a revoked link and a
 * tampered one show their message; the page is in Chinese for a Chinese browser; nothing
 * is requested from any origin but the node's and the tile server's, and no CSP rule is
 * broken. With `SHARE_SCREENSHOT` set, the page on the way is written there (`npm run
 * screenshot` writes docs/share.png for the README).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { DeviceClient } from '../src/client/index.js';
import type { ShareLink } from '../src/protocol.js';
import { type Browser, launchChromium } from './support/chromium.js';
import { ServerProcess } from './support/server-process.js';
import { north } from './support/share.js';
import { TileServer } from './support/tile-server.js';

const HOME = { lat: 31.2304, lon: 121.4737 };
const PHONE = { width: 360, height: 740 };

const INSTRUMENT = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });
`;

describe('customer page in a browser', () => {
  let tiles: TileServer;
  let server: ServerProcess;
  let browser: Browser;
  let device: DeviceClient;
  const requests: string[] = [];
  const pageErrors: string[] = [];
  const pages: Page[] = [];

  before(async () => {
    tiles = await TileServer.start();
    server = await ServerProcess.start({
      env: {
        MAP_TILE_URL: tiles.template,
        MAP_TILE_ATTRIBUTION: '© Test Tiles',
        SHARE_LINGER_MIN: '0.05',
        APPROACH_SEC: '60',
        ARCHIVE_BATCH_MS: '100',
      },
    });
    browser = await launchChromium();
  });
  after(async () => {
    await device?.close().catch(() => {});
    await browser?.close();
    await server?.stop();
    await tiles?.close();
  });

  const open = async (path: string, lang = 'en-GB,en;q=0.9') => {
    const page = await browser.context.newPage();
    pages.push(page);
    await page.setViewportSize(PHONE);
    // The browser's own Accept-Language (the profile's locale) is replaced on the page's request.
    await page.route(
      (url) => url.pathname.startsWith('/t/'),
      (route) => route.continue({ headers: { ...route.request().headers(), 'accept-language': lang } }),
    );
    await page.addInitScript(INSTRUMENT);
    page.on('request', (req) => requests.push(req.url()));
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const res = await page.goto(server.httpUrl + path);
    return { page, status: res?.status() };
  };
  const share = async (order: string) => {
    const res = await server.http('POST', `/v1/orders/${order}/share`, { role: 'dispatch' });
    assert.equal(res.status, 201, res.text);
    return res.body as ShareLink;
  };
  const putOrder = async (id: string, tech: string) => {
    const body = { technician: tech, ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 30 };
    assert.equal((await server.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body })).status, 200);
  };
  let ts = Date.now() - 60_000;
  const ping = async (p: { lat: number; lon: number }) => {
    ts += 1000;
    assert.equal((await device.ping({ ts, ...p, acc: 5 })).t, 'ack');
  };
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText (the rendered text), not the DOM property
  const text = (page: Page, id: string) => page.locator(`#${id}`).innerText();

  it('follows a visit: scheduled, on the way with a falling ETA on real streets, arrived, done, expired', async () => {
    await putOrder('visit-1', 'tech-1');
    const link = await share('visit-1');
    device = await server.device('tech-1');
    await ping(north(HOME, 3000));

    const { page, status } = await open(new URL(link.url).pathname);
    assert.equal(status, 200);
    await page.locator('body[data-state="assigned"]').waitFor();
    assert.equal(await text(page, 'headline'), 'Your visit is scheduled');
    assert.match(await text(page, 'detail'), /^Scheduled for \d\d:\d\d$/);
    assert.equal(await page.locator('[data-marker="technician"]').count(), 0, 'no technician before departure');
    assert.equal(await page.locator('[data-marker="customer"]').count(), 1);

    assert.equal((await device.depart('visit-1')).t, 'ack');
    await page.locator('body[data-state="departed"]').waitFor();
    assert.equal(await text(page, 'headline'), 'Your technician is on the way');
    const etas: number[] = [];
    for (const m of [2500, 1800, 1200, 700]) {
      await ping(north(HOME, m));
      const expected = Math.round(Math.round(m) / 8.3);
      await page.waitForFunction((s) => Math.abs(Number(document.body.dataset.etaSeconds) - s) <= 2, expected, {
        timeout: 15_000,
      });
      etas.push(Number(await page.evaluate(() => document.body.dataset.etaSeconds)));
      assert.match(await text(page, 'eta'), /^Arrives in about \d+ min$/);
    }
    assert.deepEqual(
      etas,
      [...etas].sort((a, b) => b - a),
    );
    assert.equal(new Set(etas).size, etas.length, `falling ETA: ${etas}`);
    assert.equal(await page.locator('[data-marker="technician"]').count(), 1);
    // Real streets: tiles from the tile server, loaded, behind the markers.
    const loaded = await page
      .locator('#map-tiles img.tile')
      .evaluateAll((imgs) =>
        imgs.map((i) => ({ src: (i as HTMLImageElement).src, ok: (i as HTMLImageElement).naturalWidth === 256 })),
      );
    assert.ok(loaded.length >= 2, `${loaded.length} tiles`);
    for (const t of loaded) {
      assert.equal(new URL(t.src).origin, tiles.origin);
      assert.ok(t.ok, `tile ${t.src} did not load`);
    }
    assert.equal(await text(page, 'attribution'), '© Test Tiles');
    assert.ok(tiles.requests.length >= loaded.length);
    if (process.env.SHARE_SCREENSHOT) {
      await page.waitForFunction(() =>
        [...document.querySelectorAll('#map-tiles img')].every((i) => (i as HTMLImageElement).complete),
      );
      await page.screenshot({ path: process.env.SHARE_SCREENSHOT });
    }

    await ping(north(HOME, 300));
    await page
      .locator('#eta')
      .filter({ hasText: /min|now/ })
      .waitFor();

    assert.equal((await device.checkin({ order: 'visit-1', ts: Date.now(), ...north(HOME, 10), acc: 5 })).t, 'ack');
    await page.locator('body[data-state="arrived"]').waitFor();
    assert.equal(await text(page, 'headline'), 'Your technician has arrived');
    assert.equal(await page.locator('[data-marker="technician"]').count(), 0, 'no technician after arrival');
    assert.equal(await text(page, 'eta'), '');

    assert.equal((await device.start('visit-1')).t, 'ack');
    assert.equal((await device.complete('visit-1')).t, 'ack');
    await page.locator('body[data-state="completed"]').waitFor();
    await page.locator('body[data-link="gone"]').waitFor({ timeout: 30_000 });
    assert.equal(await text(page, 'headline'), 'This tracking link has expired.');
    assert.equal(await page.locator('#map').isVisible(), false);
    const reload = await page.reload();
    assert.equal(reload?.status(), 410);
    assert.equal(await text(page, 'headline'), 'This tracking link has expired.');
  });

  it('shows a revoked link as expired and a tampered one as not valid', async () => {
    await putOrder('visit-2', 'tech-2');
    const link = await share('visit-2');
    const { page } = await open(new URL(link.url).pathname);
    await page.locator('body[data-state="assigned"]').waitFor();
    assert.equal((await server.http('DELETE', '/v1/orders/visit-2/share', { role: 'dispatch' })).status, 200);
    await page.locator('body[data-link="gone"]').waitFor();
    assert.equal(await text(page, 'headline'), 'This tracking link has expired.');

    const path = new URL(link.url).pathname;
    const tampered = `${path.slice(0, -1)}${path.endsWith('A') ? 'B' : 'A'}`;
    const bad = await open(tampered);
    assert.equal(bad.status, 404);
    await bad.page.locator('body[data-link="unknown"]').waitFor();
    assert.equal(await text(bad.page, 'headline'), 'This tracking link is not valid.');
  });

  it('speaks Chinese to a Chinese browser', async () => {
    await putOrder('visit-3', 'tech-3');
    const link = await share('visit-3');
    const { page } = await open(new URL(link.url).pathname, 'zh-CN,zh;q=0.9,en;q=0.8');
    await page.locator('body[data-state="assigned"]').waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    assert.equal(await text(page, 'headline'), '上门服务已预约');
    assert.match(await text(page, 'detail'), /^预约时间 \d\d:\d\d$/);
  });

  it('requested nothing but the node and the tile origin, broke no CSP rule and threw nothing', async () => {
    const allowed = new Set([server.httpUrl, tiles.origin]);
    assert.ok(requests.length > 10, `${requests.length} requests`);
    for (const url of requests) assert.ok(allowed.has(new URL(url).origin), url);
    assert.ok(requests.some((u) => u.startsWith(tiles.origin)));
    for (const page of pages) {
      if (page.isClosed()) continue;
      assert.deepEqual(
        await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations),
        [],
      );
    }
    assert.deepEqual(pageErrors, []);
  });

  it('gives the safety console the same tiles and allows exactly their origin', async () => {
    const csp = `img-src 'self' ${tiles.origin};`;
    for (const path of ['/console', '/console/config.json']) {
      const res = await fetch(server.httpUrl + path);
      assert.ok(res.headers.get('content-security-policy')?.includes(csp), path);
      if (path.endsWith('.json')) {
        const cfg = (await res.json()) as { tiles: unknown };
        assert.deepEqual(cfg.tiles, { url: tiles.template, attribution: '© Test Tiles' });
      } else await res.body?.cancel();
    }
  });
});

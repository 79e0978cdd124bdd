/**
 * The safety console's map on real streets, in headless Chromium: with MAP_TILE_URL set
 * (a loopback tile server) the map of an SOS draws the tile images of that origin under
 * the technician, each one answered to the page as a PNG, the technician's marker on the
 * tile that holds its position, with the attribution, no referrer sent; the page requests
 * nothing but the node and the tile origin and breaks no CSP rule. Without MAP_TILE_URL
 * (another node, the tile server still running) the same map draws without a single tile
 * request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceClient } from '../src/client/index.js';
import { type Browser, launchChromium } from './support/chromium.js';
import { ConsolePage } from './support/console-page.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess, token } from './support/server-process.js';
import { TileServer } from './support/tile-server.js';

const SITE = PLACES.berlin;
const ATTRIBUTION = '© Test Tiles';

/** The XYZ tile at zoom `z` that holds (lat, lon) in Web Mercator. */
function tileOf(lat: number, lon: number, z: number): { x: number; y: number } {
  const n = 2 ** z;
  const rad = (lat * Math.PI) / 180;
  return {
    x: Math.floor(((lon + 180) / 360) * n),
    y: Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n),
  };
}

describe('safety console map tiles in Chromium', () => {
  let tiles: TileServer;
  let withTiles: ServerProcess;
  let without: ServerProcess;
  let browser: Browser;
  const devices: DeviceClient[] = [];

  before(async () => {
    tiles = await TileServer.start();
    browser = await launchChromium();
    withTiles = await ServerProcess.start({
      env: { MAP_TILE_URL: tiles.template, MAP_TILE_ATTRIBUTION: ATTRIBUTION },
    });
    without = await ServerProcess.start();
  });
  after(async () => {
    for (const d of devices) await d.close().catch(() => {});
    await browser?.close();
    await withTiles?.stop();
    await without?.stop();
    await tiles?.close();
  });

  /** Every answer the page got from the tile origin: URL, status and content type. */
  const tileAnswers = new Map<string, { status: number; type: string }>();

  /** A console on `server` signed in, showing the map of a fresh SOS of `tech`. */
  const sosMap = async (server: ServerProcess, tech: string): Promise<ConsolePage> => {
    const d = await server.device(tech);
    devices.push(d);
    const con = await ConsolePage.open(browser.context, server.httpUrl);
    con.page.on('response', (res) => {
      if (!res.url().startsWith(`${tiles.origin}/`)) return;
      tileAnswers.set(res.url(), { status: res.status(), type: res.headers()['content-type'] ?? '' });
    });
    await con.signIn(await token('op-tiles', 'safety'));
    await con.waitLive();
    const ack = await d.sos({ ts: Date.now(), ...SITE });
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    await con.row(String(ack.incident)).click();
    await con.page.locator(`#map g[data-role="technician"][data-id="${tech}"]`).waitFor({ timeout: 10_000 });
    return con;
  };

  it('draws the SOS on tiles from the tile origin, the technician on the tile of its position', async () => {
    const con = await sosMap(withTiles, 'tile-tech');
    const images = con.page.locator('#map g[data-role="tiles"] image.map-tile');
    await images.first().waitFor({ timeout: 10_000 });
    const drawn = await images.evaluateAll((els) =>
      els.map((el) => ({
        href: el.getAttribute('href') ?? '',
        x: Number(el.getAttribute('x')),
        y: Number(el.getAttribute('y')),
        size: Number(el.getAttribute('width')),
      })),
    );
    assert.ok(drawn.length >= 2, `${drawn.length} tiles drawn`);
    for (const t of drawn) assert.equal(new URL(t.href).origin, tiles.origin, t.href);
    await con.page.waitForFunction(
      (n) => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.png')).length >= n,
      drawn.length,
      { timeout: 15_000 },
    );
    for (const t of drawn) {
      assert.deepEqual(tileAnswers.get(t.href), { status: 200, type: 'image/png' }, `tile ${t.href}`);
      assert.ok(tiles.requests.includes(new URL(t.href).pathname), `${t.href} not served`);
    }

    // Real streets under the marker: the tile drawn under the technician is the one that
    // holds its position at that zoom.
    const marker = await con.page
      .locator('#map g[data-role="technician"] circle.map-tech')
      .evaluate((el) => ({ x: Number(el.getAttribute('cx')), y: Number(el.getAttribute('cy')) }));
    const under = drawn.find(
      (t) => marker.x >= t.x && marker.x < t.x + t.size && marker.y >= t.y && marker.y < t.y + t.size,
    );
    assert.ok(under !== undefined, `no tile under the technician at ${JSON.stringify(marker)}`);
    const [z, x, y] = new URL(under.href).pathname.replace('.png', '').split('/').slice(1).map(Number) as [
      number,
      number,
      number,
    ];
    assert.deepEqual({ x, y }, tileOf(SITE.lat, SITE.lon, z), `tile ${under.href} under the technician`);
    assert.equal(await con.page.locator('#map text.map-attribution').textContent(), ATTRIBUTION);
    assert.deepEqual(new Set(tiles.referers), new Set(['']), 'a tile request carried a referrer');

    const allowed = new Set([withTiles.httpUrl, tiles.origin]);
    assert.ok(con.requests.length > 5, `${con.requests.length} requests`);
    for (const url of con.requests) assert.ok(allowed.has(new URL(url).origin), url);
    for (const url of con.websockets) assert.equal(new URL(url).origin, withTiles.wsUrl, url);
    assert.deepEqual(await con.cspViolations(), []);
    assert.deepEqual(con.pageErrors, []);
  });

  it('without MAP_TILE_URL draws the same map from the positions alone: no tile request', async () => {
    const before = tiles.requests.length;
    const con = await sosMap(without, 'plain-tech');
    await con.page.locator('#map g[data-role="scale"] text').waitFor({ timeout: 5000 });
    assert.equal(await con.page.locator('#map g[data-role="tiles"]').count(), 0);
    assert.equal(await con.page.locator('#map image').count(), 0);
    for (const url of con.requests) assert.equal(new URL(url).origin, without.httpUrl, url);
    assert.equal(tiles.requests.length, before, 'the tile server was asked for something');
    assert.deepEqual(await con.cspViolations(), []);
    assert.deepEqual(con.pageErrors, []);
  });
});

/**
 * The safety console end to end in headless Chromium against the real server (behind a
 * loopback proxy the test can cut): a device's SOS reaches the page within a second and
 * sounds the alarm, the operator acknowledges it with the keyboard and resolves it with
 * a note, and the device hears both; the map draws the technician, the geofence, the
 * archived track and the nearest technicians; the page reconnects by itself after a
 * network cut and a server restart and shows the snapshot; bad and expiring tokens end
 * on the sign-in form; and the page is usable at 1280x720 and never leaves its origin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Alert, DeviceClient, DevicePush, TrackPoint } from '../src/client/index.js';
import { type Browser, launchChromium } from './support/chromium.js';
import { ConsolePage } from './support/console-page.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { Inbox } from './support/inbox.js';
import { ServerProcess, token } from './support/server-process.js';
import { TcpProxy } from './support/tcp-proxy.js';

/** The customer of the map test, in Berlin. */
const CUSTOMER = PLACES.berlin;
/** `metres` north of CUSTOMER (one degree of latitude is about 111.2 km). */
const north = (metres: number) => ({ lat: CUSTOMER.lat + metres / 111_195, lon: CUSTOMER.lon });
/** `metres` east of CUSTOMER. */
const east = (metres: number) => ({
  lat: CUSTOMER.lat,
  lon: CUSTOMER.lon + metres / (111_195 * Math.cos((CUSTOMER.lat * Math.PI) / 180)),
});

const ENV = { ARCHIVE_BATCH_MS: '100' };

describe('safety console in Chromium', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldtrack-console-'));
  let server: ServerProcess;
  let proxy: TcpProxy;
  let browser: Browser;
  const pages: ConsolePage[] = [];
  const devices: DeviceClient[] = [];

  const openConsole = async (): Promise<ConsolePage> => {
    const con = await ConsolePage.open(browser.context, proxy.origin);
    pages.push(con);
    return con;
  };
  const device = async (sub: string): Promise<{ d: DeviceClient; pushes: Inbox<DevicePush> }> => {
    const d = await server.newDevice(sub);
    const pushes = new Inbox<DevicePush>(d);
    await d.connect();
    devices.push(d);
    return { d, pushes };
  };
  const sos = async (d: DeviceClient, at: { lat: number; lon: number }, note?: string): Promise<string> => {
    const ack = await d.sos({ ts: Date.now(), ...at, ...(note ? { note } : {}) });
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    return String(ack.incident);
  };

  before(async () => {
    browser = await launchChromium();
    server = await ServerProcess.start({ dataDir, env: ENV });
    proxy = await TcpProxy.start(server.port);
  });
  after(async () => {
    for (const d of devices) await d.close().catch(() => {});
    await browser?.close();
    await proxy?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('shows an SOS with sound; the keyboard acknowledges, a note resolves, the device hears both', async () => {
    const con = await openConsole();
    await con.signIn(await token('op-a', 'safety'));
    await con.waitLive();
    assert.equal(await con.page.locator('#operator').textContent(), 'Operator op-a');

    const { d, pushes } = await device('tech-a');
    const incident = await sos(d, north(20), 'customer is aggressive');
    const row = con.row(incident);
    // How fast it shows is measured by `npm run bench:console`, not asserted here.
    await row.waitFor({ state: 'visible', timeout: 10_000 });

    assert.match((await row.getAttribute('class')) ?? '', /\bsos\b/);
    assert.equal(await row.locator('.badge').textContent(), 'SOS');
    assert.equal(await row.locator('.tech').textContent(), 'tech-a');
    assert.match((await row.locator('.esc').textContent()) ?? '', /^level 2 in (1:00|0:5\d)$/);
    await eventually('the alarm never sounded', async () => (await con.beeps()) > 0, 3000);
    assert.match((await con.page.locator('#announcer').textContent()) ?? '', /SOS from tech-a/);
    assert.match(await con.page.title(), /^\(1 SOS\) /);

    // Keyboard only: Tab into the list, arrow to the SOS, Tab to Acknowledge, Enter.
    await con.page.locator('body').click({ position: { x: 5, y: 700 } });
    await con.tabTo({ dataId: '*' });
    for (let i = 0; i < 10 && (await con.focused()) !== incident; i++) await con.page.keyboard.press('ArrowDown');
    assert.equal(await con.focused(), incident, 'arrow keys select the SOS');
    assert.equal(await row.getAttribute('aria-selected'), 'true');
    await con.tabTo({ id: 'ack' });
    await con.page.keyboard.press('Enter');
    const status = await pushes.next((m) => m.t === 'sos_status' && m.incident === incident, 5000);
    assert.deepEqual(status, { t: 'sos_status', incident, state: 'acknowledged' });
    await con.page
      .locator(`#alerts [role="option"][data-id="${incident}"][data-state="acknowledged"]`)
      .waitFor({ timeout: 5000 });
    assert.equal(await row.locator('.esc').textContent(), 'stopped');
    assert.match((await con.page.locator('#action-result').textContent()) ?? '', /Acknowledged SOS · tech-a/);
    assert.ok(await con.page.locator('#ack').isDisabled(), 'an acknowledged alert cannot be acknowledged again');

    // Resolve with a note, by mouse this time.
    await con.page.locator('#note').fill('Police on site, technician safe');
    await con.page.locator('#resolve').click();
    const resolved = await pushes.next((m) => m.t === 'sos_status' && m.state === 'resolved', 5000);
    assert.deepEqual(resolved, { t: 'sos_status', incident, state: 'resolved' });
    await row.waitFor({ state: 'detached', timeout: 5000 });
    const closed = await server.http('GET', '/v1/alerts?state=resolved', { role: 'safety' });
    const alert = (closed.body as { alerts: Alert[] }).alerts.find((a) => a.id === incident);
    assert.equal(alert?.detail?.note, 'Police on site, technician safe');
    assert.equal(alert?.detail?.resolvedBy, 'op-a');
    assert.equal(alert?.detail?.ackedBy, 'op-a');
  });

  it('mutes and unmutes the alarm', async () => {
    const con = await openConsole();
    await con.signIn(await token('op-q', 'safety'));
    await con.waitLive();
    const mute = con.page.locator('#mute');
    await mute.click();
    assert.equal(await mute.textContent(), 'Unmute alarm');
    const before = await con.beeps();
    // Far from the map test's customer: an SOS fix is a position, and these technicians stay
    // online, so near it they would be the map test's nearest technicians.
    const { d } = await device('tech-q');
    // Far from the map test's customer, so these two are not its nearest technicians.
    await con.row(await sos(d, north(20_000))).waitFor({ timeout: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await con.beeps(), before, 'muted: no sound');
    await mute.click();
    assert.equal(await mute.textContent(), 'Mute alarm');
    const { d: d2 } = await device('tech-q2');
    await con.row(await sos(d2, north(20_002))).waitFor({ timeout: 5000 });
    await eventually('unmuted: the alarm sounds again', async () => (await con.beeps()) > before, 2000);
  });

  it('draws the technician, the geofence, the 30-minute track and the nearest technicians', async () => {
    const put = await server.http('PUT', '/v1/orders/o-map', {
      role: 'dispatch',
      body: { technician: 'tech-m', ...CUSTOMER, radius: 80, scheduledAt: Date.now() + 3_600_000, durationMin: 60 },
    });
    assert.equal(put.status, 200, put.text);
    const { d } = await device('tech-m');
    assert.equal((await d.depart('o-map')).t, 'ack');
    // A backlog of the last 25 minutes: driving in from 1.5 km east, then the live fix.
    const now = Date.now();
    const pts: Array<[number, number, number, number]> = [];
    for (let i = 0; i <= 24; i++) {
      const p = east(1500 - i * 55);
      pts.push([now - (25 - i) * 60_000, p.lat, p.lon, 10]);
    }
    assert.equal((await d.batch(pts)).t, 'ack');
    assert.equal((await d.ping({ ts: now, ...east(150), acc: 12 })).t, 'ack');
    const near = await device('tech-n1');
    await near.d.ping({ ts: now, ...north(300), acc: 5 });
    const far = await device('tech-n2');
    await far.d.ping({ ts: now, ...north(-900), acc: 5 });
    // The archive takes up to ARCHIVE_BATCH_MS: wait until the track is readable.
    await eventually(
      'the track never reached the archive',
      async () => {
        const res = await server.http('GET', '/v1/technicians/tech-m/track', { role: 'safety' });
        return ((res.body as { points?: TrackPoint[] }).points ?? []).length >= 26;
      },
      10_000,
    );

    const con = await openConsole();
    // Every track answer the page gets, in request order (the page reads one page at a time).
    const trackAnswers: ({ from: number; points: TrackPoint[]; next?: number } | null)[] = [];
    con.page.on('response', (res) => {
      const url = new URL(res.url());
      if (url.pathname !== '/v1/technicians/tech-m/track') return;
      const at = trackAnswers.push(null) - 1;
      void res.json().then((body: { points: TrackPoint[]; next?: number }) => {
        trackAnswers[at] = { from: Number(url.searchParams.get('from')), ...body };
      });
    });
    await con.signIn(await token('op-m', 'safety'));
    await con.waitLive();
    const incident = await sos(d, east(150));
    await con.row(incident).click();
    const map = con.page.locator('#map');
    const tech = map.locator('g[data-role="technician"][data-id="tech-m"]');
    await tech.waitFor({ timeout: 5000 });
    await map.locator('g[data-role="geofence"][data-id="o-map"] circle.map-fence').waitFor({ timeout: 5000 });
    await map.locator('g[data-role="nearby"][data-id="tech-n1"]').waitFor({ timeout: 5000 });
    await map.locator('g[data-role="nearby"][data-id="tech-n2"]').waitFor({ timeout: 5000 });
    assert.equal(await map.locator('g[data-role="nearby"][data-id="tech-m"]').count(), 0, 'not its own neighbour');
    const trackPoints = await map.locator('g[data-role="track"] polyline').getAttribute('points');
    assert.ok((trackPoints ?? '').split(' ').length >= 26, `track drawn with ${trackPoints}`);
    assert.ok(await map.locator('g[data-role="scale"] text').textContent());

    // One projection for everything: on screen, distances keep their real proportions.
    const centre = async (selector: string) =>
      map
        .locator(selector)
        .first()
        .evaluate((el) => ({ x: Number(el.getAttribute('cx')), y: Number(el.getAttribute('cy')) }));
    const t = await centre('g[data-role="technician"] circle.map-tech');
    const c = await centre('g[data-role="geofence"] circle.map-fence');
    const n1 = await centre('g[data-role="nearby"][data-id="tech-n1"] circle');
    const n2 = await centre('g[data-role="nearby"][data-id="tech-n2"] circle');
    const fenceR = Number(await map.locator('circle.map-fence').getAttribute('r'));
    const px = (a: { x: number; y: number }, b: { x: number; y: number }) => Math.hypot(a.x - b.x, a.y - b.y);
    const metresPerPx = 150 / px(t, c);
    assert.ok(Math.abs(fenceR * metresPerPx - 80) < 2, `fence radius ${fenceR * metresPerPx} m`);
    assert.ok(Math.abs(px(c, n1) * metresPerPx - 300) < 5, `tech-n1 ${px(c, n1) * metresPerPx} m from the customer`);
    assert.ok(Math.abs(px(c, n2) * metresPerPx - 900) < 10, `tech-n2 ${px(c, n2) * metresPerPx} m from the customer`);
    assert.ok(n1.y < c.y && n2.y > c.y && t.x > c.x, 'north is up, east is right');
    const box = await map.evaluate((el) => el.getAttribute('viewBox')!.split(' ').map(Number));
    for (const p of [t, c, n1, n2]) assert.ok(p.x > 0 && p.y > 0 && p.x < box[2]! && p.y < box[3]!, 'inside the map');
    const facts = (await con.page.locator('#detail-facts').textContent()) ?? '';
    assert.match(facts, /Nearest online.*tech-n1 \(3\d\d m\)/);

    // The map refreshes every 10 s reading only what is new: each track request starts
    // right after the newest point the page already has, and no point is sent twice.
    const newest = Date.now();
    assert.equal((await d.ping({ ts: newest, ...east(140), acc: 8 })).t, 'ack');
    await eventually(
      'a map refresh fetched the new point',
      async () => trackAnswers.some((a) => a?.points.some((p) => p[0] === newest)),
      40_000,
    );
    const answers = trackAnswers.filter((a) => a !== null);
    assert.ok(answers.length >= 2, `${answers.length} track requests`);
    assert.ok(answers[0]!.from <= newest - 29 * 60_000, 'the first request reads the whole window');
    for (let k = 1; k < answers.length; k++) {
      const last = answers[k - 1]!.points.at(-1)?.[0];
      if (last === undefined) assert.ok(answers[k]!.from >= answers[k - 1]!.from, `request ${k} goes back`);
      else assert.equal(answers[k]!.from, last + 1, `request ${k} starts after the newest point held`);
    }
    const received = answers.flatMap((a) => a.points.map((p) => p[0]));
    assert.equal(new Set(received).size, received.length, 'no point was fetched twice');
    await eventually(
      'the map draws every point received',
      async () =>
        ((await map.locator('g[data-role="track"] polyline').getAttribute('points')) ?? '').split(' ').length >=
        received.length,
      15_000,
    );
  });

  it('shows when it is cut off, reconnects by itself, and the snapshot brings what it missed', async () => {
    const con = await openConsole();
    await con.signIn(await token('op-r', 'safety'));
    await con.waitLive();
    const before = con.websockets.length;
    const { d } = await device('tech-r1');
    const first = await sos(d, north(40));
    await con.row(first).waitFor({ timeout: 5000 });

    proxy.cut();
    await con.page.locator('#status[data-kind="retrying"]').waitFor({ timeout: 5000 });
    assert.match((await con.page.locator('#status-text').textContent()) ?? '', /^Disconnected/);
    assert.ok(await con.page.locator('#console-view.stale').isVisible(), 'the list is marked stale');
    assert.ok(await con.page.locator('#reconnect').isVisible());
    assert.ok(await con.page.locator('#resolve').isDisabled(), 'no actions while disconnected');

    // While it is away: a new SOS, and another operator acknowledges the first one.
    const other = await device('tech-r2');
    const missed = await sos(other.d, north(-60));
    const colleague = await server.safety('op-colleague');
    assert.equal((await colleague.request({ t: 'ack', id: first })).t, 'ack');
    await colleague.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await con.row(missed).count(), 0, 'really cut off');

    proxy.restore();
    await con.waitLive(15_000);
    await con.row(missed).waitFor({ timeout: 5000 });
    assert.equal(await con.row(first).getAttribute('data-state'), 'acknowledged');
    assert.ok(con.websockets.length > before, 'a new WebSocket was opened');
    assert.ok(await con.page.locator('#resolve').isEnabled(), 'actions are back once live');
    assert.ok(!(await con.page.locator('#console-view').getAttribute('class'))?.includes('stale'));
  });

  it('rides out a server restart (close 1001) and shows the open alerts again from the snapshot', async () => {
    const con = await openConsole();
    await con.signIn(await token('op-s', 'safety'));
    await con.waitLive();
    const { d } = await device('tech-s');
    const incident = await sos(d, north(80), 'fell from ladder');
    await con.row(incident).waitFor({ timeout: 5000 });

    assert.equal(await server.stop(), 0);
    // 1001 or a plain lost connection, depending on which the browser saw first; the
    // retry cycle shows "Connecting…" in between, so wait for the cause rather than read once.
    await con.page
      .locator('#status-text')
      .filter({ hasText: /^Disconnected: .*(server restarted|connection lost|unreachable)/ })
      .waitFor({ timeout: 10_000 });
    server = await ServerProcess.start({ dataDir, env: ENV });
    proxy.retarget(server.port);
    await con.waitLive(20_000);
    await con.row(incident).waitFor({ timeout: 5000 });
    assert.equal(await con.row(incident).getAttribute('data-state'), 'open');
  });

  it('refuses bad tokens on the sign-in form with the reason', async () => {
    const con = await openConsole();
    const error = con.page.locator('#signin-error');
    const cases: Array<[string, RegExp]> = [
      ['not-a-jwt', /Sign-in refused: token is not a JWT/],
      [await token('tech-x', 'device'), /Sign-in refused: role device may not use this endpoint/],
      [await token('op-x', 'safety', { exp: 1_000_000 }), /Sign-in refused: token has expired/],
      [await token('op-x', 'safety', { secret: 'another-secret-that-is-long-enough-for-hs256!!' }), /bad signature/],
    ];
    for (const [bad, reason] of cases) {
      await con.signIn(bad);
      await eventually(`error ${reason}`, async () => reason.test((await error.textContent()) ?? ''), 5000);
      assert.ok(await con.page.locator('#console-view').isHidden());
      assert.equal(await con.page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
      await error.evaluate((el) => {
        el.textContent = '';
      });
    }
    assert.equal(con.websockets.length, 0, 'no WebSocket with a refused token');
  });

  it('asks to sign in again when the token expires while connected (4001), without looping', async () => {
    const con = await openConsole();
    const expiring = await token('op-e', 'safety', { exp: Math.floor(Date.now() / 1000) + 3 });
    await con.signIn(expiring);
    await con.waitLive();
    await con.page.locator('#signin-view:not([hidden])').waitFor({ timeout: 8000 });
    assert.match((await con.page.locator('#signin-error').textContent()) ?? '', /token expired/i);
    const opened = con.websockets.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(con.websockets.length, opened, 'no reconnect with a dead token');
    assert.equal(opened, 1);
  });

  it('says so, and stops retrying, when the operator already has the most consoles open (4004)', async () => {
    const others = await Promise.all(Array.from({ length: 5 }, () => server.safety('op-many')));
    try {
      const con = await openConsole();
      await con.signIn(await token('op-many', 'safety'));
      // The sign-in view never hides before the refusal: wait for the reason itself.
      await con.page.locator('#signin-error', { hasText: /too many consoles open/ }).waitFor({ timeout: 8000 });
      assert.ok(await con.page.locator('#signin-view:not([hidden])').isVisible());
      const opened = con.websockets.length;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(con.websockets.length, opened, 'no reconnect loop against the cap');
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
  });

  it('is usable at 1280x720: no overflow, readable contrast, visible focus, every control on Tab', async () => {
    const con = await openConsole();
    await con.signIn(await token('op-k', 'safety'));
    await con.waitLive();
    await con.page.locator('#alerts [role="option"]').first().waitFor();
    const layout = await con.page.evaluate(() => {
      const inView = (id: string) => {
        const r = document.getElementById(id)!.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= 1280 && r.bottom <= 720;
      };
      return {
        scrollWidth: document.documentElement.scrollWidth,
        scrollHeight: document.documentElement.scrollHeight,
        visible: ['alerts', 'ack', 'resolve', 'note', 'map', 'status', 'signout', 'mute'].filter(inView),
      };
    });
    assert.ok(layout.scrollWidth <= 1280, `horizontal overflow: ${layout.scrollWidth}`);
    assert.ok(layout.scrollHeight <= 720, `vertical overflow: ${layout.scrollHeight}`);
    assert.deepEqual(layout.visible, ['alerts', 'ack', 'resolve', 'note', 'map', 'status', 'signout', 'mute']);

    // WCAG contrast of every visible text against the background it is drawn on.
    const poor = await con.page.evaluate(() => {
      const rgba = (s: string): number[] => (s.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]: number[]) => {
        const f = (v: number) => {
          const c = v / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
      };
      const background = (el: Element | null): number[] => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgba(getComputedStyle(e).backgroundColor);
          if ((c[3] ?? 1) > 0.5) return c;
        }
        return [13, 17, 23];
      };
      const out: string[] = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement!;
        if (!n.textContent?.trim() || el.closest('svg, .visually-hidden, [hidden]') || !el.checkVisibility()) continue;
        if (el.closest('.skip')) continue; // off-screen until focused, then dark on yellow
        const fg = rgba(getComputedStyle(el).color);
        const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
        const ratio = (a! + 0.05) / (b! + 0.05);
        if (ratio < 4.5) out.push(`${n.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
      }
      return out;
    });
    assert.deepEqual(poor, [], 'text below 4.5:1');

    // Every control is on the Tab path, and focus is drawn.
    await con.page.locator('body').click({ position: { x: 5, y: 700 } });
    const reached = new Set<string>();
    for (let i = 0; i < 40; i++) {
      await con.page.keyboard.press('Tab');
      const f = await con.page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        const style = getComputedStyle(el);
        return {
          name: el.id || (el.dataset.id ? 'alert-row' : el.tagName),
          outline: `${style.outlineStyle} ${style.outlineWidth}`,
        };
      });
      reached.add(f.name);
      if (f.name !== 'BODY') assert.match(f.outline, /^solid [3-9]/, `focus ring on ${f.name}`);
    }
    for (const name of ['mute', 'signout', 'alert-row', 'note', 'ack', 'resolve']) {
      assert.ok(reached.has(name), `${name} is reachable with Tab (reached ${[...reached].join(', ')})`);
    }
  });

  it('never requested anything outside its own origin, broke no CSP rule and threw nothing', async () => {
    const origin = proxy.origin;
    const wsOrigin = origin.replace(/^http/, 'ws');
    let requests = 0;
    for (const con of pages) {
      for (const url of con.requests) {
        requests += 1;
        assert.equal(new URL(url).origin, origin, url);
      }
      for (const url of con.websockets) assert.equal(new URL(url).origin, wsOrigin, url);
      assert.deepEqual(con.pageErrors, []);
      if (!con.page.isClosed()) assert.deepEqual(await con.cspViolations(), []);
    }
    assert.ok(requests > 20, `${requests} requests seen`);
  });
});

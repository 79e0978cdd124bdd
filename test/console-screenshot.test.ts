/**
 * A busy console at 1280x720, photographed: an SOS that has escalated to level 2 beside a
 * late departure, a late arrival, a geofence exit and an implausible move, with the map
 * of the SOS drawn (geofence, 30-minute track, nearest technicians). The picture is
 * written to $CONSOLE_SCREENSHOT when set (`npm run screenshot` writes docs/console.png,
 * the one in the README), else to a temporary file; either way the scene is checked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Alert, DeviceClient, SafetyPush } from '../src/client/index.js';
import { type Browser, launchChromium } from './support/chromium.js';
import { ConsolePage } from './support/console-page.js';
import { eventually } from './support/eventually.js';
import { Inbox } from './support/inbox.js';
import { ServerProcess, token } from './support/server-process.js';

const M_PER_DEG_LAT = 111_195;
/** A customer in Berlin-Prenzlauer Berg. */
const CUSTOMER = { lat: 52.5387, lon: 13.4246 };
/** The point `north` and `east` metres from CUSTOMER. */
const at = (northM: number, eastM: number) => ({
  lat: CUSTOMER.lat + northM / M_PER_DEG_LAT,
  lon: CUSTOMER.lon + eastM / (M_PER_DEG_LAT * Math.cos((CUSTOMER.lat * Math.PI) / 180)),
});

/** A drive along street-like legs (metres from the customer), sampled every `stepMs`. */
function drive(legs: Array<[number, number]>, samples: number, endTs: number, stepMs: number) {
  const pts: Array<[number, number, number, number]> = [];
  const lengths = legs.slice(1).map((p, i) => Math.hypot(p[0] - legs[i]![0], p[1] - legs[i]![1]));
  const total = lengths.reduce((a, b) => a + b, 0);
  for (let s = 0; s < samples; s++) {
    let along = (total * s) / (samples - 1);
    let leg = 0;
    while (leg < lengths.length - 1 && along > lengths[leg]!) along -= lengths[leg++]!;
    const [a, b] = [legs[leg]!, legs[leg + 1]!];
    const f = Math.min(1, along / lengths[leg]!);
    const p = at(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f);
    pts.push([endTs - (samples - 1 - s) * stepMs, p.lat, p.lon, 8]);
  }
  return pts;
}

describe('console screenshot', () => {
  let server: ServerProcess;
  let browser: Browser;
  const devices: DeviceClient[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'fieldtrack-shot-'));

  before(async () => {
    browser = await launchChromium();
    // Level 2 after 4 s so the picture shows an escalated SOS; a late arrival counted from
    // 25 minutes so that the late departure below is not also a late arrival.
    server = await ServerProcess.start({
      env: { SOS_LEVEL2_MS: '4000', LATE_ARRIVAL_MS: String(25 * 60_000), ARCHIVE_BATCH_MS: '100' },
    });
  });
  after(async () => {
    for (const d of devices) await d.close().catch(() => {});
    await browser?.close();
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const device = async (sub: string) => {
    const d = await server.device(sub);
    devices.push(d);
    return d;
  };
  const order = async (id: string, body: Record<string, unknown>) => {
    const res = await server.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body });
    assert.equal(res.status, 200, res.text);
  };
  const ok = async (reply: Promise<{ t: string }>) => assert.equal((await reply).t, 'ack', JSON.stringify(await reply));

  it('shows live alerts and the map of the SOS', async () => {
    const watcher = await server.newSafety('op-watch');
    const feed = new Inbox<SafetyPush>(watcher);
    await watcher.connect();
    const raised = (kind: string, tech: string) =>
      feed.next((m) => m.t === 'alert' && m.alert.kind === kind && m.alert.tech === tech, 15_000);
    const now = Date.now();

    // The technician in trouble: drove in over the last 28 minutes, checked in, started.
    await order('ORD-88213', { technician: 'tech-1042', ...CUSTOMER, radius: 80, scheduledAt: now, durationMin: 90 });
    const t1042 = await device('tech-1042');
    await ok(t1042.depart('ORD-88213'));
    const legs: Array<[number, number]> = [
      [-820, -760],
      [-760, -420],
      [-430, -380],
      [-330, -90],
      [-60, -70],
      [-10, -15],
    ];
    await ok(t1042.batch(drive(legs, 42, now - 3 * 60_000, 40_000)));
    const inside = at(8, 12);
    await ok(t1042.ping({ ts: now, ...inside, acc: 9 }));
    await ok(t1042.checkin({ order: 'ORD-88213', ts: now, ...inside, acc: 9 }));
    await ok(t1042.start('ORD-88213'));

    // Colleagues online around the customer.
    const nearby: Array<[string, number, number]> = [
      ['tech-1017', 330, 240],
      ['tech-1088', -420, 610],
      ['tech-1003', 780, -520],
      ['tech-1120', -700, 950],
    ];
    const colleagues = new Map<string, DeviceClient>();
    for (const [id, n, e] of nearby) {
      const d = await device(id);
      colleagues.set(id, d);
      await ok(d.ping({ ts: now, ...at(n, e), acc: 6 }));
    }

    const sos = await t1042.sos({ ts: Date.now(), ...inside, note: 'Customer aggressive, blocking the door' });
    assert.equal(sos.t, 'ack');

    // Other alerts of a normal afternoon.
    await order('ORD-88240', {
      technician: 'tech-1120',
      ...at(-800, 1050),
      scheduledAt: now - 20 * 60_000,
      durationMin: 45,
    });
    // Departed 6 km from a job due in 11 minutes: predicted to arrive late.
    await order('ORD-88251', {
      technician: 'tech-1017',
      ...at(6000, 900),
      scheduledAt: now - 14 * 60_000,
      durationMin: 30,
    });
    const t1017 = colleagues.get('tech-1017')!;
    await ok(t1017.depart('ORD-88251'));
    await ok(t1017.ping({ ts: now + 1000, ...at(330, 240), acc: 6 }));
    const t1088 = colleagues.get('tech-1088')!;
    const job = at(-420, 610);
    await order('ORD-88197', { technician: 'tech-1088', ...job, radius: 40, scheduledAt: now, durationMin: 60 });
    await ok(t1088.depart('ORD-88197'));
    await ok(t1088.checkin({ order: 'ORD-88197', ts: Date.now(), ...job, acc: 5 }));
    await ok(t1088.start('ORD-88197'));
    // Two fixes clearly outside the fence, a realistic walk apart.
    for (const [i, n] of [-500, -540].entries()) {
      await ok(t1088.ping({ ts: now + (i + 1) * 60_000, ...at(n, 640), acc: 5 }));
    }
    const t1003 = colleagues.get('tech-1003')!;
    // A fix 60 km away and straight back: a spoofed position (the live one stays here).
    await ok(t1003.ping({ ts: now + 1000, ...at(780 + 60_000, -520), acc: 5 }));
    await ok(t1003.ping({ ts: now + 2000, ...at(780, -520), acc: 5 }));
    await Promise.all([
      raised('late_departure', 'tech-1120'),
      raised('late_arrival', 'tech-1017'),
      raised('geofence_exit', 'tech-1088'),
      raised('implausible_move', 'tech-1003'),
    ]);
    await watcher.close();
    await eventually(
      'the track never reached the archive',
      async () => {
        const res = await server.http('GET', '/v1/technicians/tech-1042/track', { role: 'safety' });
        return ((res.body as { points?: unknown[] }).points ?? []).length >= 43;
      },
      10_000,
    );

    const con = await ConsolePage.open(browser.context, server.httpUrl);
    await con.signIn(await token('op-miriam', 'safety'));
    await con.waitLive();
    const incident = String(sos.incident);
    await con.page
      .locator(`#alerts [role="option"][data-id="${incident}"][aria-selected="true"]`)
      .waitFor({ timeout: 5000 });
    await con.page
      .locator(`#alerts [role="option"][data-id="${incident}"] .level:text-is("2")`)
      .waitFor({ timeout: 10_000 });
    const map = con.page.locator('#map');
    for (const part of ['technician', 'geofence', 'track', 'scale']) {
      await map
        .locator(`g[data-role="${part}"]`)
        .first()
        .waitFor({ timeout: 5000 })
        .catch(async (e) => {
          console.log('DEBUG', await con.page.locator('#map-caption').textContent(), await map.innerHTML());
          console.log(
            'DEBUG',
            JSON.stringify(
              (await server.http('GET', '/v1/technicians/tech-1042/track', { role: 'safety' })).body,
            ).slice(0, 300),
          );
          throw e;
        });
    }
    await eventually('four colleagues', async () => (await map.locator('g[data-role="nearby"]').count()) === 4, 5000);
    const rows = await con.page
      .locator('#alerts [role="option"]')
      .evaluateAll((lis) => lis.map((li) => li.getAttribute('data-kind')));
    assert.equal(rows[0], 'sos', 'the SOS heads the list');
    assert.deepEqual(
      [...rows].sort(),
      ['geofence_exit', 'implausible_move', 'late_arrival', 'late_departure', 'sos'],
      'every alert of the scene is listed',
    );
    // Let the once-a-second refresh settle, and take the picture without a focus ring.
    await con.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await new Promise((r) => setTimeout(r, 1100));

    const path = process.env.CONSOLE_SCREENSHOT
      ? resolve(process.env.CONSOLE_SCREENSHOT)
      : join(scratch, 'console.png');
    await con.page.screenshot({ path, animations: 'disabled' });
    const png = readFileSync(path);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1280, 720]);
    // Alerts of the scene, for the reader of a failure.
    const listed = (await server.http('GET', '/v1/alerts?state=open', { role: 'safety' })).body as { alerts: Alert[] };
    assert.ok(listed.alerts.length >= 5);
  });
});

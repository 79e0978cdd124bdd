/**
 * The fix time window on the real server: nothing older than the archive keeps
 * (RETENTION_DAYS) and nothing more than 5 minutes ahead. A ping is refused, a batch leaves
 * such points out of its `n`, and checkin and sos are taken with the server's time (an SOS is
 * never refused).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView, TechnicianView } from '../src/client/index.js';
import { outsideWindow, timeWindow } from '../src/gateway/time-window.js';
import { ErrorCode } from '../src/protocol.js';
import { firstKeptDay } from '../src/telemetry/retention.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';

const DAY = 86_400_000;
const HOME = PLACES.berlin;

/** The value of `fieldtrack_fixes_outside_window_total{type=...}`, 0 when absent. */
async function outsideCount(server: ServerProcess, type: string): Promise<number> {
  const text = (await server.http('GET', '/metrics')).text;
  const m = new RegExp(`^fieldtrack_fixes_outside_window_total\\{type="${type}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('time window (unit)', () => {
  it('starts at the first day the retention job keeps and ends 5 minutes ahead', () => {
    const now = Date.UTC(2026, 11, 2, 11, 30);
    const w = timeWindow(now, 30);
    assert.equal(new Date(w.oldest).toISOString().slice(0, 10), firstKeptDay(now, 30));
    assert.equal(w.oldest, Date.UTC(2026, 10, 3));
    assert.equal(outsideWindow(w.oldest, w), null);
    assert.match(outsideWindow(w.oldest - 1, w) ?? '', /older than the 30-day retention window \(before 2026-11-03/);
    assert.equal(outsideWindow(now + 300_000, w), null);
    assert.match(outsideWindow(now + 300_001, w) ?? '', /more than 5 minutes in the future/);
  });
});

describe('time window on the real server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it('refuses a ping older than the retention window or more than 5 minutes ahead, storing nothing', async () => {
    const d = await server.device('tech-tw1');
    const old = await d.ping({ ts: Date.now() - 31 * DAY, ...HOME });
    assert.equal(old.t === 'err' && old.code, ErrorCode.badRequest);
    assert.match(old.t === 'err' ? old.msg : '', /field ts: older than the 30-day retention window/);
    const ahead = await d.ping({ ts: Date.now() + 6 * 60_000, ...HOME });
    assert.equal(ahead.t === 'err' && ahead.code, ErrorCode.badRequest);
    assert.match(ahead.t === 'err' ? ahead.msg : '', /field ts: more than 5 minutes in the future/);
    assert.equal((await server.http('GET', '/v1/technicians/tech-tw1', { role: 'safety' })).status, 404);
    assert.equal(await outsideCount(server, 'ping'), 2);
    await d.close();
  });

  it('counts batch points outside the window out of n and archives only the others', async () => {
    const d = await server.device('tech-tw2');
    const now = Date.now();
    // A phone with a wrong clock: 150 points one day apart, plus two ahead of the server.
    const pts: [number, number, number][] = Array.from({ length: 150 }, (_, i) => [now - i * DAY, HOME.lat, HOME.lon]);
    pts.push([now + 10 * 60_000, HOME.lat, HOME.lon], [now + 400 * DAY, HOME.lat, HOME.lon]);
    const inside = pts.filter(([ts]) => outsideWindow(ts, timeWindow(now, 30)) === null).length;
    assert.equal(inside, 30, 'today and the 29 days before it');
    const reply = await d.batch(pts);
    assert.equal(reply.t, 'ack');
    assert.equal(reply.n, inside);
    assert.equal(await outsideCount(server, 'batch'), pts.length - inside);
    const track = await eventually('the accepted points archived', async () => {
      const res = await server.http('GET', `/v1/technicians/tech-tw2/track?from=0&to=${now + DAY}`, {
        role: 'safety',
      });
      const points = (res.body as { points?: unknown[] }).points ?? [];
      return points.length >= inside ? points : undefined;
    });
    assert.equal(track.length, inside);
    const ready = await server.http('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    await d.close();
  });

  it('takes an sos with a ts out of the window at server time, never refusing it', async () => {
    const d = await server.device('tech-tw3');
    for (const ts of [Date.now() - 365 * DAY, Date.now() + 60 * 60_000, 0]) {
      const before = Date.now();
      const ack = await d.sos({ ts, ...HOME, note: 'clock is wrong' });
      const after = Date.now();
      assert.equal(ack.t, 'ack', JSON.stringify(ack));
      const tech = (await server.http('GET', '/v1/technicians/tech-tw3', { role: 'safety' })).body as TechnicianView;
      assert.ok(
        tech.ts !== undefined && tech.ts >= before && tech.ts <= after,
        `live fix at server time, got ${tech.ts}`,
      );
    }
    assert.equal(await outsideCount(server, 'sos'), 3);
    await d.close();
  });

  it('takes a checkin with a ts out of the window at server time', async () => {
    const put = await server.http('PUT', '/v1/orders/job-tw4', {
      role: 'dispatch',
      body: { technician: 'tech-tw4', ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 60 },
    });
    assert.equal(put.status, 200, put.text);
    const d = await server.device('tech-tw4');
    assert.equal((await d.depart('job-tw4', Date.now() - 90 * DAY)).t, 'ack');
    const before = Date.now();
    const reply = await d.checkin({ order: 'job-tw4', ts: Date.now() - 40 * DAY, ...HOME, acc: 5 });
    const after = Date.now();
    assert.equal(reply.t, 'ack', JSON.stringify(reply));
    const view = (await server.http('GET', '/v1/orders/job-tw4', { role: 'dispatch' })).body as OrderView;
    const departed = view.timeline.find((e) => e.state === 'departed');
    const arrived = view.timeline.find((e) => e.state === 'arrived');
    assert.ok(departed && departed.ts >= before - 60_000, `depart ts dropped for server time, got ${departed?.ts}`);
    assert.ok(arrived && arrived.ts >= before && arrived.ts <= after, `arrived at server time, got ${arrived?.ts}`);
    assert.equal(await outsideCount(server, 'checkin'), 1);
    assert.equal(await outsideCount(server, 'depart'), 1);
    await d.close();
  });
});

/**
 * The console's pure rules, without a browser: list order, the SOS countdown against the
 * server's ladder, the board's "sound the alarm" decisions, and the map's projection,
 * scale bar and bounded track window.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AlertBoard, age, clock, compareAlerts, escalation, type Timings } from '../../src/console/app/model.js';
import { fitProjection, formatDistance, roundDistance, scaleBar } from '../../src/console/app/projection.js';
import { TrackWindow } from '../../src/console/app/track-window.js';
import type { Alert, TrackPoint } from '../../src/protocol.js';

const T0 = 1_800_000_000_000;
const timings: Timings = { sosLevel2Ms: 60_000, sosLevel3Ms: 300_000, sosSlaMs: 900_000 };
const alert = (over: Partial<Alert>): Alert => ({
  id: 'a',
  kind: 'late_arrival',
  level: 1,
  state: 'open',
  tech: 'tech-1',
  ts: T0,
  ...over,
});

describe('alert list order', () => {
  it('puts SOS first, then open before acknowledged, then higher level, then newest', () => {
    const list = [
      alert({ id: 'late-old', ts: T0 - 60_000 }),
      alert({ id: 'late-new', ts: T0 }),
      alert({ id: 'late-acked', ts: T0 + 5000, state: 'acknowledged' }),
      alert({ id: 'sos-acked', kind: 'sos', state: 'acknowledged', ts: T0 + 9000 }),
      alert({ id: 'sos-l1', kind: 'sos', ts: T0 + 8000 }),
      alert({ id: 'sos-l3', kind: 'sos', level: 3, ts: T0 - 600_000 }),
    ];
    assert.deepEqual(
      list.sort(compareAlerts).map((a) => a.id),
      ['sos-l3', 'sos-l1', 'sos-acked', 'late-new', 'late-old', 'late-acked'],
    );
  });

  it('breaks ties by id, so the order never flickers between refreshes', () => {
    const a = alert({ id: 'x1' });
    const b = alert({ id: 'x2' });
    assert.deepEqual([b, a].sort(compareAlerts), [a, b]);
  });
});

describe('SOS escalation countdown', () => {
  const sos = alert({ kind: 'sos' });
  const at = (ms: number) => escalation(sos, timings, T0 + ms);

  it('counts down to each rung of the ladder, then reports the breach', () => {
    assert.deepEqual(at(0), { label: 'level 2 in 1:00', tone: 'pending' });
    assert.deepEqual(at(29_500), { label: 'level 2 in 0:31', tone: 'pending' });
    assert.deepEqual(at(30_000), { label: 'level 2 in 0:30', tone: 'soon' });
    assert.deepEqual(at(59_999), { label: 'level 2 in 0:01', tone: 'soon' });
    assert.deepEqual(at(60_000), { label: 'level 3 in 4:00', tone: 'pending' });
    assert.deepEqual(at(300_000), { label: 'SLA breach in 10:00', tone: 'pending' });
    assert.deepEqual(at(900_000), { label: 'SLA breached 0:00 ago', tone: 'breached' });
    assert.deepEqual(at(900_000 + 3_723_000), { label: 'SLA breached 1:02:03 ago', tone: 'breached' });
  });

  it('follows the configured timings, not built-in ones', () => {
    const fast: Timings = { sosLevel2Ms: 5000, sosLevel3Ms: 10_000, sosSlaMs: 20_000 };
    assert.equal(escalation(sos, fast, T0 + 6000).label, 'level 3 in 0:04');
  });

  it('stops once acknowledged and does not apply to other kinds', () => {
    assert.deepEqual(escalation({ ...sos, state: 'acknowledged' }, timings, T0 + 10_000), {
      label: 'stopped',
      tone: 'stopped',
    });
    assert.equal(escalation(alert({}), timings, T0 + 10_000).tone, 'none');
  });

  it('never counts from before the alert (a browser clock slightly ahead of the server)', () => {
    assert.equal(at(-5000).label, 'level 2 in 1:00');
  });
});

describe('durations', () => {
  it('formats clocks and ages', () => {
    assert.equal(clock(0), '0:00');
    assert.equal(clock(1), '0:01', 'rounds up: 0:00 only when due');
    assert.equal(clock(61_000), '1:01');
    assert.equal(clock(3_600_000), '1:00:00');
    assert.equal(age(-10), '0 s');
    assert.equal(age(59_999), '59 s');
    assert.equal(age(60_000), '1 min');
    assert.equal(age(2 * 3_600_000), '2 h');
    assert.equal(age(2 * 3_600_000 + 5 * 60_000), '2 h 5 min');
    assert.equal(age(50 * 3_600_000), '2 d');
  });
});

describe('alert board', () => {
  it('reports a new open SOS once, and an escalation when its level rises', () => {
    const board = new AlertBoard();
    const sos = alert({ id: 's', kind: 'sos' });
    assert.deepEqual(board.apply(sos).newSos, [sos]);
    assert.deepEqual(board.apply(sos), { newSos: [], escalated: [] }, 'the same alert again is not new');
    const l2 = { ...sos, level: 2 };
    assert.deepEqual(board.apply(l2), { newSos: [], escalated: [l2] });
    assert.deepEqual(board.apply({ ...l2, state: 'acknowledged' }), { newSos: [], escalated: [] });
    assert.equal(board.get('s')?.state, 'acknowledged');
    board.apply({ ...l2, state: 'resolved' });
    assert.equal(board.size, 0, 'resolved alerts leave the board');
  });

  it('replaces everything with a snapshot and sounds only for SOS it had not seen open', () => {
    const board = new AlertBoard();
    const known = alert({ id: 'known', kind: 'sos' });
    board.apply(known);
    board.apply(alert({ id: 'gone' }));
    const missed = alert({ id: 'missed', kind: 'sos' });
    const change = board.replace([known, missed, alert({ id: 'late' }), alert({ id: 'done', state: 'resolved' })]);
    assert.deepEqual(change.newSos, [missed]);
    assert.deepEqual(
      board.sorted().map((a) => a.id),
      ['known', 'missed', 'late'],
    );
  });
});

describe('map projection', () => {
  const centre = { lat: 52.52, lon: 13.405 };
  const north = (m: number) => ({ lat: centre.lat + m / 111_195, lon: centre.lon });
  const east = (m: number) => ({
    lat: centre.lat,
    lon: centre.lon + m / (111_195 * Math.cos((centre.lat * Math.PI) / 180)),
  });
  const box = { width: 600, height: 400, margin: 20 };

  it('keeps distances in proportion on both axes, north up and east right', () => {
    const proj = fitProjection({ points: [north(1000), east(1000), centre] }, box)!;
    const c = proj.project(centre);
    const n = proj.project(north(1000));
    const e = proj.project(east(1000));
    // Equal to 0.1%: the east-west scale is taken at the middle latitude of what is drawn.
    assert.ok(Math.abs((c.y - n.y) / (e.x - c.x) - 1) < 1e-3, 'one metre is as long north as east');
    assert.ok(n.y < c.y && e.x > c.x);
    assert.ok(Math.abs((c.y - n.y) * proj.metresPerPx - 1000) < 1);
  });

  it('fits everything, circles whole, inside the margins', () => {
    const points = [north(3000), north(-500), east(800)];
    const proj = fitProjection({ points, circles: [{ centre, radiusM: 1200 }] }, box)!;
    for (const p of [...points, east(-1200)].map((q) => proj.project(q))) {
      assert.ok(p.x >= box.margin - 0.01 && p.x <= box.width - box.margin + 0.01, `x ${p.x}`);
      assert.ok(p.y >= box.margin - 0.01 && p.y <= box.height - box.margin + 0.01, `y ${p.y}`);
    }
  });

  it('does not zoom in absurdly on one point, and has nothing to fit without points', () => {
    const proj = fitProjection({ points: [centre] }, box, 400)!;
    assert.equal(proj.project(centre).x, 300);
    assert.ok(Math.abs(proj.metresPerPx - 400 / 360) < 1e-9);
    assert.equal(fitProjection({ points: [] }, box), undefined);
  });

  it('picks round scale-bar lengths', () => {
    assert.equal(roundDistance(1), 1);
    assert.equal(roundDistance(740), 500);
    assert.equal(roundDistance(199), 100);
    assert.equal(roundDistance(2500), 2000);
    assert.equal(roundDistance(0), 0);
    const bar = scaleBar(3.1, 160);
    assert.equal(bar.metres, 200);
    assert.ok(bar.px <= 160 && Math.abs(bar.px - 200 / 3.1) < 1e-9);
    assert.equal(bar.label, '200 m');
    assert.deepEqual(
      [formatDistance(447.4), formatDistance(1000), formatDistance(1234), formatDistance(12_345)],
      ['447 m', '1 km', '1.2 km', '12 km'],
    );
  });
});

describe('track window', () => {
  const pt = (ts: number): TrackPoint => [ts, 52.5, 13.4, 5, null, null];
  const WINDOW = 30 * 60_000;

  it('starts at the window, then right after the newest point or at next', () => {
    const w = new TrackWindow('t', WINDOW, 100);
    assert.equal(w.fromAt(T0), T0 - WINDOW);
    w.add({ points: [pt(T0 - 5000), pt(T0 - 4000)], next: T0 - 3999 }, T0 - WINDOW, T0);
    assert.equal(w.fromAt(T0), T0 - 3999);
    w.add({ points: [pt(T0 - 3999), pt(T0 - 10)] }, T0 - 3999, T0);
    assert.equal(w.fromAt(T0), T0 - 9);
    w.add({ points: [] }, T0 - 9, T0);
    assert.equal(w.fromAt(T0), T0 - 9, 'nothing new: ask from the same place');
    assert.deepEqual(
      w.points.map((p) => p[0]),
      [T0 - 5000, T0 - 4000, T0 - 3999, T0 - 10],
    );
    // Quiet for longer than the window: it restarts at the window's start.
    assert.equal(w.fromAt(T0 + 2 * WINDOW), T0 + WINDOW);
  });

  it('keeps the window and at most maxPoints, dropping the oldest, and never a point twice', () => {
    const w = new TrackWindow('t', WINDOW, 3);
    w.add({ points: [pt(T0 - WINDOW - 1), pt(T0 - 3), pt(T0 - 2)] }, T0 - WINDOW - 1, T0);
    assert.deepEqual(
      w.points.map((p) => p[0]),
      [T0 - 3, T0 - 2],
      'older than the window',
    );
    w.add({ points: [pt(T0 - 2), pt(T0 - 1), pt(T0)] }, T0 - 2, T0);
    assert.deepEqual(
      w.points.map((p) => p[0]),
      [T0 - 2, T0 - 1, T0],
      'the oldest beyond maxPoints, and the repeated point once',
    );
  });
});

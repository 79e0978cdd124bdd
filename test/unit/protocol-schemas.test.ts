/**
 * One schema source: every limit is defined once (protocol/limits.ts) and the same compiled
 * schemas check client frames, HTTP queries and node bus requests, with the same answer
 * wherever a value arrives; the README states the same numbers; the browser console loads
 * none of TypeBox.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LivePosition, OrderRecord } from '../../src/actors/records.js';
import { validateDeviceMessage, validateOrderInput, validateSafetyMessage } from '../../src/gateway/messages.js';
import { alertsQuery, checkId, nearbyQuery, trackQuery } from '../../src/gateway/queries.js';
import { timeWindow } from '../../src/gateway/time-window.js';
import {
  ACCURACY_MAX_M,
  ID_MAX_LENGTH,
  MAX_BATCH_POINTS,
  MAX_RADIUS_M,
  NEARBY_DEFAULT_RADIUS_M,
  NOTE_MAX_LENGTH,
  POLYGON_MAX_POINTS,
  POLYGON_MIN_POINTS,
  SPEED_MAX_MPS,
  TRACK_PAGE_DEFAULT,
  TRACK_PAGE_MAX,
} from '../../src/protocol.js';
import { parseBusMessage, parseRemoteCall } from '../../src/shared/bus-schemas.js';
import type { MirroredOrder, MirroredPosition } from '../../src/shared/record-schemas.js';

const NOW = Date.UTC(2026, 10, 26, 12);
const WINDOW = timeWindow(NOW, 30);
const q = (s: string) => new URLSearchParams(s);
const msgOf = (r: { ok: true } | { ok: false; msg: string }) => (r.ok ? 'ok' : r.msg);

// Compile-time: what the state mirror hands back is what the actors run on.
const _order: (m: MirroredOrder) => OrderRecord = (m) => m;
const _position: (m: MirroredPosition) => LivePosition = (m) => m.pos;
void _order;
void _position;

describe('HTTP parameters and queries, checked by the compiled schemas', () => {
  it('answers the same sentences as before for every bad parameter', () => {
    assert.equal(msgOf(checkId('o 1', 'order')), `order id must be 1-${ID_MAX_LENGTH} letters, digits or ._:@-`);
    assert.equal(
      msgOf(checkId('x'.repeat(ID_MAX_LENGTH + 1), 'technician')),
      'technician id must be 1-128 letters, digits or ._:@-',
    );
    assert.equal(msgOf(trackQuery(q('from=abc'), NOW)), 'from and to must be times in ms since the epoch');
    assert.equal(msgOf(trackQuery(q('to=1.5'), NOW)), 'from and to must be times in ms since the epoch');
    assert.equal(msgOf(trackQuery(q('to=1000'), NOW)), 'from and to must be times in ms since the epoch');
    assert.equal(msgOf(trackQuery(q('from=20&to=10'), NOW)), 'from must not be after to');
    for (const limit of ['0', '2.5', String(TRACK_PAGE_MAX + 1), 'x']) {
      assert.equal(msgOf(trackQuery(q(`limit=${limit}`), NOW)), 'limit must be a whole number in [1, 10000]', limit);
    }
    assert.equal(msgOf(alertsQuery(q('state=bogus'))), 'state must be one of open, acknowledged, resolved');
    assert.equal(msgOf(nearbyQuery(q('lat=1'))), 'lon must be in [-180, 180]');
    assert.equal(msgOf(nearbyQuery(q('lon=1'))), 'lat must be in [-90, 90]');
    assert.equal(msgOf(nearbyQuery(q('lat=91&lon=2'))), 'lat must be in [-90, 90]');
    // Several bad parameters: the first in the order they are explained, as before.
    assert.equal(msgOf(nearbyQuery(q('lat=91&lon=200&radius=-5'))), 'lat must be in [-90, 90]');
    assert.equal(msgOf(nearbyQuery(q('lat=1&lon=2&radius=-5'))), 'radius must be in (0, 100000] metres');
    assert.equal(
      msgOf(nearbyQuery(q(`lat=1&lon=2&radius=${MAX_RADIUS_M + 1}`))),
      'radius must be in (0, 100000] metres',
    );
  });

  it('fills in the defaults and keeps good values', () => {
    assert.deepEqual(trackQuery(q(''), NOW), {
      ok: true,
      value: { from: NOW - 86_400_000, to: NOW, limit: TRACK_PAGE_DEFAULT },
    });
    assert.deepEqual(trackQuery(q(`from=5&to=9&limit=${TRACK_PAGE_MAX}`), NOW), {
      ok: true,
      value: { from: 5, to: 9, limit: TRACK_PAGE_MAX },
    });
    assert.deepEqual(nearbyQuery(q('lat=1&lon=2')), {
      ok: true,
      value: { lat: 1, lon: 2, radius: NEARBY_DEFAULT_RADIUS_M },
    });
    assert.deepEqual(alertsQuery(q('state=open')), { ok: true, value: { state: 'open' } });
    assert.deepEqual(alertsQuery(q('')), { ok: true, value: {} });
    assert.deepEqual(checkId('tech-1', 'technician'), { ok: true, value: 'tech-1' });
  });
});

describe('one limit wherever a value arrives', () => {
  const note = (n: number) => 'x'.repeat(n);

  it(`a note is at most ${NOTE_MAX_LENGTH} characters in an sos, a resolve and a forwarded resolve`, () => {
    const sos = (n: number) =>
      validateDeviceMessage({ t: 'sos', seq: 1, ts: NOW, lat: 1, lon: 2, note: note(n) }, WINDOW);
    const resolve = (n: number) => ({ t: 'resolve', seq: 1, id: 'a-1', note: note(n) });
    const forwarded = (n: number) => parseRemoteCall('safety', { operator: 'op', msg: resolve(n) });
    assert.ok(sos(NOTE_MAX_LENGTH).ok);
    assert.ok(validateSafetyMessage(resolve(NOTE_MAX_LENGTH)).ok);
    assert.notEqual(forwarded(NOTE_MAX_LENGTH), null);
    assert.equal(sos(NOTE_MAX_LENGTH + 1).ok, false);
    assert.equal(validateSafetyMessage(resolve(NOTE_MAX_LENGTH + 1)).ok, false);
    assert.equal(forwarded(NOTE_MAX_LENGTH + 1), null);
  });

  it('a batch point has the limits of a ping', () => {
    for (const [field, index, bad] of [
      ['acc', 3, ACCURACY_MAX_M * 2],
      ['spd', 4, SPEED_MAX_MPS * 2],
      ['hdg', 5, 361],
      ['lat', 1, 90.5],
    ] as const) {
      const ping = validateDeviceMessage({ t: 'ping', seq: 1, ts: NOW, lat: 1, lon: 2, [field]: bad }, WINDOW);
      const pt = [NOW, 1, 2, 0, 0, 0];
      pt[index] = bad;
      const batch = validateDeviceMessage({ t: 'batch', seq: 1, pts: [pt] }, WINDOW);
      assert.match(msgOf(ping), new RegExp(`field ${field}`));
      assert.match(msgOf(batch), new RegExp(`field pts\\.0: ${field} must be in \\[`));
    }
    assert.equal(
      msgOf(validateDeviceMessage({ t: 'batch', seq: 1, pts: [[-1, 1, 2]] }, WINDOW)),
      'field pts.0: ts must be a non-negative integer',
    );
  });

  it('an order polygon has the same bounds at the gateway and on the node bus', () => {
    const body = { technician: 't1', lat: 1, lon: 2, scheduledAt: 3, durationMin: 30 };
    const ring = (n: number) => Array.from({ length: n }, (_, i) => [2 + i / 1e4, 1]);
    for (const [n, ok] of [
      [POLYGON_MIN_POINTS - 1, false],
      [POLYGON_MIN_POINTS, true],
      [POLYGON_MAX_POINTS, true],
      [POLYGON_MAX_POINTS + 1, false],
    ] as const) {
      const input = { ...body, polygon: ring(n) };
      assert.equal(validateOrderInput(input).ok, ok, `gateway, ${n} points`);
      assert.equal(parseRemoteCall('putOrder', { id: 'o1', input }) !== null, ok, `node bus, ${n} points`);
    }
  });

  it(`a batch is at most ${MAX_BATCH_POINTS} points`, () => {
    const pts = (n: number) => Array.from({ length: n }, (_, i) => [NOW - i, 1, 2]);
    assert.ok(validateDeviceMessage({ t: 'batch', seq: 1, pts: pts(MAX_BATCH_POINTS) }, WINDOW).ok);
    assert.equal(validateDeviceMessage({ t: 'batch', seq: 1, pts: pts(MAX_BATCH_POINTS + 1) }, WINDOW).ok, false);
  });
});

describe('node bus messages and requests from peer nodes, checked by the compiled schemas', () => {
  it('accepts the requests a node forwards, keeping only their fields', () => {
    assert.deepEqual(parseRemoteCall('safety', { operator: 'op', msg: { t: 'ack', seq: 3, id: 'a-1' }, x: 1 }), {
      op: 'safety',
      operator: 'op',
      msg: { t: 'ack', seq: 3, id: 'a-1' },
    });
    const input = {
      technician: 't1',
      lat: 1,
      lon: 2,
      scheduledAt: 3,
      durationMin: 30,
      polygon: [
        [2, 1],
        [2.1, 1],
        [2.1, 1.1],
      ],
    };
    assert.deepEqual(parseRemoteCall('putOrder', { id: 'o1', input }), { op: 'putOrder', id: 'o1', input });
    assert.deepEqual(parseRemoteCall('getTechnician', { id: 't1' }), { op: 'getTechnician', id: 't1' });
    assert.deepEqual(parseRemoteCall('eraseTechnician', { id: 't1' }), { op: 'eraseTechnician', id: 't1' });
  });

  it('refuses malformed or unknown requests instead of running them', () => {
    const bad: [string, unknown][] = [
      ['safety', { operator: 'op', msg: { t: 'delete', seq: 1, id: 'a-1' } }],
      ['safety', { operator: '', msg: { t: 'ack', seq: 1, id: 'a-1' } }],
      ['safety', { operator: 'op', msg: { t: 'resolve', seq: 1, id: 'a-1', note: 7 } }],
      ['putOrder', { id: 'o1', input: { technician: 't1', lat: 'x', lon: 2, scheduledAt: 3, durationMin: 30 } }],
      [
        'putOrder',
        { id: 'o1', input: { technician: 't1', lat: 1, lon: 2, scheduledAt: 3, durationMin: 30, polygon: [[1]] } },
      ],
      ['cancelOrder', { id: 'x'.repeat(500) }],
      ['cancelOrder', { id: 'o 1/../x' }],
      ['getOrder', null],
      ['dropDatabase', { id: 'o1' }],
      ['toString', { id: 'o1' }],
    ];
    for (const [op, args] of bad) assert.equal(parseRemoteCall(op, args), null, `${op} ${JSON.stringify(args)}`);
  });

  it('parses each kind of bus message and refuses the rest', () => {
    const call = { t: 'call', req: 'n1:0', from: 'n1', op: 'getOrder', args: { id: 'o1' } };
    assert.deepEqual(parseBusMessage(call), call);
    assert.deepEqual(parseBusMessage({ t: 'reply', req: 'n1:0', out: { ok: true, value: { id: 'o1' } } }), {
      t: 'reply',
      req: 'n1:0',
      out: { ok: true, value: { id: 'o1' } },
    });
    const refused = { ok: false, code: 'unavailable', msg: 'retry', extras: { retryMs: 5 } };
    assert.deepEqual(parseBusMessage({ t: 'reply', req: 'r', out: refused }), { t: 'reply', req: 'r', out: refused });
    assert.deepEqual(parseBusMessage({ t: 'release', tech: 't1', from: 'n2' }), {
      t: 'release',
      tech: 't1',
      from: 'n2',
    });
    assert.deepEqual(parseBusMessage({ t: 'release', tech: 't1' }), { t: 'release', tech: 't1' });
    const push = { t: 'sos_status', incident: 'a-1', state: 'acknowledged' };
    assert.deepEqual(parseBusMessage({ t: 'push', tech: 't1', msg: push }), { t: 'push', tech: 't1', msg: push });
    for (const m of [
      null,
      [],
      'call',
      { t: 'call', req: '', from: 'n1', op: 'getOrder' },
      { t: 'call', req: 'r', from: 'x'.repeat(300), op: 'getOrder' },
      { t: 'reply', req: 'r', out: { ok: true } },
      { t: 'reply', req: 'r', out: { ok: false, code: 'nope', msg: 'x' } },
      { t: 'release', tech: 7 },
      { t: 'push', tech: 't1', msg: { t: 'snapshot', alerts: [] } },
      { t: 'teleport' },
      { t: 'hasOwnProperty' },
    ]) {
      assert.equal(parseBusMessage(m), null, JSON.stringify(m));
    }
  });
});

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('the limits in the README are the ones in the code', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const phrase of [
    `\`batch\` size (${MAX_BATCH_POINTS} points)`,
    `are 1-${ID_MAX_LENGTH} characters of letters, digits and \`._:@-\``,
    `A note (\`sos\`, \`resolve\`) is at most ${NOTE_MAX_LENGTH} characters`,
    `default ${TRACK_PAGE_DEFAULT}, at most\n${TRACK_PAGE_MAX}`,
    `\`radius\` defaults to ${NEARBY_DEFAULT_RADIUS_M} m and may be at most ${MAX_RADIUS_M / 1000} km`,
    `at least ${POLYGON_MIN_POINTS} and at most ${POLYGON_MAX_POINTS} points`,
  ]) {
    it(`says ${JSON.stringify(phrase)}`, () => assert.ok(readme.includes(phrase), phrase));
  }
});

describe('the browser console loads no TypeBox', () => {
  it('every module reachable from the console imports only relative paths', () => {
    const web = join(root, 'dist', 'web');
    const main = join(web, 'console', 'app', 'main.js');
    assert.ok(existsSync(main), 'the console build is missing: run npm run build');
    const seen = new Set<string>();
    const queue = [main];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        assert.ok(spec.startsWith('.'), `${file} imports ${spec}`);
        queue.push(resolve(dirname(file), spec));
      }
    }
    assert.ok(seen.has(join(web, 'protocol.js')));
    assert.ok(seen.has(join(web, 'protocol', 'limits.js')));
  });
});

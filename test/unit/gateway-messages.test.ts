import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrame, encodeMessage } from '../../src/gateway/codec.js';
import { validateDeviceMessage, validateOrderInput, validateSafetyMessage } from '../../src/gateway/messages.js';
import { crsQuery } from '../../src/gateway/queries.js';
import { timeWindow } from '../../src/gateway/time-window.js';
import { distanceMeters, fromWgs84 } from '../../src/geofence/index.js';

const NOW = Date.UTC(2026, 10, 26, 12);
const WINDOW = timeWindow(NOW, 30);

type Case = [name: string, frame: Record<string, unknown>, expected: RegExp | 'ok'];

const deviceCases: Case[] = [
  ['ping', { t: 'ping', seq: 1, ts: NOW, lat: 52.5, lon: 13.4 }, 'ok'],
  [
    'ping with optionals',
    { t: 'ping', seq: 1, ts: NOW, lat: 52.5, lon: 13.4, acc: 5, spd: 3, hdg: 359, bat: 80 },
    'ok',
  ],
  ['ping lat out of range', { t: 'ping', seq: 1, ts: NOW, lat: 90.5, lon: 0 }, /field lat/],
  ['ping lon out of range', { t: 'ping', seq: 1, ts: NOW, lat: 0, lon: -180.1 }, /field lon/],
  ['ping NaN', { t: 'ping', seq: 1, ts: NOW, lat: Number.NaN, lon: 0 }, /field lat/],
  ['ping Infinity', { t: 'ping', seq: 1, ts: NOW, lat: 0, lon: Number.POSITIVE_INFINITY }, /field lon/],
  ['ping ts as string', { t: 'ping', seq: 1, ts: String(NOW), lat: 0, lon: 1 }, /field ts/],
  ['ping fractional ts', { t: 'ping', seq: 1, ts: NOW + 0.5, lat: 0, lon: 1 }, /field ts/],
  ['ping 5 min in future is fine', { t: 'ping', seq: 1, ts: NOW + 300_000, lat: 0, lon: 1 }, 'ok'],
  ['ping over 5 min in future', { t: 'ping', seq: 1, ts: NOW + 300_001, lat: 0, lon: 1 }, /future/],
  ['ping negative acc', { t: 'ping', seq: 1, ts: NOW, lat: 0, lon: 1, acc: -1 }, /field acc/],
  ['ping missing lat', { t: 'ping', seq: 1, ts: NOW, lon: 1 }, /lat/],
  [
    'batch',
    {
      t: 'batch',
      seq: 2,
      pts: [
        [NOW, 1, 2],
        [NOW - 1000, 1, 2, 5, 1, 90],
      ],
    },
    'ok',
  ],
  ['batch empty', { t: 'batch', seq: 2, pts: [] }, 'ok'],
  ['batch point too short', { t: 'batch', seq: 2, pts: [[NOW, 1]] }, /pts/],
  [
    'batch point out of range',
    {
      t: 'batch',
      seq: 2,
      pts: [
        [NOW, 1, 2],
        [NOW, 91, 2],
      ],
    },
    /pts\.1: lat/,
  ],
  ['batch too many', { t: 'batch', seq: 2, pts: Array.from({ length: 1001 }, () => [NOW, 1, 2]) }, /pts/],
  ['depart', { t: 'depart', seq: 3, order: 'o-1' }, 'ok'],
  ['depart with ts', { t: 'depart', seq: 3, order: 'o-1', ts: NOW }, 'ok'],
  ['depart bad order id', { t: 'depart', seq: 3, order: 'o 1/../x' }, /field order/],
  ['depart empty order id', { t: 'depart', seq: 3, order: '' }, /field order/],
  ['checkin', { t: 'checkin', seq: 4, order: 'o-1', ts: NOW, lat: 1, lon: 2, acc: 10 }, 'ok'],
  ['checkin without position', { t: 'checkin', seq: 4, order: 'o-1', ts: NOW }, /lat|lon/],
  ['start', { t: 'start', seq: 5, order: 'o-1' }, 'ok'],
  ['complete', { t: 'complete', seq: 6, order: 'o-1' }, 'ok'],
  ['complete without order', { t: 'complete', seq: 6 }, /order/],
  ['sos', { t: 'sos', seq: 7, ts: NOW, lat: 1, lon: 2, note: 'help' }, 'ok'],
  ['sos note too long', { t: 'sos', seq: 7, ts: NOW, lat: 1, lon: 2, note: 'x'.repeat(1001) }, /field note/],
  ['sos_cancel', { t: 'sos_cancel', seq: 8, incident: 'a-1' }, 'ok'],
  ['unknown type', { t: 'teleport', seq: 9 }, /unknown message type "teleport"/],
  ['safety type on device', { t: 'resolve', seq: 9, id: 'a' }, /unknown message type/],
  ['no t', { seq: 9 }, /field t/],
  ['no seq', { t: 'ping', ts: NOW, lat: 0, lon: 1 }, /field seq/],
  ['negative seq', { t: 'ping', seq: -1, ts: NOW, lat: 0, lon: 1 }, /field seq/],
  ['ping in gcj02', { t: 'ping', seq: 1, ts: NOW, lat: 31.23, lon: 121.47, crs: 'gcj02' }, 'ok'],
  ['ping in bd09', { t: 'ping', seq: 1, ts: NOW, lat: 31.23, lon: 121.47, crs: 'bd09' }, 'ok'],
  ['ping in wgs84', { t: 'ping', seq: 1, ts: NOW, lat: 31.23, lon: 121.47, crs: 'wgs84' }, 'ok'],
  ['ping unknown crs', { t: 'ping', seq: 1, ts: NOW, lat: 31.23, lon: 121.47, crs: 'cgcs2000' }, /field crs/],
  ['ping crs upper case', { t: 'ping', seq: 1, ts: NOW, lat: 31.23, lon: 121.47, crs: 'GCJ02' }, /field crs/],
  ['checkin unknown crs', { t: 'checkin', seq: 4, order: 'o-1', ts: NOW, lat: 1, lon: 2, crs: 1 }, /field crs/],
  ['sos unknown crs', { t: 'sos', seq: 7, ts: NOW, lat: 1, lon: 2, crs: '' }, /field crs/],
  ['batch unknown crs', { t: 'batch', seq: 2, pts: [], crs: 'mars' }, /field crs/],
];

describe('device message validation', () => {
  for (const [name, frame, expected] of deviceCases) {
    it(name, () => {
      const result = validateDeviceMessage(frame, WINDOW);
      if (expected === 'ok') assert.ok(result.ok, result.ok ? '' : result.msg);
      else {
        assert.equal(result.ok, false);
        if (!result.ok) assert.match(result.msg, expected);
      }
    });
  }

  it('echoes a valid seq on refusal and null when seq itself is bad', () => {
    const refused = validateDeviceMessage({ t: 'ping', seq: 42, lat: 0 }, WINDOW);
    assert.equal(!refused.ok && refused.seq, 42);
    const noSeq = validateDeviceMessage({ t: 'ping', seq: 'x' }, WINDOW);
    assert.equal(!noSeq.ok && noSeq.seq, null);
  });

  it('leaves batch points outside the time window out, and counts them', () => {
    const pts = [
      [NOW, 1, 2],
      [NOW + 400_000, 1, 2],
      [NOW - 31 * 86_400_000, 1, 2],
    ];
    const result = validateDeviceMessage({ t: 'batch', seq: 2, pts }, WINDOW);
    assert.ok(result.ok);
    assert.deepEqual(result.value, { t: 'batch', seq: 2, pts: [[NOW, 1, 2]] });
    assert.equal(result.outOfWindow, 2);
  });

  it('keeps only protocol fields', () => {
    const result = validateDeviceMessage(
      { t: 'ping', seq: 1, ts: NOW, lat: 1, lon: 2, extra: 'x'.repeat(100) },
      WINDOW,
    );
    assert.ok(result.ok);
    assert.deepEqual(result.value, { t: 'ping', seq: 1, ts: NOW, lat: 1, lon: 2 });
  });
});

describe('coordinate systems on input', () => {
  // A customer's door in Shanghai, in WGS-84, and the same place as AMap (GCJ-02) and Baidu (BD-09) give it.
  const door = { lat: 31.2304, lon: 121.4737 };
  const inGcj = fromWgs84('gcj02', door.lat, door.lon);
  const inBd = fromWgs84('bd09', door.lat, door.lon);
  const atDoor = (p: { lat: number; lon: number }) => distanceMeters(p.lat, p.lon, door.lat, door.lon) < 0.01;

  it('converts a ping, checkin and sos to WGS-84 and drops crs', () => {
    for (const [crs, p] of [
      ['gcj02', inGcj],
      ['bd09', inBd],
    ] as const) {
      for (const frame of [
        { t: 'ping', seq: 1, ts: NOW, ...p, crs },
        { t: 'checkin', seq: 2, order: 'o-1', ts: NOW, ...p, crs },
        { t: 'sos', seq: 3, ts: NOW, ...p, crs },
      ]) {
        const result = validateDeviceMessage(frame, WINDOW);
        assert.ok(result.ok, result.ok ? '' : result.msg);
        const value = result.value as { lat: number; lon: number; crs?: string };
        assert.ok(atDoor(value), `${frame.t} in ${crs}: ${value.lat}, ${value.lon}`);
        assert.equal('crs' in value, false);
      }
    }
  });

  it('converts every point of a batch, keeping the other fields', () => {
    const result = validateDeviceMessage(
      {
        t: 'batch',
        seq: 2,
        crs: 'gcj02',
        pts: [
          [NOW, inGcj.lat, inGcj.lon, 5, 1, 90],
          [NOW - 1000, inGcj.lat, inGcj.lon],
        ],
      },
      WINDOW,
    );
    assert.ok(result.ok && result.value.t === 'batch');
    const pts = result.value.pts;
    assert.equal(pts.length, 2);
    assert.ok(atDoor({ lat: pts[0]![1], lon: pts[0]![2] }));
    assert.deepEqual([pts[0]![0], pts[0]![3], pts[0]![4], pts[0]![5]], [NOW, 5, 1, 90]);
    assert.equal(pts[1]!.length, 3);
    assert.equal('crs' in result.value, false);
  });

  it('a wgs84 or absent crs leaves positions untouched', () => {
    const result = validateDeviceMessage({ t: 'ping', seq: 1, ts: NOW, ...door, crs: 'wgs84' }, WINDOW);
    assert.ok(result.ok);
    assert.deepEqual(result.value, { t: 'ping', seq: 1, ts: NOW, ...door });
  });

  it('converts an order body, polygon included, and reports its crs', () => {
    const corner = fromWgs84('gcj02', door.lat + 0.001, door.lon);
    const result = validateOrderInput({
      technician: 'tech-1',
      ...inGcj,
      scheduledAt: NOW,
      durationMin: 30,
      crs: 'gcj02',
      polygon: [
        [inGcj.lon, inGcj.lat],
        [corner.lon, corner.lat],
        [inGcj.lon + 0.001, inGcj.lat],
      ],
    });
    assert.ok(result.ok);
    assert.equal(result.crs, 'gcj02');
    assert.ok(atDoor(result.value));
    const [first, second] = result.value.polygon!;
    assert.ok(atDoor({ lat: first![1], lon: first![0] }));
    assert.ok(distanceMeters(second![1], second![0], door.lat + 0.001, door.lon) < 0.01);
    assert.equal('crs' in result.value, false);
    const unknown = validateOrderInput({ technician: 't', ...door, scheduledAt: NOW, durationMin: 30, crs: 'x' });
    assert.equal(unknown.ok, false);
    if (!unknown.ok) assert.match(unknown.msg, /crs/);
  });

  it('?crs= of queries', () => {
    assert.deepEqual(crsQuery(new URLSearchParams('')), { ok: true, value: 'wgs84' });
    assert.deepEqual(crsQuery(new URLSearchParams(''), 'bd09'), { ok: true, value: 'bd09' });
    assert.deepEqual(crsQuery(new URLSearchParams('crs=gcj02')), { ok: true, value: 'gcj02' });
    assert.deepEqual(crsQuery(new URLSearchParams('crs=wgs')), {
      ok: false,
      msg: 'crs must be one of wgs84, gcj02, bd09',
    });
  });
});

describe('safety message validation', () => {
  it('accepts ack and resolve', () => {
    assert.deepEqual(validateSafetyMessage({ t: 'ack', seq: 1, id: 'a-1' }), {
      ok: true,
      value: { t: 'ack', seq: 1, id: 'a-1' },
    });
    assert.deepEqual(validateSafetyMessage({ t: 'resolve', seq: 2, id: 'a-1', note: 'called back' }), {
      ok: true,
      value: { t: 'resolve', seq: 2, id: 'a-1', note: 'called back' },
    });
  });
  it('refuses device messages and bad ids', () => {
    assert.equal(validateSafetyMessage({ t: 'ping', seq: 1 }).ok, false);
    assert.equal(validateSafetyMessage({ t: 'ack', seq: 1, id: 7 }).ok, false);
  });
});

describe('order body validation', () => {
  const body = { technician: 'tech-1', lat: 52.5, lon: 13.4, scheduledAt: NOW, durationMin: 60 };
  it('accepts a minimal and a full body', () => {
    assert.ok(validateOrderInput(body).ok);
    const full = validateOrderInput({
      ...body,
      radius: 80,
      polygon: [
        [13.4, 52.5],
        [13.5, 52.5],
        [13.5, 52.6],
      ],
    });
    assert.ok(full.ok);
  });
  for (const [field, value] of [
    ['technician', ''],
    ['lat', 91],
    ['lon', 'east'],
    ['radius', 0],
    ['scheduledAt', -5],
    ['durationMin', 0],
    ['polygon', [[1, 2]]],
  ] as const) {
    it(`refuses a bad ${field}`, () => {
      const result = validateOrderInput({ ...body, [field]: value });
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.msg, new RegExp(field));
    });
  }
  it('refuses a body that is not an object', () => {
    assert.equal(validateOrderInput([1, 2]).ok, false);
    assert.equal(validateOrderInput(null).ok, false);
  });
});

describe('frame decoding', () => {
  it('decodes a map and refuses everything else', () => {
    assert.deepEqual(decodeFrame(encodeMessage({ t: 'ack', seq: 1 })), { ok: true, value: { t: 'ack', seq: 1 } });
    for (const bytes of [[0x93, 1, 2, 3], [0xc1], [0xa3, 0x61, 0x62, 0x63], [0x81], [], [0xc4, 0x01, 0x00]]) {
      assert.equal(decodeFrame(Uint8Array.from(bytes)).ok, false, `bytes ${JSON.stringify(bytes)}`);
    }
  });
});

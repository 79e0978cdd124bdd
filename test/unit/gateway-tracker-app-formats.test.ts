/**
 * Reading what tracker apps send (src/gateway/tracker-app-formats.ts), from requests shaped
 * as the apps' documentation and source show them: OsmAnd's and Traccar Client's query
 * strings, Traccar Client's JSON record (its location template), and OwnTracks' HTTP-mode
 * messages. Timestamps in every form, units, unknown values (-1) and refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  parseOsmandQuery,
  parseOwnTracks,
  parseTimestamp,
  parseTraccarJson,
} from '../../src/gateway/tracker-app-formats.js';
import { basicCredentials } from '../../src/gateway/tracker-apps.js';
import { ownTracksLocation } from '../support/fixtures.js';

const T = Date.UTC(2026, 10, 26, 12, 30, 15); // 2026-11-26T12:30:15Z
const KNOT = 1852 / 3600;

describe('timestamps', () => {
  const table: Array<[string, string | number, number | null]> = [
    ['seconds', String(T / 1000), T],
    ['milliseconds', String(T), T],
    ['decimal seconds', `${T / 1000}.25`, T + 250],
    ['ISO 8601 with Z and ms (Traccar Client JSON)', '2026-11-26T12:30:15.000Z', T],
    ['ISO 8601 with an offset', '2026-11-26T20:30:15+08:00', T],
    ['ISO 8601 with a compact offset', '2026-11-26T07:30:15-0500', T],
    ['ISO 8601 without a zone is UTC', '2026-11-26T12:30:15', T],
    ['yyyy-MM-dd HH:mm:ss in UTC', '2026-11-26 12:30:15', T],
    ['JSON number of seconds', T / 1000, T],
    ['a month that does not exist', '2026-13-01 00:00:00', null],
    ['February 30th', '2026-02-30T00:00:00Z', null],
    ['hour 24', '2026-11-26 24:00:00', null],
    ['words', 'yesterday', null],
    ['hex', '0x10', null],
    ['negative', '-5', null],
    ['empty', '', null],
    ['NaN', Number.NaN, null],
  ];
  for (const [name, value, want] of table) {
    it(`${name}: ${JSON.stringify(value)}`, () => assert.equal(parseTimestamp(value), want));
  }

  it('seconds and milliseconds of the same instant agree (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2_147_483_646 }), (s) => parseTimestamp(String(s)) === s * 1000));
    fc.assert(fc.property(fc.integer({ min: 2_147_483_647, max: 8.64e15 }), (ms) => parseTimestamp(String(ms)) === ms));
  });

  it('every ISO 8601 string JavaScript writes reads back (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4102444800000 }),
        (ms) => parseTimestamp(new Date(ms).toISOString()) === ms,
      ),
    );
  });
});

describe('OsmAnd protocol query string', () => {
  it('OsmAnd: lat={0}&lon={1}&timestamp={2}&accuracy={3}&altitude={4}&speed={5}&bearing={6}', () => {
    const q = new URLSearchParams(
      `id=tech-1&lat=52.520008&lon=13.404954&timestamp=${T}&accuracy=4.5&altitude=34.0&speed=10.0&bearing=271.5`,
    );
    const parsed = parseOsmandQuery(q);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, {
      id: 'tech-1',
      fixes: [{ ts: T, lat: 52.520008, lon: 13.404954, acc: 4.5, spd: 10 * KNOT, hdg: 271.5, sos: false }],
    });
  });

  it('Traccar Client (query form): seconds, knots, batt, charge, alarm=sos', () => {
    const q = new URLSearchParams(
      `id=tech-1&timestamp=${T / 1000}&lat=31.2304&lon=121.4737&speed=0.0&bearing=0.0&altitude=4.0&accuracy=12.0&batt=87.0&charge=true&alarm=sos`,
    );
    const parsed = parseOsmandQuery(q);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.fixes, [
      { ts: T, lat: 31.2304, lon: 121.4737, acc: 12, spd: 0, hdg: 0, bat: 87, sos: true },
    ]);
  });

  it('deviceid, location=lat,lon, heading and a spaced UTC time (form body)', () => {
    const parsed = parseOsmandQuery(
      new URLSearchParams('deviceid=tech-2&location=45.1,7.2&heading=90&timestamp=2026-11-26+12%3A30%3A15'),
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, { id: 'tech-2', fixes: [{ ts: T, lat: 45.1, lon: 7.2, hdg: 90, sos: false }] });
  });

  it('unknown values (-1) and empty values are left out, not refused', () => {
    const parsed = parseOsmandQuery(
      new URLSearchParams(`id=t&lat=1&lon=2&timestamp=${T}&speed=-1&bearing=-1&accuracy=-1&batt=-1&altitude=`),
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.fixes, [{ ts: T, lat: 1, lon: 2, sos: false }]);
  });

  it('a request without id is read (id: null) for the caller to answer 400', () => {
    const parsed = parseOsmandQuery(new URLSearchParams(`lat=1&lon=2&timestamp=${T}`));
    assert.ok(parsed.ok);
    assert.equal(parsed.value.id, null);
  });

  const refusals: Array<[string, string, RegExp]> = [
    ['no lat', `id=t&lon=2&timestamp=${T}`, /lat and lon are required/],
    ['lat not a number', `id=t&lat=north&lon=2&timestamp=${T}`, /lat must be a number/],
    ['lon in hex', `id=t&lat=1&lon=0x2&timestamp=${T}`, /lon must be a number/],
    ['no timestamp', 'id=t&lat=1&lon=2', /timestamp is required/],
    ['bad timestamp', 'id=t&lat=1&lon=2&timestamp=soon', /timestamp must be/],
    ['speed not a number', `id=t&lat=1&lon=2&timestamp=${T}&speed=fast`, /speed must be a number/],
    ['batt Infinity', `id=t&lat=1&lon=2&timestamp=${T}&batt=Infinity`, /batt must be a number/],
    ['bad location', `id=t&location=1;2&timestamp=${T}`, /location must be/],
  ];
  for (const [name, query, want] of refusals) {
    it(`refuses ${name}`, () => {
      const parsed = parseOsmandQuery(new URLSearchParams(query));
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.msg, want);
    });
  }
});

/** One record exactly as Traccar Client's location template renders it. */
function traccarRecord(over: Record<string, unknown> = {}, coords: Record<string, unknown> = {}) {
  return {
    timestamp: '2026-11-26T12:30:15.000Z',
    coords: { latitude: 52.52, longitude: 13.405, accuracy: 8.5, speed: 3.2, heading: 180.4, altitude: 41, ...coords },
    is_moving: true,
    odometer: 1234.5,
    event: 'motionchange',
    battery: { level: 0.83, is_charging: false },
    activity: { type: 'in_vehicle' },
    extras: {},
    _: `&id=tech-1&lat=52.52&lon=13.405&timestamp=2026-11-26T12:30:15.000Z&`,
    ...over,
  };
}

describe("Traccar Client's JSON", () => {
  it('reads a record: m/s, battery fraction, ISO time', () => {
    const parsed = parseTraccarJson({ location: traccarRecord(), device_id: 'tech-1' });
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, {
      id: 'tech-1',
      fixes: [{ ts: T, lat: 52.52, lon: 13.405, acc: 8.5, spd: 3.2, hdg: 180.4, bat: 83, sos: false }],
    });
  });

  it('unknown speed, heading and battery (-1) are left out', () => {
    const parsed = parseTraccarJson({
      location: traccarRecord({ battery: { level: -1, is_charging: false } }, { speed: -1, heading: -1 }),
      device_id: 'tech-1',
    });
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.fixes, [{ ts: T, lat: 52.52, lon: 13.405, acc: 8.5, sos: false }]);
  });

  it("an SOS in extras (the app's SOS button) or as location.alarm", () => {
    for (const over of [{ extras: { alarm: 'sos' } }, { alarm: 'sos' }]) {
      const parsed = parseTraccarJson({ location: traccarRecord(over), device_id: 'tech-1' });
      assert.ok(parsed.ok && parsed.value.fixes[0]!.sos, JSON.stringify(over));
    }
    const other = parseTraccarJson({ location: traccarRecord({ extras: { heartbeat: true } }), device_id: 'tech-1' });
    assert.ok(other.ok && !other.value.fixes[0]!.sos);
  });

  it('a batch upload: location as an array of records', () => {
    const parsed = parseTraccarJson({
      location: [traccarRecord(), traccarRecord({ timestamp: '2026-11-26T12:30:45.000Z' })],
      device_id: 'tech-1',
    });
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.value.fixes.map((f) => f.ts),
      [T, T + 30_000],
    );
  });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /JSON object/],
    ['no location', { device_id: 'tech-1' }, /location is required/],
    ['empty batch', { device_id: 'tech-1', location: [] }, /at least one/],
    [
      'too many records',
      { device_id: 't', location: Array.from({ length: 1001 }, () => traccarRecord()) },
      /at most 1000/,
    ],
    ['no coords', { device_id: 't', location: { timestamp: '2026-11-26T12:30:15Z' } }, /location.coords is required/],
    ['latitude as a string', { device_id: 't', location: traccarRecord({}, { latitude: '52.5' }) }, /latitude/],
    ['bad timestamp', { device_id: 't', location: traccarRecord({ timestamp: 'now' }) }, /location.timestamp/],
    ['bad record in a batch', { device_id: 't', location: [traccarRecord(), 7] }, /location.1 must be an object/],
    ['device_id an object', { device_id: {}, location: traccarRecord() }, /device_id/],
    ['battery level a string', { device_id: 't', location: traccarRecord({ battery: { level: 'x' } }) }, /battery/],
  ];
  for (const [name, body, want] of refusals) {
    it(`refuses ${name}`, () => {
      const parsed = parseTraccarJson(body);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.msg, want);
    });
  }

  it('a body without device_id is read (id: null) for the caller to answer 400', () => {
    const parsed = parseTraccarJson({ location: traccarRecord() });
    assert.ok(parsed.ok && parsed.value.id === null);
  });
});

describe('OwnTracks HTTP mode', () => {
  // As the OwnTracks booklet's JSON page shows a location message.
  const location = ownTracksLocation('tech-1', 'te', T / 1000);

  it('a location is a fix: tst in seconds, vel in km/h', () => {
    const parsed = parseOwnTracks(location);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, {
      ts: T,
      lat: 48.856826,
      lon: 2.292713,
      acc: 13,
      spd: 10,
      hdg: 270,
      bat: 84,
      sos: false,
    });
  });

  it('unknown vel and cog (-1) are left out', () => {
    const parsed = parseOwnTracks({ ...location, vel: -1, cog: -1 });
    assert.ok(parsed.ok && parsed.value !== null);
    assert.equal('spd' in parsed.value, false);
    assert.equal('hdg' in parsed.value, false);
  });

  it('other message types are not fixes', () => {
    for (const _type of ['transition', 'waypoint', 'lwt', 'card', 'status', 'encrypted', 'steps']) {
      assert.deepEqual(parseOwnTracks({ _type, lat: 1, lon: 2, tst: 3 }), { ok: true, value: null });
    }
  });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['no _type', { lat: 1, lon: 2, tst: 3 }, /_type/],
    ['not an object', 'location', /JSON object/],
    ['no tst', { _type: 'location', lat: 1, lon: 2 }, /tst/],
    ['tst in ms with a fraction', { _type: 'location', lat: 1, lon: 2, tst: 1.5 }, /tst/],
    ['lat as a string', { _type: 'location', lat: '1', lon: 2, tst: 3 }, /lat/],
    ['acc as a string', { _type: 'location', lat: 1, lon: 2, tst: 3, acc: 'good' }, /acc/],
  ];
  for (const [name, body, want] of refusals) {
    it(`refuses ${name}`, () => {
      const parsed = parseOwnTracks(body);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.msg, want);
    });
  }

  it('Basic credentials: the user is the technician id, the password its token', () => {
    const header = `Basic ${Buffer.from('tech-1:eyJ.a.b').toString('base64')}`;
    assert.deepEqual(basicCredentials(header), { user: 'tech-1', password: 'eyJ.a.b' });
    assert.equal(basicCredentials('Bearer abc'), null);
    assert.equal(basicCredentials(`Basic ${Buffer.from('no-colon').toString('base64')}`), null);
  });
});

describe('hostile input never throws', () => {
  it('any JSON value, any query string (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        parseTraccarJson(v);
        parseOwnTracks(v);
        parseTraccarJson({ device_id: 'x', location: v });
        parseTraccarJson({ device_id: 'x', location: { timestamp: '2026-11-26T12:30:15Z', coords: v } });
        return true;
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        parseOsmandQuery(new URLSearchParams(a));
        parseOsmandQuery(new URLSearchParams(`id=t&lat=1&lon=2&timestamp=${encodeURIComponent(b)}`));
        parseTimestamp(b);
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});

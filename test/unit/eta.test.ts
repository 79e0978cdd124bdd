/**
 * ETAs: the straight line, the approaching rule, and the OSRM client against a real HTTP
 * server on loopback that speaks OSRM's `/route/v1` JSON: a route answered, the cache per
 * order, one request in flight per order, and every kind of failure falling back to the
 * straight line, counted by reason.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isApproaching, OsrmEstimator, REUSE_MS, readOsrmRoute, straightLineEta } from '../../src/eta/index.js';
import { distanceMeters } from '../../src/geofence/distance.js';

const HOME = { lat: 52.52, lon: 13.405 };
/** About 1.1 km north of HOME. */
const AWAY = { lat: 52.53, lon: 13.405 };

describe('straight-line ETA', () => {
  it('is the great-circle distance at the given speed', () => {
    const eta = straightLineEta(AWAY, HOME, 10);
    const metres = distanceMeters(AWAY.lat, AWAY.lon, HOME.lat, HOME.lon);
    assert.equal(eta.metres, Math.round(metres));
    assert.equal(eta.seconds, Math.round(metres / 10));
    assert.equal(eta.source, 'straight_line');
    assert.deepEqual(straightLineEta(HOME, HOME, 8.3), { seconds: 0, metres: 0, source: 'straight_line' });
  });

  it('approaching: under APPROACH_SEC or under APPROACH_M, not at them', () => {
    const t = { APPROACH_SEC: 300, APPROACH_M: 500 };
    assert.equal(isApproaching({ seconds: 299, metres: 5000, source: 'route' }, t), true);
    assert.equal(isApproaching({ seconds: 900, metres: 499, source: 'route' }, t), true);
    assert.equal(isApproaching({ seconds: 300, metres: 500, source: 'route' }, t), false);
  });
});

describe('OSRM answers', () => {
  it('reads a route and refuses what is not one', () => {
    assert.deepEqual(readOsrmRoute({ code: 'Ok', routes: [{ duration: 301.6, distance: 2500.2 }] }), {
      seconds: 302,
      metres: 2500,
    });
    for (const bad of [null, 'x', {}, { code: 'NoRoute' }, { code: 'Ok', routes: [] }, { code: 'Ok', routes: [{}] }]) {
      assert.throws(() => readOsrmRoute(bad));
    }
    assert.throws(() => readOsrmRoute({ code: 'Ok', routes: [{ duration: -1, distance: 3 }] }));
  });
});

type Mode = 'route' | 'slow' | 'status' | 'no_route' | 'garbage';

describe('OSRM estimator on a real HTTP router', () => {
  let server: Server;
  let base = '';
  let mode: Mode = 'route';
  let requests: string[] = [];
  const fallbacks: string[] = [];
  let now = 1_000_000;

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests.push(req.url ?? '');
      const send = (status: number, body: string) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      };
      const m = /^\/route\/v1\/driving\/([-\d.]+),([-\d.]+);([-\d.]+),([-\d.]+)\?overview=false$/.exec(req.url ?? '');
      if (m === null) return send(400, JSON.stringify({ code: 'InvalidUrl', message: req.url }));
      switch (mode) {
        case 'route': {
          // A road 1.4 times the straight line at 10 m/s.
          const [lon1, lat1, lon2, lat2] = m.slice(1).map(Number) as [number, number, number, number];
          const distance = distanceMeters(lat1, lon1, lat2, lon2) * 1.4;
          return send(200, JSON.stringify({ code: 'Ok', routes: [{ duration: distance / 10, distance }] }));
        }
        case 'slow':
          setTimeout(() => send(200, JSON.stringify({ code: 'Ok', routes: [{ duration: 1, distance: 1 }] })), 2000);
          return;
        case 'status':
          return send(503, 'overloaded');
        case 'no_route':
          return send(400, JSON.stringify({ code: 'NoRoute', message: 'Impossible route' }));
        case 'garbage':
          return send(200, '{"code":"Ok","routes":[{"duration":');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    mode = 'route';
    requests = [];
    fallbacks.length = 0;
  });

  const estimator = () =>
    new OsrmEstimator({
      baseUrl: base,
      timeoutMs: 300,
      speedMps: 8,
      now: () => now,
      onFallback: (reason) => fallbacks.push(reason),
    });

  it('answers the route duration and distance, asking lon,lat;lon,lat', async () => {
    const eta = await estimator().estimate('o1', AWAY, HOME);
    assert.equal(eta.source, 'route');
    const straight = distanceMeters(AWAY.lat, AWAY.lon, HOME.lat, HOME.lon);
    assert.equal(eta.metres, Math.round(straight * 1.4));
    assert.equal(eta.seconds, Math.round((straight * 1.4) / 10));
    assert.deepEqual(requests, [`/route/v1/driving/${AWAY.lon},${AWAY.lat};${HOME.lon},${HOME.lat}?overview=false`]);
    assert.deepEqual(fallbacks, []);
  });

  it('keeps one answer per order: reused nearby and while fresh, asked again after moving or ageing', async () => {
    const e = estimator();
    await e.estimate('o1', AWAY, HOME);
    await e.estimate('o1', { lat: AWAY.lat + 0.0001, lon: AWAY.lon }, HOME); // 11 m on
    assert.equal(requests.length, 1);
    await e.estimate('o2', AWAY, HOME); // another order asks for itself
    assert.equal(requests.length, 2);
    await e.estimate('o1', { lat: AWAY.lat - 0.001, lon: AWAY.lon }, HOME); // 111 m on
    assert.equal(requests.length, 3);
    now += REUSE_MS;
    await e.estimate('o1', { lat: AWAY.lat - 0.001, lon: AWAY.lon }, HOME);
    assert.equal(requests.length, 4);
    e.forget('o1');
    await e.estimate('o1', { lat: AWAY.lat - 0.001, lon: AWAY.lon }, HOME);
    assert.equal(requests.length, 5);
  });

  it('has one request in flight per order', async () => {
    const e = estimator();
    const all = await Promise.all(
      [1, 2, 3].map((i) => e.estimate('o1', { lat: AWAY.lat + i * 0.01, lon: 13.4 }, HOME)),
    );
    assert.equal(requests.length, 1);
    assert.ok(all.every((eta) => eta === all[0]));
  });

  for (const [m, reason] of [
    ['slow', 'timeout'],
    ['status', 'status'],
    ['no_route', 'no_route'],
    ['garbage', 'bad_answer'],
  ] as const) {
    it(`falls back to the straight line on ${m}, counted as ${reason}`, async () => {
      mode = m;
      const eta = await estimator().estimate('o1', AWAY, HOME);
      assert.deepEqual(eta, straightLineEta(AWAY, HOME, 8));
      assert.deepEqual(fallbacks, [reason]);
    });
  }

  it('falls back when the router is down, and asks again a few seconds later', async () => {
    const e = new OsrmEstimator({
      baseUrl: 'http://127.0.0.1:1',
      timeoutMs: 300,
      speedMps: 8,
      now: () => now,
      onFallback: (reason) => fallbacks.push(reason),
    });
    assert.equal((await e.estimate('o1', AWAY, HOME)).source, 'straight_line');
    assert.equal((await e.estimate('o1', AWAY, HOME)).source, 'straight_line');
    assert.deepEqual(fallbacks, ['error']); // the fallback was reused
    now += 5_000;
    await e.estimate('o1', AWAY, HOME);
    assert.deepEqual(fallbacks, ['error', 'error']);
  });
});

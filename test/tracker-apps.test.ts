/**
 * Tracker apps as devices, on the real server: requests shaped exactly as OsmAnd, Traccar
 * Client (its query form and its JSON records, single and batched) and OwnTracks send them,
 * checked through the query API as a `ping` would be (live position, online, nearby, the
 * track with one point per timestamp), an alarm as an `sos` (an alert the consoles see), and
 * the 400/401/403 answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alert, TechnicianView, TrackPoint } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { ownTracksLocation } from './support/fixtures.js';
import { ServerProcess, token } from './support/server-process.js';

const KNOT = 1852 / 3600;

describe('tracker apps (OsmAnd protocol, Traccar Client, OwnTracks)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { ARCHIVE_BATCH_MS: '100' } });
  });
  after(async () => {
    await server.stop();
  });

  /** A raw request, as an app sends it (no helper adds headers). */
  async function send(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<{ status: number; body: unknown; headers: Headers }> {
    const res = await fetch(server.httpUrl + path, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers };
  }

  const technician = async (id: string) =>
    (await server.http('GET', `/v1/technicians/${id}`, { role: 'dispatch' })).body as TechnicianView;
  const track = async (id: string) =>
    ((await server.http('GET', `/v1/technicians/${id}/track`, { role: 'safety' })).body as { points: TrackPoint[] })
      .points;
  const sosOf = async (id: string) =>
    ((await server.http('GET', '/v1/alerts', { role: 'safety' })).body as { alerts: Alert[] }).alerts.filter(
      (a) => a.kind === 'sos' && a.tech === id,
    );

  it('OsmAnd: GET with the query string and a Bearer token is a ping', async () => {
    const jwt = await token('app-osmand', 'device');
    const ts = Date.now() - 5_000;
    const res = await send(
      'GET',
      `/v1/osmand?id=app-osmand&lat=52.520008&lon=13.404954&timestamp=${ts}&accuracy=4.5&altitude=34.0&speed=10.0&bearing=271.5`,
      { authorization: `Bearer ${jwt}` },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const view = await technician('app-osmand');
    assert.equal(view.lat, 52.520008);
    assert.equal(view.lon, 13.404954);
    assert.equal(view.ts, ts);
    assert.equal(view.acc, 4.5);
    assert.ok(Math.abs((view.spd ?? 0) - 10 * KNOT) < 1e-9, `speed ${view.spd} m/s`);
    // Online and offered as nearby, as a connected device is.
    assert.equal(view.online, true);
    const nearby = await server.http('GET', '/v1/nearby?lat=52.52&lon=13.405&radius=500', { role: 'safety' });
    const ids = (nearby.body as { technicians: Array<{ id: string }> }).technicians.map((t) => t.id);
    assert.ok(ids.includes('app-osmand'), JSON.stringify(nearby.body));
    const points = await eventually('the fix in the track', async () => {
      const p = await track('app-osmand');
      return p.length === 1 ? p : undefined;
    });
    assert.deepEqual(points[0]!.slice(0, 4), [ts, 52.520008, 13.404954, 4.5]);
  });

  it('Traccar Client (query form): POST with an empty body, token as the last path segment, seconds; a duplicate is stored once', async () => {
    const jwt = await token('app-traccar-q', 'device');
    const seconds = Math.floor(Date.now() / 1000) - 60;
    const query = `id=app-traccar-q&timestamp=${seconds}&lat=45.764&lon=4.8357&speed=0.0&bearing=0.0&altitude=170.0&accuracy=12.0&batt=87.0&charge=true`;
    for (let i = 0; i < 2; i++) {
      const res = await send('POST', `/v1/osmand/${jwt}?${query}`, {}, '');
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const view = await technician('app-traccar-q');
    assert.equal(view.ts, seconds * 1000);
    // Sent twice with the same timestamp (an app retrying): archived once.
    await eventually('the fix in the track', async () => (await track('app-traccar-q')).length === 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await track('app-traccar-q')).length, 1);
  });

  it('the OsmAnd protocol as a form body, token as ?token=', async () => {
    const jwt = await token('app-form', 'device');
    const res = await send(
      'POST',
      `/v1/osmand?token=${jwt}`,
      { 'content-type': 'application/x-www-form-urlencoded' },
      `id=app-form&lat=48.8566&lon=2.3522&timestamp=${encodeURIComponent(new Date(Date.now() - 1000).toISOString().replace('T', ' ').slice(0, 19))}`,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await technician('app-form')).lat, 48.8566);
  });

  /** A record as Traccar Client's location template renders it. */
  const record = (ts: number, lat: number, lon: number, extras: Record<string, unknown> = {}) => ({
    timestamp: new Date(ts).toISOString(),
    coords: { latitude: lat, longitude: lon, accuracy: 8.5, speed: 3.2, heading: -1, altitude: 41 },
    is_moving: true,
    odometer: 1234.5,
    event: 'motionchange',
    battery: { level: 0.83, is_charging: false },
    activity: { type: 'in_vehicle' },
    extras,
    _: `&id=app-traccar&lat=${lat}&lon=${lon}&timestamp=${new Date(ts).toISOString()}&`,
  });

  it('Traccar Client (JSON): a record, its duplicate, a batch of its offline buffer, then its SOS button', async () => {
    const jwt = await token('app-traccar', 'device');
    const url = `/v1/osmand/${jwt}`;
    const json = { 'content-type': 'application/json' };
    const t0 = Date.now() - 120_000;
    const one = JSON.stringify({ location: record(t0, 31.2304, 121.4737), device_id: 'app-traccar' });
    assert.equal((await send('POST', url, json, one)).status, 200);
    assert.equal((await send('POST', url, json, one)).status, 200);
    let view = await technician('app-traccar');
    assert.equal(view.ts, t0);
    assert.equal(view.spd, 3.2); // m/s as sent
    // The buffer, newest first on purpose: the newest becomes the live position.
    const batch = JSON.stringify({
      location: [record(t0 + 20_000, 31.2306, 121.4739), record(t0 + 10_000, 31.2305, 121.4738)],
      device_id: 'app-traccar',
    });
    assert.equal((await send('POST', url, json, batch)).status, 200);
    view = await technician('app-traccar');
    assert.equal(view.ts, t0 + 20_000);
    assert.equal(view.lat, 31.2306);
    const points = await eventually('three points in the track', async () => {
      const p = await track('app-traccar');
      return p.length >= 3 ? p : undefined;
    });
    assert.deepEqual(
      points.map((p) => p[0]),
      [t0, t0 + 10_000, t0 + 20_000],
    );

    // The SOS button: getCurrentPosition with extras {alarm: 'sos'}.
    const sos = JSON.stringify({
      location: record(Date.now(), 31.2307, 121.474, { alarm: 'sos' }),
      device_id: 'app-traccar',
    });
    assert.equal((await send('POST', url, json, sos)).status, 200);
    // Acked only once durable: the alert is there as soon as the answer is.
    const alerts = await sosOf('app-traccar');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.state, 'open');
    assert.equal(alerts[0]!.lat, 31.2307);
  });

  it('OsmAnd protocol alarm=sos opens an SOS that consoles see', async () => {
    const safety = await server.newSafety('op-apps');
    const seen: Alert[] = [];
    safety.on('push', (msg) => {
      if (msg.t === 'alert' && msg.alert.tech === 'app-alarm') seen.push(msg.alert);
    });
    await safety.connect();
    try {
      const jwt = await token('app-alarm', 'device');
      const res = await send(
        'GET',
        `/v1/osmand?id=app-alarm&lat=52.5&lon=13.4&timestamp=${Math.floor(Date.now() / 1000)}&alarm=sos`,
        { authorization: `Bearer ${jwt}` },
      );
      assert.equal(res.status, 200);
      assert.equal((await sosOf('app-alarm')).length, 1);
      await eventually('the console sees the SOS', () => seen.some((a) => a.kind === 'sos'));
    } finally {
      await safety.close();
    }
  });

  it('OwnTracks: a location is a fix answered 200 [], other types are ignored', async () => {
    const jwt = await token('app-owntracks', 'device');
    const headers = {
      authorization: `Basic ${Buffer.from(`app-owntracks:${jwt}`).toString('base64')}`,
      'content-type': 'application/json',
      'x-limit-u': 'app-owntracks',
      'x-limit-d': 'phone',
    };
    const tst = Math.floor(Date.now() / 1000) - 30;
    const location = ownTracksLocation('app-owntracks', 'ph', tst);
    const res = await send('POST', '/v1/owntracks', headers, JSON.stringify(location));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, []);
    const view = await technician('app-owntracks');
    assert.equal(view.ts, tst * 1000);
    assert.equal(view.spd, 10); // 36 km/h
    const transition = { _type: 'transition', event: 'enter', lat: 1, lon: 1, tst: tst + 5, wtst: tst, acc: 5 };
    const ignored = await send('POST', '/v1/owntracks', headers, JSON.stringify(transition));
    assert.equal(ignored.status, 200);
    assert.deepEqual(ignored.body, []);
    assert.equal((await technician('app-owntracks')).ts, tst * 1000);

    // Refusals: another user than the token's sub, no credentials, a bad location.
    const otherUser = { ...headers, authorization: `Basic ${Buffer.from(`someone-else:${jwt}`).toString('base64')}` };
    assert.equal((await send('POST', '/v1/owntracks', otherUser, JSON.stringify(location))).status, 403);
    assert.equal(
      (await send('POST', '/v1/owntracks', { 'content-type': 'application/json' }, JSON.stringify(location))).status,
      401,
    );
    const bad = await send('POST', '/v1/owntracks', headers, JSON.stringify({ ...location, lat: 'north' }));
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: string }).code, 'bad_request');
  });

  it('400 without id, 401 without a valid token, 403 for another id or role, 400 for a fix the protocol refuses', async () => {
    const jwt = await token('app-refused', 'device');
    const bearer = { authorization: `Bearer ${jwt}` };
    const now = Date.now();
    const q = (extra: string) => `/v1/osmand?lat=52.5&lon=13.4&timestamp=${now}${extra}`;

    const noId = await send('GET', q(''), bearer);
    assert.equal(noId.status, 400);
    assert.match((noId.body as { msg: string }).msg, /id is required/);
    const noDeviceId = await send(
      'POST',
      '/v1/osmand',
      { ...bearer, 'content-type': 'application/json' },
      JSON.stringify({ location: record(now, 1, 2) }),
    );
    assert.equal(noDeviceId.status, 400);

    assert.equal((await send('GET', q('&id=app-refused'))).status, 401);
    assert.equal((await send('GET', q('&id=app-refused'), { authorization: 'Bearer not.a.jwt' })).status, 401);
    assert.equal((await send('GET', `/v1/osmand/garbage?id=app-refused&lat=1&lon=2&timestamp=${now}`)).status, 401);

    const other = await send('GET', q('&id=someone-else'), bearer);
    assert.equal(other.status, 403);
    assert.equal((other.body as { code: string }).code, 'forbidden');
    const dispatch = await token('app-refused', 'dispatch');
    assert.equal((await send('GET', q('&id=app-refused'), { authorization: `Bearer ${dispatch}` })).status, 403);

    for (const [what, path] of [
      ['lat out of range', `/v1/osmand?id=app-refused&lat=95&lon=13.4&timestamp=${now}`],
      ['ts 10 minutes ahead', `/v1/osmand?id=app-refused&lat=52.5&lon=13.4&timestamp=${now + 600_000}`],
      ['no timestamp', '/v1/osmand?id=app-refused&lat=52.5&lon=13.4'],
      ['unknown crs', `/v1/osmand?id=app-refused&lat=52.5&lon=13.4&timestamp=${now}&crs=mars`],
    ] as const) {
      const res = await send('GET', path, bearer);
      assert.equal(res.status, 400, what);
      assert.equal((res.body as { code: string }).code, 'bad_request', what);
    }
    const badJson = await send('POST', '/v1/osmand', { ...bearer, 'content-type': 'application/json' }, '{"location":');
    assert.equal(badJson.status, 400);
    // Nothing of the refused requests was stored.
    assert.equal((await server.http('GET', '/v1/technicians/app-refused', { role: 'dispatch' })).status, 404);
  });
});

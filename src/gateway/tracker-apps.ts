/**
 * Free tracker apps as devices (PROTOCOL.md, "Tracker apps people already use"): the
 * OsmAnd protocol at `/v1/osmand` (query string, form body or Traccar Client's JSON) and
 * OwnTracks' HTTP mode at `/v1/owntracks`. Transport only: a request is read into fixes
 * (`tracker-app-formats.ts`), each fix becomes the very `ping` (or, with an SOS alarm, the
 * `sos`) a phone sends over `/v1/device`, checked by the same `validateDeviceMessage` and
 * time window, shed by the same node-wide shedder, and handed to `Tracker.onDeviceMessage`
 * as the token's `sub`. So validation, deduplication by `ts`, alerts and the SOS's
 * durability before the answer are the socket's, not a copy of them.
 *
 * Answers: `200` once every fix is stored (an SOS: once it is durable), `400` for a
 * request the apps' formats do not allow or a fix the protocol refuses, `401` for the
 * token, `403` when the request names another technician than the token's `sub`, `429`
 * with `Retry-After` when the node sheds load (the apps keep the fix and send it again),
 * `503` when the node cannot store it now. Two exceptions to a ping's rules, because an app
 * resends a refused fix for ever: a fix older than the retention window is answered 200
 * and not stored (as a `batch` point would be), and an array of Traccar records (its
 * plugin's batch upload) is stored record by record in time order.
 */
import type { Tracker } from '../actors/api.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { AckExtras, Outcome } from '../outcome.js';
import type { Crs, DeviceMessage } from '../protocol.js';
import { ErrorCode, Role } from '../protocol.js';
import type { AppPresence } from './app-presence.js';
import { extractToken } from './auth.js';
import { errorAnswer, type HttpAnswer, type HttpCall, type HttpDeps, route, statusOfCode } from './http.js';
import type { InflightTracker } from './inflight.js';
import type { LoadShedder } from './load-shed.js';
import { validateDeviceMessage } from './messages.js';
import { crsQuery } from './queries.js';
import { timeWindow } from './time-window.js';
import {
  type AppFix,
  type OsmandRequest,
  type Parsed,
  parseOsmandQuery,
  parseOwnTracks,
  parseTraccarJson,
} from './tracker-app-formats.js';
import type { TemplatedApp } from './uws.js';

/** What the tracker-app routes need besides the HTTP plumbing. */
export interface TrackerAppDeps {
  config: Config;
  clock: Clock;
  metrics: Metrics;
  inflight: InflightTracker;
  /** Refuses fixes at once while the node is saturated, as for socket pings; absent: never. */
  shedder?: LoadShedder;
  /** Keeps an app's technician online (nearby, `online`) while its fixes keep coming. */
  presence: AppPresence;
}

const SHED_MSG = 'node busy: keep the fixes and send them later';
/** The `endpoint` label of these routes' message counts. */
const ENDPOINT = 'tracker_app';
const badRequest = (msg: string): HttpAnswer => errorAnswer(ErrorCode.badRequest, msg);

/** The OsmAnd routes' token: the last path segment, else `Authorization: Bearer`, else `?token=`. */
function osmandToken(authorization: string, query: string, params: readonly string[]): string | undefined {
  const inPath = params[0];
  return inPath !== undefined && inPath !== '' ? inPath : extractToken(authorization, query);
}

/** `Authorization: Basic` user and password, or null when the header is not Basic. */
export function basicCredentials(authorization: string): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** OwnTracks' token: the Basic password (the user is the technician id, checked by the handler). */
function ownTracksToken(authorization: string): string | undefined {
  return basicCredentials(authorization)?.password;
}

/** Registers `/v1/osmand` (GET, POST, with or without the token as last segment) and `/v1/owntracks`. */
export function registerTrackerAppRoutes(app: TemplatedApp, tracker: Tracker, http: HttpDeps, deps: TrackerAppDeps) {
  const ingest = new Ingest(tracker, deps);
  const roles = [Role.device] as const;
  for (const [pattern, params] of [
    ['/v1/osmand', 0],
    ['/v1/osmand/:token', 1],
  ] as const) {
    const options = { roles, params, token: osmandToken };
    route(app, 'get', pattern, options, http, (call) => ingest.osmand(call, call.query));
    route(app, 'post', pattern, { ...options, body: 'raw', headers: ['content-type'] }, http, (call) => {
      if (isJson(call.headers?.['content-type'])) {
        let body: unknown;
        try {
          body = JSON.parse(call.raw!.toString('utf8'));
        } catch {
          return badRequest('body is not valid JSON');
        }
        return ingest.traccarJson(call, body);
      }
      // Parameters in the query string, or else in a form body (both are the OsmAnd protocol).
      return ingest.osmand(call, hasFields(call.query) ? call.query : new URLSearchParams(call.raw!.toString('utf8')));
    });
  }
  route(
    app,
    'post',
    '/v1/owntracks',
    { roles, body: true, headers: ['authorization'], token: ownTracksToken },
    http,
    (call) => ingest.ownTracks(call),
  );
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/json\b/i.test(contentType.trim());
}

/** Whether the query string carries OsmAnd fields, not only the token and crs. */
function hasFields(query: URLSearchParams): boolean {
  for (const key of query.keys()) if (key !== 'token' && key !== 'crs') return true;
  return false;
}

/** Turns parsed requests into device messages for the tracker. */
class Ingest {
  constructor(
    private readonly tracker: Tracker,
    private readonly deps: TrackerAppDeps,
  ) {}

  osmand(call: HttpCall, params: URLSearchParams): Promise<HttpAnswer> {
    return this.osmandRequest(call, parseOsmandQuery(params));
  }

  traccarJson(call: HttpCall, body: unknown): Promise<HttpAnswer> {
    return this.osmandRequest(call, parseTraccarJson(body));
  }

  private async osmandRequest(call: HttpCall, parsed: Parsed<OsmandRequest>): Promise<HttpAnswer> {
    const sub = call.principal!.sub;
    // The id first: a request for another technician is refused as such, whatever else is wrong.
    if (parsed.ok && parsed.value.id === null) return badRequest('id is required (the technician id)');
    if (parsed.ok && parsed.value.id !== sub) {
      return errorAnswer(ErrorCode.forbidden, 'id is not the technician of this token');
    }
    if (!parsed.ok) return badRequest(parsed.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    const answer = await this.store(sub, parsed.value.fixes, crs.value);
    return answer ?? { status: 200, json: {} };
  }

  async ownTracks(call: HttpCall): Promise<HttpAnswer> {
    const sub = call.principal!.sub;
    const user = basicCredentials(call.headers?.authorization ?? '')?.user;
    if (user !== sub) return errorAnswer(ErrorCode.forbidden, 'the user is not the technician of this token');
    const parsed = parseOwnTracks(call.body);
    if (!parsed.ok) return badRequest(parsed.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    if (parsed.value !== null) {
      const refused = await this.store(sub, [parsed.value], crs.value);
      if (refused !== null) return refused;
    }
    // OwnTracks reads the answer as messages to deliver to the phone: none.
    return { status: 200, json: [] };
  }

  /**
   * Stores the fixes of technician `sub` one by one in time order, each as the `ping` or
   * `sos` it stands for; null when every one was taken, else the answer refusing the request.
   * All are validated before the first is stored, so a bad request stores nothing.
   */
  private async store(sub: string, fixes: AppFix[], crs: Crs): Promise<HttpAnswer | null> {
    const { clock, config, metrics } = this.deps;
    const window = timeWindow(clock.now(), config.RETENTION_DAYS);
    const messages: DeviceMessage[] = [];
    const ordered = fixes.length > 1 ? [...fixes].sort((a, b) => a.ts - b.ts) : fixes;
    for (const fix of ordered) {
      // An app resends a refused fix for ever: one too old to keep is taken and dropped.
      if (!fix.sos && fix.ts < window.oldest) {
        metrics.fixesOutsideWindow.inc({ type: 'ping' });
        continue;
      }
      const validated = validateDeviceMessage(frameOf(fix, crs), window);
      if (validated.outOfWindow !== undefined) {
        metrics.fixesOutsideWindow.inc({ type: fix.sos ? 'sos' : 'ping' }, validated.outOfWindow);
      }
      if (!validated.ok) {
        metrics.messages.inc({ endpoint: ENDPOINT, type: 'invalid' });
        const where = fixes.length > 1 ? `fix at ${new Date(fix.ts).toISOString()}: ` : '';
        return badRequest(`${where}${validated.msg}`);
      }
      messages.push(validated.value);
    }
    for (const msg of messages) {
      const refused = await this.one(sub, msg);
      if (refused !== null) return refused;
    }
    if (messages.length > 0) this.deps.presence.seen(sub);
    return null;
  }

  /** One device message through the node's shedder and in-flight count; null when acked. */
  private async one(sub: string, msg: DeviceMessage): Promise<HttpAnswer | null> {
    const { metrics, inflight } = this.deps;
    const shedder = msg.t === 'ping' ? this.deps.shedder : undefined;
    if (shedder?.shouldShed(performance.now())) {
      metrics.loadShed.inc({ type: msg.t });
      metrics.errors.inc({ code: ErrorCode.rateLimited });
      const retryMs = shedder.retryMs();
      return {
        status: 429,
        json: { code: ErrorCode.rateLimited, msg: SHED_MSG, retryMs },
        headers: { 'retry-after': String(Math.ceil(retryMs / 1000)) },
      };
    }
    metrics.messages.inc({ endpoint: ENDPOINT, type: msg.t });
    const started = performance.now();
    inflight.begin();
    shedder?.begin();
    let outcome: Outcome<AckExtras>;
    try {
      outcome = await this.tracker.onDeviceMessage(sub, msg);
    } finally {
      const took = performance.now() - started;
      metrics.ackLatency.labels(msg.t).observe(took / 1000);
      shedder?.end(took);
      inflight.end();
    }
    if (outcome.ok) return null;
    metrics.errors.inc({ code: outcome.code });
    return {
      status: statusOfCode[outcome.code],
      json: { ...outcome.extras, code: outcome.code, msg: outcome.msg },
    };
  }
}

/** The `/v1/device` frame a fix stands for: a `sos` when the app raised one, else a `ping`. */
function frameOf(fix: AppFix, crs: Crs): Record<string, unknown> {
  const place = { ts: fix.ts, lat: fix.lat, lon: fix.lon, crs };
  if (fix.sos) return { t: 'sos', seq: 0, ...place };
  const frame: Record<string, unknown> = { t: 'ping', seq: 0, ...place };
  if (fix.acc !== undefined) frame.acc = fix.acc;
  if (fix.spd !== undefined) frame.spd = fix.spd;
  if (fix.hdg !== undefined) frame.hdg = fix.hdg;
  if (fix.bat !== undefined) frame.bat = fix.bat;
  return frame;
}

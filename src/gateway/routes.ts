/**
 * The HTTP routes of PROTOCOL.md: orders (dispatch), queries (safety or dispatch) and the
 * operations endpoints. Each route validates its input and forwards plain values to the
 * `Tracker`; status codes follow the protocol's error codes.
 */
import type { Outcome, Tracker } from '../actors/api.js';
import { type AlertState, AlertStates, ErrorCode, Role } from '../protocol.js';
import { errorAnswer, type HttpAnswer, type HttpDeps, route } from './http.js';
import { isValidId, validateOrderInput } from './messages.js';
import type { TemplatedApp } from './uws.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Default and largest radius of `GET /v1/nearby`, metres. */
export const NEARBY_DEFAULT_RADIUS_M = 5000;
export const NEARBY_MAX_RADIUS_M = 100_000;
/** Default and largest page of `GET /v1/technicians/:id/track`, points (PROTOCOL.md, "Track pages"). */
export const TRACK_PAGE_DEFAULT = 5000;
export const TRACK_PAGE_MAX = 10_000;

function fromOutcome<T>(outcome: Outcome<T>): HttpAnswer {
  if (outcome.ok) return { status: 200, json: outcome.value };
  const answer = errorAnswer(outcome.code, outcome.msg);
  return { status: answer.status, json: { ...outcome.extras, code: outcome.code, msg: outcome.msg } };
}

const badId = (what: string) => errorAnswer(ErrorCode.badRequest, `${what} id must be 1-128 letters, digits or ._:@-`);

/** Reads an optional numeric query parameter; NaN marks a present but invalid value. */
function numberParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** Registers the `/v1` HTTP routes; `retentionDays` bounds how far back a track may be read. */
export function registerApiRoutes(app: TemplatedApp, tracker: Tracker, deps: HttpDeps, retentionDays = 30): void {
  const readers = [Role.safety, Role.dispatch] as const;

  route(app, 'put', '/v1/orders/:id', { roles: [Role.dispatch], body: true, params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('order');
    const input = validateOrderInput(call.body);
    if (!input.ok) return errorAnswer(ErrorCode.badRequest, input.msg);
    return fromOutcome(await tracker.putOrder(id, input.value));
  });

  route(app, 'del', '/v1/orders/:id', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('order');
    return fromOutcome(await tracker.cancelOrder(id));
  });

  // Reading an order is open to safety too (addition): the console draws its geofence.
  route(app, 'get', '/v1/orders/:id', { roles: readers, params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('order');
    return fromOutcome(await tracker.getOrder(id));
  });

  // Archived timeline (issue 4): still there after the order left live state.
  route(app, 'get', '/v1/orders/:id/timeline', { roles: readers, params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('order');
    return fromOutcome(await tracker.getOrderTimeline(id));
  });

  // Erasing a technician's data (privacy, issue 7): dispatch only; 409 while work is open.
  route(app, 'del', '/v1/technicians/:id', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('technician');
    return fromOutcome(await tracker.eraseTechnician(id));
  });

  route(app, 'get', '/v1/technicians/:id', { roles: readers, params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('technician');
    return fromOutcome(await tracker.getTechnician(id));
  });

  route(app, 'get', '/v1/technicians/:id/track', { roles: readers, params: 1 }, deps, async (call) => {
    const id = call.params[0]!;
    if (!isValidId(id)) return badId('technician');
    const now = deps.clock.now();
    const to = numberParam(call.query, 'to') ?? now;
    const from = numberParam(call.query, 'from') ?? to - DAY_MS;
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0) {
      return errorAnswer(ErrorCode.badRequest, 'from and to must be times in ms since the epoch');
    }
    if (from > to) return errorAnswer(ErrorCode.badRequest, 'from must not be after to');
    const limit = numberParam(call.query, 'limit') ?? TRACK_PAGE_DEFAULT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > TRACK_PAGE_MAX) {
      return errorAnswer(ErrorCode.badRequest, `limit must be a whole number in [1, ${TRACK_PAGE_MAX}]`);
    }
    // Nothing older than the retention window is served, even if its partition is not dropped yet.
    const oldest = now - retentionDays * DAY_MS;
    if (to < oldest) return { status: 200, json: { id, points: [] } };
    // One point more than the page tells whether more remain. A technician has one point
    // per millisecond, so the next page starts right after the last one: no point is
    // skipped or repeated at the border.
    const track = await tracker.getTrack(id, Math.max(from, oldest), to, limit + 1);
    if (!track.ok) return fromOutcome(track);
    const points = track.value;
    if (points.length <= limit) return { status: 200, json: { id, points } };
    const page = points.slice(0, limit);
    return { status: 200, json: { id, points: page, next: page[limit - 1]![0] + 1 } };
  });

  route(app, 'get', '/v1/alerts', { roles: readers }, deps, async (call) => {
    const state = call.query.get('state');
    if (state !== null && !(AlertStates as readonly string[]).includes(state)) {
      return errorAnswer(ErrorCode.badRequest, `state must be one of ${AlertStates.join(', ')}`);
    }
    return { status: 200, json: { alerts: await tracker.listAlerts((state ?? undefined) as AlertState | undefined) } };
  });

  route(app, 'get', '/v1/nearby', { roles: readers }, deps, async (call) => {
    const lat = numberParam(call.query, 'lat');
    const lon = numberParam(call.query, 'lon');
    const radius = numberParam(call.query, 'radius') ?? NEARBY_DEFAULT_RADIUS_M;
    if (lat === undefined || !(lat >= -90 && lat <= 90))
      return errorAnswer(ErrorCode.badRequest, 'lat must be in [-90, 90]');
    if (lon === undefined || !(lon >= -180 && lon <= 180)) {
      return errorAnswer(ErrorCode.badRequest, 'lon must be in [-180, 180]');
    }
    if (!(radius > 0 && radius <= NEARBY_MAX_RADIUS_M)) {
      return errorAnswer(ErrorCode.badRequest, `radius must be in (0, ${NEARBY_MAX_RADIUS_M}] metres`);
    }
    return { status: 200, json: { technicians: await tracker.nearby(lat, lon, radius) } };
  });
}

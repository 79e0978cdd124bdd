/**
 * The HTTP routes of PROTOCOL.md: orders (dispatch), queries (safety or dispatch) and the
 * operations endpoints. Each route validates its input and forwards plain values to the
 * `Tracker`; status codes follow the protocol's error codes.
 */
import type { Tracker } from '../actors/api.js';
import type { Outcome } from '../outcome.js';
import { ErrorCode, Role } from '../protocol.js';
import { errorAnswer, type HttpAnswer, type HttpDeps, route } from './http.js';
import { validateOrderInput } from './messages.js';
import { alertsQuery, checkId, nearbyQuery, trackQuery } from './queries.js';
import type { TemplatedApp } from './uws.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function fromOutcome<T>(outcome: Outcome<T>): HttpAnswer {
  if (outcome.ok) return { status: 200, json: outcome.value };
  const answer = errorAnswer(outcome.code, outcome.msg);
  return { status: answer.status, json: { ...outcome.extras, code: outcome.code, msg: outcome.msg } };
}

const badRequest = (msg: string) => errorAnswer(ErrorCode.badRequest, msg);

/** Registers the `/v1` HTTP routes; `retentionDays` bounds how far back a track may be read. */
export function registerApiRoutes(app: TemplatedApp, tracker: Tracker, deps: HttpDeps, retentionDays = 30): void {
  const readers = [Role.safety, Role.dispatch] as const;

  route(app, 'put', '/v1/orders/:id', { roles: [Role.dispatch], body: true, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    const input = validateOrderInput(call.body);
    if (!input.ok) return badRequest(input.msg);
    return fromOutcome(await tracker.putOrder(id.value, input.value));
  });

  route(app, 'del', '/v1/orders/:id', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    return fromOutcome(await tracker.cancelOrder(id.value));
  });

  // Reading an order is open to safety too (addition): the console draws its geofence.
  route(app, 'get', '/v1/orders/:id', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    return fromOutcome(await tracker.getOrder(id.value));
  });

  // Archived timeline: a finished order can be audited after it left live state.
  route(app, 'get', '/v1/orders/:id/timeline', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    return fromOutcome(await tracker.getOrderTimeline(id.value));
  });

  // Erasing a technician's data on request (privacy): dispatch only; 409 while work is open.
  route(app, 'del', '/v1/technicians/:id', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'technician');
    if (!id.ok) return badRequest(id.msg);
    return fromOutcome(await tracker.eraseTechnician(id.value));
  });

  route(app, 'get', '/v1/technicians/:id', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'technician');
    if (!id.ok) return badRequest(id.msg);
    return fromOutcome(await tracker.getTechnician(id.value));
  });

  route(app, 'get', '/v1/technicians/:id/track', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'technician');
    if (!id.ok) return badRequest(id.msg);
    const now = deps.clock.now();
    const q = trackQuery(call.query, now);
    if (!q.ok) return badRequest(q.msg);
    const { from, to, limit } = q.value;
    // Nothing older than the retention window is served, even if its partition is not dropped yet.
    const oldest = now - retentionDays * DAY_MS;
    if (to < oldest) return { status: 200, json: { id: id.value, points: [] } };
    // One point more than the page tells whether more remain. A technician has one point
    // per millisecond, so the next page starts right after the last one: no point is
    // skipped or repeated at the border.
    const track = await tracker.getTrack(id.value, Math.max(from, oldest), to, limit + 1);
    if (!track.ok) return fromOutcome(track);
    const points = track.value;
    if (points.length <= limit) return { status: 200, json: { id: id.value, points } };
    const page = points.slice(0, limit);
    return { status: 200, json: { id: id.value, points: page, next: page[limit - 1]![0] + 1 } };
  });

  route(app, 'get', '/v1/alerts', { roles: readers }, deps, async (call) => {
    const q = alertsQuery(call.query);
    if (!q.ok) return badRequest(q.msg);
    return { status: 200, json: { alerts: await tracker.listAlerts(q.value.state) } };
  });

  route(app, 'get', '/v1/nearby', { roles: readers }, deps, async (call) => {
    const q = nearbyQuery(call.query);
    if (!q.ok) return badRequest(q.msg);
    const { lat, lon, radius } = q.value;
    return { status: 200, json: { technicians: await tracker.nearby(lat, lon, radius) } };
  });
}

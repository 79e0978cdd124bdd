/**
 * The HTTP routes of PROTOCOL.md: orders (dispatch), queries (safety or dispatch) and the
 * operations endpoints. Each route validates its input and forwards plain values to the
 * `Tracker`; status codes follow the protocol's error codes. Every route whose answer holds
 * positions takes `?crs=` and answers in that system (crs-answers.ts); the tracker only
 * ever sees and gives WGS-84.
 */
import type { Tracker } from '../actors/api.js';
import { toWgs84 } from '../geofence/index.js';
import type { Outcome } from '../outcome.js';
import { ErrorCode, Role } from '../protocol.js';
import { alertsIn, nearbyIn, orderIn, orderTimelineIn, technicianIn, trackIn } from './crs-answers.js';
import { errorAnswer, type HttpAnswer, type HttpDeps, route } from './http.js';
import { validateOrderInput } from './messages.js';
import { alertsQuery, checkId, crsQuery, nearbyQuery, trackQuery } from './queries.js';
import type { TemplatedApp } from './uws.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The answer of `outcome`: its value (through `view` when given) with 200, or its refusal. */
function fromOutcome<T>(outcome: Outcome<T>, view?: (value: T) => T): HttpAnswer {
  if (outcome.ok) return { status: 200, json: view ? view(outcome.value) : outcome.value };
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
    // The answer is in the body's system unless `?crs=` asks for another.
    const crs = crsQuery(call.query, input.crs);
    if (!crs.ok) return badRequest(crs.msg);
    return fromOutcome(await tracker.putOrder(id.value, input.value), (o) => orderIn(crs.value, o));
  });

  route(app, 'del', '/v1/orders/:id', { roles: [Role.dispatch], params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    return fromOutcome(await tracker.cancelOrder(id.value), (o) => orderIn(crs.value, o));
  });

  // Reading an order is open to safety too (addition): the console draws its geofence.
  route(app, 'get', '/v1/orders/:id', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    return fromOutcome(await tracker.getOrder(id.value), (o) => orderIn(crs.value, o));
  });

  // Archived timeline: a finished order can be audited after it left live state.
  route(app, 'get', '/v1/orders/:id/timeline', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'order');
    if (!id.ok) return badRequest(id.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    return fromOutcome(await tracker.getOrderTimeline(id.value), (t) => orderTimelineIn(crs.value, t));
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
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    return fromOutcome(await tracker.getTechnician(id.value), (t) => technicianIn(crs.value, t));
  });

  route(app, 'get', '/v1/technicians/:id/track', { roles: readers, params: 1 }, deps, async (call) => {
    const id = checkId(call.params[0]!, 'technician');
    if (!id.ok) return badRequest(id.msg);
    const now = deps.clock.now();
    const q = trackQuery(call.query, now);
    if (!q.ok) return badRequest(q.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    const { from, to, limit } = q.value;
    // Nothing older than the retention window is served, even if its partition is not dropped yet.
    const oldest = now - retentionDays * DAY_MS;
    if (to < oldest) return { status: 200, json: { id: id.value, points: [] } };
    // One point more than the page tells whether more remain. A technician has one point
    // per millisecond, so the next page starts right after the last one: no point is
    // skipped or repeated at the border.
    const track = await tracker.getTrack(id.value, Math.max(from, oldest), to, limit + 1);
    if (!track.ok) return fromOutcome(track);
    const points = trackIn(crs.value, track.value);
    if (points.length <= limit) return { status: 200, json: { id: id.value, points } };
    const page = points.slice(0, limit);
    return { status: 200, json: { id: id.value, points: page, next: page[limit - 1]![0] + 1 } };
  });

  route(app, 'get', '/v1/alerts', { roles: readers }, deps, async (call) => {
    const q = alertsQuery(call.query);
    if (!q.ok) return badRequest(q.msg);
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    return { status: 200, json: { alerts: alertsIn(crs.value, await tracker.listAlerts(q.value.state)) } };
  });

  route(app, 'get', '/v1/nearby', { roles: readers }, deps, async (call) => {
    const q = nearbyQuery(call.query);
    if (!q.ok) return badRequest(q.msg);
    // The searched point is given in `crs` too; distances are measured in WGS-84.
    const crs = crsQuery(call.query);
    if (!crs.ok) return badRequest(crs.msg);
    const { lat, lon } = toWgs84(crs.value, q.value.lat, q.value.lon);
    return { status: 200, json: { technicians: nearbyIn(crs.value, await tracker.nearby(lat, lon, q.value.radius)) } };
  });
}

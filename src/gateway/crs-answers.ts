/**
 * HTTP answers in the coordinate system a caller asked for (`?crs=`, PROTOCOL.md): the
 * server keeps WGS-84 only and converts each position of an answer on its way out. With
 * `wgs84` every function gives back the very value it was given.
 */
import type { OrderTimeline } from '../actors/api.js';
import { fromWgs84 } from '../geofence/index.js';
import type {
  Alert,
  Crs,
  NearbyTechnician,
  OrderView,
  TechnicianView,
  TimelineEntry,
  TrackPoint,
} from '../protocol.js';

/** `value` with its `lat`/`lon` (when both are there) in `crs`. */
function moved<T extends { lat?: number; lon?: number }>(crs: Crs, value: T): T {
  if (crs === 'wgs84' || value.lat === undefined || value.lon === undefined) return value;
  const { lat, lon } = fromWgs84(crs, value.lat, value.lon);
  return { ...value, lat, lon };
}

function timelineIn(crs: Crs, timeline: TimelineEntry[]): TimelineEntry[] {
  return crs === 'wgs84' ? timeline : timeline.map((entry) => moved(crs, entry));
}

/** An order (customer point, polygon, timeline fixes) in `crs`. */
export function orderIn(crs: Crs, order: OrderView): OrderView {
  if (crs === 'wgs84') return order;
  const view = moved(crs, { ...order, timeline: timelineIn(crs, order.timeline) });
  if (order.polygon !== undefined) {
    view.polygon = order.polygon.map(([lon, lat]) => {
      const p = fromWgs84(crs, lat, lon);
      return [p.lon, p.lat] as [number, number];
    });
  }
  return view;
}

/** An archived order timeline in `crs`. */
export function orderTimelineIn(crs: Crs, value: OrderTimeline): OrderTimeline {
  return crs === 'wgs84' ? value : { ...value, timeline: timelineIn(crs, value.timeline) };
}

/** A technician's live view in `crs`. */
export function technicianIn(crs: Crs, view: TechnicianView): TechnicianView {
  return moved(crs, view);
}

/** Track points `[ts, lat, lon, acc, spd, hdg]` in `crs`. */
export function trackIn(crs: Crs, points: TrackPoint[]): TrackPoint[] {
  if (crs === 'wgs84') return points;
  return points.map((point) => {
    const { lat, lon } = fromWgs84(crs, point[1], point[2]);
    const copy: TrackPoint = [...point];
    copy[1] = lat;
    copy[2] = lon;
    return copy;
  });
}

/** Nearby technicians in `crs` (`dist` stays the distance measured in WGS-84). */
export function nearbyIn(crs: Crs, technicians: NearbyTechnician[]): NearbyTechnician[] {
  return crs === 'wgs84' ? technicians : technicians.map((t) => moved(crs, t));
}

/** Alerts in `crs`. */
export function alertsIn(crs: Crs, alerts: Alert[]): Alert[] {
  return crs === 'wgs84' ? alerts : alerts.map((a) => moved(crs, a));
}

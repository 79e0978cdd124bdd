/**
 * Gathers what the map shows for one alert from the node's HTTP API: the technician's
 * live position and the last 30 minutes of its archived track (kept between refreshes in
 * a `TrackWindow`, so each refresh reads only new points), the customer's geofence
 * (the alert's order, or the technician's active order for an SOS, which names none),
 * and the nearest online technicians around it.
 */
import type { Alert, NearbyTechnician, OrderView, TechnicianView } from '../../protocol.js';
import type { Api } from './api.js';
import type { LatLon } from './projection.js';
import { refreshTrack, TrackWindow } from './track-window.js';

/** How far back the track goes. */
export const TRACK_WINDOW_MS = 30 * 60 * 1000;
/** Track points kept in memory at most (one technician; a point per second is 1800). */
export const TRACK_MAX_POINTS = 20_000;

/** The track window for `alert`'s technician: `current` when it is that technician's, else a new one. */
export function trackWindowFor(alert: Alert, current: TrackWindow | undefined): TrackWindow {
  return current?.tech === alert.tech ? current : new TrackWindow(alert.tech, TRACK_WINDOW_MS, TRACK_MAX_POINTS);
}
/** Nearby technicians drawn at most. */
const NEARBY_SHOWN = 5;

/** Everything one map needs. */
export interface MapScene {
  techId: string;
  /** Where the technician is: the live position, or the alert's position when none is known. */
  tech?: LatLon & { ts?: number; acc?: number; online: boolean; live: boolean };
  /** Where the alert was raised, when it has a position. */
  alertPos?: LatLon;
  fence?: { orderId: string; centre: LatLon; radiusM: number; polygon?: LatLon[] };
  track: LatLon[];
  nearby: NearbyTechnician[];
  /** What could not be loaded, for the caption; the rest is still drawn. */
  problems: string[];
}

const enc = encodeURIComponent;

/**
 * Loads the scene of `alert` at `now` (server time), reading into `track` (the window of
 * `alert`'s technician, see `trackWindowFor`) only the points it does not hold yet. Never
 * throws: failures end up in `problems`.
 */
export async function loadScene(api: Api, alert: Alert, now: number, track: TrackWindow): Promise<MapScene> {
  const problems: string[] = [];
  const path = `/v1/technicians/${enc(alert.tech)}`;
  // `to` a minute ahead: the console's estimate of server time may be off by a little.
  const to = Math.round(now) + 60_000;
  const [techRes, trackRes] = await Promise.all([api.get<TechnicianView>(path), refreshTrack(api, track, now, to)]);

  const alertPos = alert.lat !== undefined && alert.lon !== undefined ? { lat: alert.lat, lon: alert.lon } : undefined;
  let tech: MapScene['tech'];
  if (techRes.ok && techRes.value.lat !== undefined && techRes.value.lon !== undefined) {
    const v = techRes.value;
    tech = { lat: v.lat!, lon: v.lon!, online: v.online, live: true };
    if (v.ts !== undefined) tech.ts = v.ts;
    if (v.acc !== undefined) tech.acc = v.acc;
  } else {
    if (!techRes.ok && techRes.status !== 404) problems.push(`position: ${techRes.msg}`);
    if (alertPos) tech = { ...alertPos, online: techRes.ok && techRes.value.online, live: false };
  }

  if (!trackRes.ok) problems.push(`track: ${trackRes.msg}`);

  const orderId = alert.order ?? (techRes.ok ? techRes.value.activeOrder : undefined);
  const centre = tech ?? alertPos;
  const [orderRes, nearbyRes] = await Promise.all([
    orderId === undefined ? undefined : api.get<OrderView>(`/v1/orders/${enc(orderId)}`),
    centre === undefined
      ? undefined
      : api.get<{ technicians: NearbyTechnician[] }>(`/v1/nearby?lat=${centre.lat}&lon=${centre.lon}`),
  ]);

  let fence: MapScene['fence'];
  if (orderRes?.ok) {
    const o = orderRes.value;
    fence = { orderId: o.id, centre: { lat: o.lat, lon: o.lon }, radiusM: o.radius };
    // The order's polygon is GeoJSON-ordered [lon, lat] pairs.
    if (o.polygon) fence.polygon = o.polygon.map(([lon, lat]) => ({ lat, lon }));
  } else if (orderRes && orderRes.status !== 404) {
    problems.push(`order: ${orderRes.msg}`);
  }

  let nearby: NearbyTechnician[] = [];
  if (nearbyRes?.ok) nearby = nearbyRes.value.technicians.filter((t) => t.id !== alert.tech).slice(0, NEARBY_SHOWN);
  else if (nearbyRes) problems.push(`nearby: ${nearbyRes.msg}`);

  const line = track.points.map(([, lat, lon]) => ({ lat, lon }));
  const scene: MapScene = { techId: alert.tech, track: line, nearby, problems };
  if (tech) scene.tech = tech;
  if (alertPos) scene.alertPos = alertPos;
  if (fence) scene.fence = fence;
  return scene;
}

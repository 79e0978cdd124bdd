/**
 * The map's geometry as pure functions: an equirectangular projection fitted to the
 * points of one incident (a few kilometres at most, where its distortion is far below a
 * pixel), and a scale bar of a round length. No tiles: the map is drawn from the
 * positions themselves.
 */
// The server's sphere (geofence/distance.ts has no imports, so it compiles for the browser too).
import { EARTH_RADIUS_M } from '../../geofence/distance.js';

/** WGS84 degrees. */
export interface LatLon {
  lat: number;
  lon: number;
}

/** Screen coordinates in the SVG's user units (pixels). */
export interface Point {
  x: number;
  y: number;
}

const RAD = Math.PI / 180;

/** Projects positions into a box; `metresPerPx` is the same along both axes. */
export interface Projection {
  project(p: LatLon): Point;
  readonly metresPerPx: number;
}

/** What to fit: points, and circles (centre and radius in metres) that must be whole on screen. */
export interface FitInput {
  points: readonly LatLon[];
  circles?: ReadonlyArray<{ centre: LatLon; radiusM: number }>;
}

/** Box to fit into, with a margin kept free on every side. */
export interface Box {
  width: number;
  height: number;
  margin: number;
}

/**
 * Fits everything in `input` into `box`, centred. `minSpanM` keeps a lone point (or a
 * cluster a few metres wide) from being zoomed in absurdly. Returns undefined when there
 * is nothing to fit.
 */
export function fitProjection(input: FitInput, box: Box, minSpanM = 400): Projection | undefined {
  const circles = input.circles ?? [];
  const all = [...input.points, ...circles.map((c) => c.centre)];
  if (all.length === 0) return undefined;
  // Centre latitude fixes the east-west scale (cos lat): one value for the whole map.
  const lat0 = (Math.min(...all.map((p) => p.lat)) + Math.max(...all.map((p) => p.lat))) / 2;
  const lon0 = (Math.min(...all.map((p) => p.lon)) + Math.max(...all.map((p) => p.lon))) / 2;
  const kx = EARTH_RADIUS_M * RAD * Math.cos(lat0 * RAD);
  const ky = EARTH_RADIUS_M * RAD;
  const toMetres = (p: LatLon): Point => ({ x: (p.lon - lon0) * kx, y: (p.lat - lat0) * ky });

  let minX = Number.POSITIVE_INFINITY;
  let maxX = Number.NEGATIVE_INFINITY;
  let minY = Number.POSITIVE_INFINITY;
  let maxY = Number.NEGATIVE_INFINITY;
  const extend = (m: Point, r: number): void => {
    minX = Math.min(minX, m.x - r);
    maxX = Math.max(maxX, m.x + r);
    minY = Math.min(minY, m.y - r);
    maxY = Math.max(maxY, m.y + r);
  };
  for (const p of input.points) extend(toMetres(p), 0);
  for (const c of circles) extend(toMetres(c.centre), c.radiusM);

  const spanX = Math.max(maxX - minX, minSpanM);
  const spanY = Math.max(maxY - minY, minSpanM);
  const innerW = Math.max(box.width - 2 * box.margin, 1);
  const innerH = Math.max(box.height - 2 * box.margin, 1);
  const metresPerPx = Math.max(spanX / innerW, spanY / innerH);
  const midX = (minX + maxX) / 2;
  const midY = (minY + maxY) / 2;
  return {
    metresPerPx,
    project(p) {
      const m = toMetres(p);
      // Screen y grows downwards; north is up.
      return { x: box.width / 2 + (m.x - midX) / metresPerPx, y: box.height / 2 - (m.y - midY) / metresPerPx };
    },
  };
}

/** The largest 1, 2 or 5 times a power of ten that is at most `metres`. */
export function roundDistance(metres: number): number {
  if (!(metres > 0)) return 0;
  const power = 10 ** Math.floor(Math.log10(metres));
  for (const step of [5, 2, 1]) if (step * power <= metres) return step * power;
  return power;
}

/** A scale bar of a round length, at most `maxPx` long. */
export function scaleBar(metresPerPx: number, maxPx: number): { metres: number; px: number; label: string } {
  const metres = roundDistance(metresPerPx * maxPx);
  return { metres, px: metres / metresPerPx, label: formatDistance(metres) };
}

/** "850 m", "1.2 km", "12 km". */
export function formatDistance(metres: number): string {
  if (metres < 1000) return `${Math.round(metres)} m`;
  const km = metres / 1000;
  return `${km < 10 ? km.toFixed(1).replace(/\.0$/, '') : Math.round(km)} km`;
}

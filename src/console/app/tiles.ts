/**
 * Real streets under a map, with no map library: Web Mercator (EPSG:3857, what every XYZ
 * raster tile source uses) as pure functions, and a tile layer that lays 256-pixel `<img>`
 * tiles in a grid behind the drawing. Only used when the operator configured a tile
 * template (MAP_TILE_URL); the page's CSP allows exactly that template's origin for images.
 */

import type { LatLon, Point } from './projection.js';

export type { LatLon, Point };

/** Edge of one tile in pixels. */
export const TILE_PX = 256;
/** Web Mercator stops at about ±85.05°. */
const MAX_LAT = 85.05112878;
const RAD = Math.PI / 180;

/** The point's position in "world pixels" at zoom `z` (the whole world is 256·2^z pixels wide). */
export function worldPx(p: LatLon, z: number): Point {
  const size = TILE_PX * 2 ** z;
  const lat = Math.max(-MAX_LAT, Math.min(MAX_LAT, p.lat)) * RAD;
  return {
    x: ((p.lon + 180) / 360) * size,
    y: ((1 - Math.log(Math.tan(lat) + 1 / Math.cos(lat)) / Math.PI) / 2) * size,
  };
}

/** A view: zoom and the world pixel at the top-left corner of a box of `width` x `height`. */
export interface MercatorView {
  z: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The closest zoom (at most `maxZoom`) at which every point fits in the box with `margin`
 * pixels free on each side, centred on the points' bounding box.
 */
export function fitView(
  points: readonly LatLon[],
  width: number,
  height: number,
  margin: number,
  maxZoom = 17,
): MercatorView {
  const first = points[0] ?? { lat: 0, lon: 0 };
  for (let z = maxZoom; z >= 0; z--) {
    const px = points.map((p) => worldPx(p, z));
    const xs = px.map((p) => p.x);
    const ys = px.map((p) => p.y);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    if (z === 0 || (maxX - minX <= width - 2 * margin && maxY - minY <= height - 2 * margin)) {
      const cx = px.length > 0 ? (minX + maxX) / 2 : worldPx(first, z).x;
      const cy = px.length > 0 ? (minY + maxY) / 2 : worldPx(first, z).y;
      return { z, left: cx - width / 2, top: cy - height / 2, width, height };
    }
  }
  throw new Error('unreachable');
}

/** Where `p` falls in the view's box. */
export function toScreen(view: MercatorView, p: LatLon): Point {
  const w = worldPx(p, view.z);
  return { x: w.x - view.left, y: w.y - view.top };
}

/** Metres per pixel at the view's centre (for a scale bar). */
export function metresPerPx(view: MercatorView): number {
  const size = TILE_PX * 2 ** view.z;
  const cy = view.top + view.height / 2;
  const lat = Math.atan(Math.sinh(Math.PI * (1 - (2 * cy) / size)));
  return (Math.cos(lat) * 2 * Math.PI * 6378137) / size;
}

/** One tile to draw: its URL and where its top-left corner goes in the box. */
export interface TilePlacement {
  url: string;
  x: number;
  y: number;
}

/** The template with `{z}`, `{x}`, `{y}` filled in. */
export function tileUrl(template: string, z: number, x: number, y: number): string {
  return template.replace('{z}', String(z)).replace('{x}', String(x)).replace('{y}', String(y));
}

/** Every tile covering the view (x wraps around the antimeridian; rows beyond the poles are skipped). */
export function tilesFor(view: MercatorView, template: string): TilePlacement[] {
  const n = 2 ** view.z;
  const out: TilePlacement[] = [];
  const x0 = Math.floor(view.left / TILE_PX);
  const x1 = Math.floor((view.left + view.width - 1) / TILE_PX);
  const y0 = Math.max(0, Math.floor(view.top / TILE_PX));
  const y1 = Math.min(n - 1, Math.floor((view.top + view.height - 1) / TILE_PX));
  for (let ty = y0; ty <= y1; ty++) {
    for (let tx = x0; tx <= x1; tx++) {
      const wrapped = ((tx % n) + n) % n;
      out.push({
        url: tileUrl(template, view.z, wrapped, ty),
        x: tx * TILE_PX - view.left,
        y: ty * TILE_PX - view.top,
      });
    }
  }
  return out;
}

/**
 * Keeps `container` filled with the tiles of the current view: images already in place
 * for the same URL and position stay (no reload, no flicker), the others are replaced.
 */
export class TileLayer {
  private readonly shown = new Map<string, HTMLImageElement>();

  constructor(
    private readonly container: HTMLElement,
    private readonly template: string,
  ) {}

  show(view: MercatorView): void {
    const wanted = new Map<string, TilePlacement>();
    for (const t of tilesFor(view, this.template)) wanted.set(`${t.url}@${t.x},${t.y}`, t);
    for (const [key, img] of this.shown) {
      if (!wanted.has(key)) {
        img.remove();
        this.shown.delete(key);
      }
    }
    for (const [key, t] of wanted) {
      if (this.shown.has(key)) continue;
      const img = document.createElement('img');
      img.alt = '';
      img.decoding = 'async';
      img.referrerPolicy = 'no-referrer';
      img.draggable = false;
      img.width = TILE_PX;
      img.height = TILE_PX;
      img.className = 'tile';
      img.style.left = `${Math.round(t.x)}px`;
      img.style.top = `${Math.round(t.y)}px`;
      img.src = t.url;
      this.container.append(img);
      this.shown.set(key, img);
    }
  }

  clear(): void {
    for (const img of this.shown.values()) img.remove();
    this.shown.clear();
  }
}

/**
 * Map tiles an operator configured (MAP_TILE_URL, an XYZ raster template) and the
 * Content-Security-Policy of the node's pages (safety console, customer page): same-origin
 * only, except that `img-src` also allows exactly the tile origin when there is one.
 */
import type { Config } from '../config.js';

/** What the pages need to draw tiles. */
export interface TileSettings {
  /** The template, `{z}/{x}/{y}` filled in by the page. */
  readonly url: string;
  readonly attribution: string;
  /** Scheme, host and port of the template: the one other origin the pages may load from. */
  readonly origin: string;
}

/** The configured tiles, or null without MAP_TILE_URL (pages then draw without tiles). */
export function tileSettings(config: Pick<Config, 'MAP_TILE_URL' | 'MAP_TILE_ATTRIBUTION'>): TileSettings | null {
  const url = config.MAP_TILE_URL;
  if (url === undefined) return null;
  const origin = new URL(url.replace('{z}', '0').replace('{x}', '0').replace('{y}', '0')).origin;
  return { url, attribution: config.MAP_TILE_ATTRIBUTION ?? '', origin };
}

/**
 * No inline script or style, no eval; scripts, styles and connections from the node's own
 * origin only (`connect-src 'self'` covers fetches, EventSource and the console's ws://);
 * images from the node and, when configured, the tile origin.
 */
export function pageCsp(tiles: TileSettings | null): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    tiles === null ? "img-src 'self'" : `img-src 'self' ${tiles.origin}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Draws a MapScene as SVG: without map tiles, the incident's own geometry on a plain grid —
 * geofence, customer, 30-minute track, the technician in trouble and the nearest online
 * technicians — with a scale bar and a north mark; with tiles configured (MAP_TILE_URL) the
 * same drawing in Web Mercator over real streets (`tiles.ts`). Each part carries
 * `data-role` (and `data-id` for technicians) so tests and assistive text can find it.
 */
import { svg } from './dom.js';
import type { TileSource } from './model.js';
import { fitProjection, formatDistance, type LatLon, type Projection, scaleBar } from './projection.js';
import type { MapScene } from './scene.js';
import { fitView, type MercatorView, metresPerPx, TILE_PX, tilesFor, toScreen } from './tiles.js';

const MARGIN = 36;

/** Replaces the content of `target` with `scene`, or with `message` when there is nothing to draw. */
export function drawMap(
  target: SVGSVGElement,
  scene: MapScene | undefined,
  message: string,
  tiles: TileSource | null = null,
): string {
  const width = Math.max(target.clientWidth, 200);
  const height = Math.max(target.clientHeight, 150);
  target.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const parts: SVGElement[] = [svg('rect', { class: 'map-bg', x: 0, y: 0, width, height })];

  const points: LatLon[] = [...(scene?.track ?? []), ...(scene?.nearby ?? [])];
  if (scene?.tech) points.push(scene.tech);
  if (scene?.alertPos) points.push(scene.alertPos);
  if (scene?.fence?.polygon) points.push(...scene.fence.polygon);
  const circles = scene?.fence ? [{ centre: scene.fence.centre, radiusM: scene.fence.radiusM }] : [];
  let view: MercatorView | undefined;
  let proj: Projection | undefined;
  if (scene !== undefined && tiles !== null && points.length + circles.length > 0) {
    view = fitView([...points, ...circles.flatMap((c) => circleBox(c.centre, c.radiusM))], width, height, MARGIN);
    const v = view;
    proj = { project: (p) => toScreen(v, p), metresPerPx: metresPerPx(v) };
  } else if (scene !== undefined) {
    proj = fitProjection({ points, circles }, { width, height, margin: MARGIN });
  }

  if (scene === undefined || proj === undefined) {
    parts.push(svg('text', { class: 'map-message', x: width / 2, y: height / 2, 'text-anchor': 'middle' }, message));
    target.replaceChildren(...parts);
    return message;
  }

  const bar = scaleBar(proj.metresPerPx, Math.min(160, width / 4));
  if (view !== undefined && tiles !== null) parts.push(tileImages(view, tiles));
  else parts.push(grid(width, height, bar.px));
  if (scene.fence) parts.push(fence(scene.fence, proj));
  if (scene.track.length > 0) parts.push(track(scene.track, proj));
  for (const [i, t] of scene.nearby.entries()) {
    const p = proj.project(t);
    parts.push(
      marker('nearby', t.id, [
        svg('circle', { class: 'map-nearby', cx: p.x, cy: p.y, r: 7 }),
        label(p, width, 11, 4 + (i % 2 === 0 ? 0 : 12), nearbyLabel(t), 'map-label'),
        svg('title', {}, `${t.id}, online, ${formatDistance(t.dist)} away`),
      ]),
    );
  }
  if (scene.alertPos && scene.tech?.live) {
    const p = proj.project(scene.alertPos);
    parts.push(
      marker('alert-position', undefined, [
        svg('circle', { class: 'map-alert-pos', cx: p.x, cy: p.y, r: 10 }),
        svg('title', {}, 'where the alert was raised'),
      ]),
    );
  }
  if (scene.tech) {
    const p = proj.project(scene.tech);
    // The accuracy circle, when it is larger than the marker itself.
    const accuracyPx = (scene.tech.acc ?? 0) / proj.metresPerPx;
    const halo =
      accuracyPx > 12
        ? [svg('circle', { class: 'map-tech-halo', cx: p.x, cy: p.y, r: Math.min(accuracyPx, 120) })]
        : [];
    parts.push(
      marker('technician', scene.techId, [
        ...halo,
        svg('circle', { class: 'map-tech', cx: p.x, cy: p.y, r: 9 }),
        label(p, width, 14, -10, scene.techId, 'map-label strong'),
        svg('title', {}, `${scene.techId}${scene.tech.live ? '' : ' (position when the alert was raised)'}`),
      ]),
    );
  }
  parts.push(scale(bar, height), north(width));
  if (view !== undefined && tiles !== null && tiles.attribution !== '') {
    parts.push(
      svg('text', { class: 'map-attribution', x: width - 4, y: height - 4, 'text-anchor': 'end' }, tiles.attribution),
    );
  }
  target.replaceChildren(...parts);
  return describe(scene);
}

function marker(role: string, id: string | undefined, children: SVGElement[]): SVGGElement {
  const g = svg('g', { 'data-role': role });
  if (id !== undefined) g.setAttribute('data-id', id);
  g.append(...children);
  return g;
}

/** A label beside a marker, on its left when the right side would run off the map. */
function label(
  p: { x: number; y: number },
  width: number,
  dx: number,
  dy: number,
  text: string,
  cls: string,
): SVGTextElement {
  const left = p.x + dx + text.length * 7.5 > width - 4;
  return svg(
    'text',
    { class: cls, x: left ? p.x - dx : p.x + dx, y: p.y + dy, ...(left ? { 'text-anchor': 'end' } : {}) },
    text,
  );
}

function nearbyLabel(t: { id: string; dist: number }): string {
  return `${t.id} · ${formatDistance(t.dist)}`;
}

/** Faint lines one scale-bar length apart: distances can be judged anywhere on the map. */
function grid(width: number, height: number, step: number): SVGGElement {
  const g = svg('g', { class: 'map-grid', 'aria-hidden': 'true' });
  if (step < 12) return g;
  for (let x = width / 2 - Math.floor(width / 2 / step) * step; x <= width; x += step) {
    g.append(svg('line', { x1: x, y1: 0, x2: x, y2: height }));
  }
  for (let y = height / 2 - Math.floor(height / 2 / step) * step; y <= height; y += step) {
    g.append(svg('line', { x1: 0, y1: y, x2: width, y2: y }));
  }
  return g;
}

function fence(f: NonNullable<MapScene['fence']>, proj: Projection): SVGGElement {
  const c = proj.project(f.centre);
  const shape = f.polygon
    ? svg('polygon', {
        class: 'map-fence',
        points: f.polygon
          .map((p) => proj.project(p))
          .map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`)
          .join(' '),
      })
    : svg('circle', { class: 'map-fence', cx: c.x, cy: c.y, r: Math.max(f.radiusM / proj.metresPerPx, 4) });
  return marker('geofence', f.orderId, [
    shape,
    svg('rect', {
      class: 'map-customer',
      x: c.x - 5,
      y: c.y - 5,
      width: 10,
      height: 10,
      transform: `rotate(45 ${c.x} ${c.y})`,
    }),
    // Below and to the left: the technician's label sits above and to the right, and an
    // SOS is usually raised at the customer's.
    svg('text', { class: 'map-label', x: c.x - 10, y: c.y + 22, 'text-anchor': 'end' }, `customer · ${f.orderId}`),
    svg('title', {}, `order ${f.orderId}: geofence ${f.polygon ? 'polygon' : `radius ${formatDistance(f.radiusM)}`}`),
  ]);
}

function track(points: LatLon[], proj: Projection): SVGGElement {
  const xy = points.map((p) => proj.project(p));
  const first = xy[0]!;
  return marker('track', undefined, [
    svg('polyline', { class: 'map-track', points: xy.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ') }),
    svg('circle', { class: 'map-track-start', cx: first.x, cy: first.y, r: 4 }),
    svg('title', {}, `track of the last 30 minutes, ${points.length} points`),
  ]);
}

function scale(bar: { px: number; label: string }, height: number): SVGGElement {
  const x = 16;
  const y = height - 18;
  return marker('scale', undefined, [
    svg('path', { class: 'map-scale', d: `M${x},${y - 6} V${y} H${x + bar.px} V${y - 6}` }),
    svg('text', { class: 'map-label', x: x + bar.px + 8, y: y + 4 }, bar.label),
  ]);
}

function north(width: number): SVGGElement {
  const x = width - 24;
  return marker('north', undefined, [
    svg('path', { class: 'map-scale', d: `M${x},40 V18 M${x - 6},25 L${x},16 L${x + 6},25` }),
    svg('text', { class: 'map-label', x: x - 4, y: 54 }, 'N'),
  ]);
}

/** The map in words, for screen readers (the SVG's accessible description). */
function describe(scene: MapScene): string {
  const parts: string[] = [];
  if (scene.tech) {
    parts.push(
      `${scene.techId} ${scene.tech.live ? 'last seen' : 'raised the alert'} at ${scene.tech.lat.toFixed(5)}, ${scene.tech.lon.toFixed(5)}`,
    );
  } else {
    parts.push(`no position known for ${scene.techId}`);
  }
  if (scene.fence) parts.push(`customer geofence of order ${scene.fence.orderId}`);
  parts.push(`track of the last 30 minutes: ${scene.track.length} points`);
  parts.push(
    scene.nearby.length === 0
      ? 'no other technician online nearby'
      : `nearest online: ${scene.nearby.map(nearbyLabel).join(', ')}`,
  );
  return `${parts.join('; ')}.`;
}

/** The tiles under the view, as SVG images (loaded from the tile origin the CSP allows). */
function tileImages(view: MercatorView, tiles: TileSource): SVGGElement {
  const g = svg('g', { 'data-role': 'tiles' });
  for (const t of tilesFor(view, tiles.url)) {
    g.append(svg('image', { href: t.url, x: t.x, y: t.y, width: TILE_PX, height: TILE_PX, class: 'map-tile' }));
  }
  return g;
}

/** Four points on a circle's bounding box, so fitting them keeps the whole circle on screen. */
function circleBox(centre: LatLon, radiusM: number): LatLon[] {
  const dLat = radiusM / 111_195;
  const dLon = dLat / Math.max(0.01, Math.cos((centre.lat * Math.PI) / 180));
  return [
    { lat: centre.lat + dLat, lon: centre.lon },
    { lat: centre.lat - dLat, lon: centre.lon },
    { lat: centre.lat, lon: centre.lon + dLon },
    { lat: centre.lat, lon: centre.lon - dLon },
  ];
}

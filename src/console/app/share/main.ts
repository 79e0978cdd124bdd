/**
 * The customer's page (`/t/<token>`): where the technician is and when they will arrive.
 * Made for a phone on a slow connection: the server renders the page in the customer's
 * language with its texts in a JSON data block (never executed: the CSP allows no inline
 * script), this module reads the state once (`/t/<token>/state`) and then follows the
 * stream (`/t/<token>/stream`, Server-Sent Events, reconnecting by itself). The map shows
 * the customer's address and, while the technician is on the way, the technician, on
 * real streets when the operator configured tiles, on a plain background otherwise.
 */
import type { ShareState } from '../../../protocol.js';
import { byId, svg } from '../dom.js';
import { fitView, type MercatorView, metresPerPx, TileLayer, toScreen } from '../tiles.js';

type Texts = Record<string, string>;
interface PageConfig {
  status: 'live' | 'gone' | 'unknown';
  tiles: { url: string; attribution: string } | null;
}

const texts = readJson<Texts>('texts');
const config = readJson<PageConfig>('config');
const base = window.location.pathname.replace(/\/+$/, '');

function readJson<T>(id: string): T {
  return JSON.parse(byId(`page-${id}`).textContent ?? 'null') as T;
}

/** A text with `{name}` filled in. */
function t(key: string, values: Record<string, string | number> = {}): string {
  return (texts[key] ?? key).replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ''));
}

function clock(ms: number, seconds = false): string {
  return new Date(ms).toLocaleTimeString(texts.htmlLang, {
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hour12: false,
  });
}

class SharePage {
  private readonly body = document.body;
  private readonly headline = byId('headline');
  private readonly eta = byId('eta');
  private readonly detail = byId('detail');
  private readonly updated = byId('updated');
  private readonly notice = byId('notice');
  private readonly mapBox = byId('map');
  private readonly tiles: TileLayer | null;
  private readonly overlay = byId<SVGSVGElement>('map-overlay');
  private stream: EventSource | null = null;
  private state: ShareState | null = null;
  private over = false;

  constructor() {
    this.tiles = config.tiles === null ? null : new TileLayer(byId('map-tiles'), config.tiles.url);
    if (config.tiles !== null) {
      byId('attribution').textContent = config.tiles.attribution;
      this.mapBox.dataset.tiles = 'on';
    }
    window.addEventListener('resize', () => this.drawMap());
  }

  async start(): Promise<void> {
    if (config.status !== 'live') {
      this.finish(config.status);
      return;
    }
    const res = await fetch(`${base}/state`, { cache: 'no-store' }).catch(() => null);
    if (res !== null && !this.over) {
      if (res.status === 410 || res.status === 404) return this.finish(res.status === 410 ? 'gone' : 'unknown');
      if (res.ok) this.render((await res.json()) as ShareState);
    }
    this.follow();
  }

  /** Follows the stream; EventSource reconnects by itself after a network error. */
  private follow(): void {
    const es = new EventSource(`${base}/stream`);
    this.stream = es;
    es.onmessage = (e: MessageEvent<string>) => {
      this.notice.hidden = true;
      this.render(JSON.parse(e.data) as ShareState);
    };
    es.addEventListener('gone', () => this.finish('gone'));
    es.onerror = () => {
      if (this.over) return;
      this.notice.textContent = t('reconnecting');
      this.notice.hidden = false;
      // A refused stream (404, 410) is not retried by the browser: ask the state why.
      if (es.readyState === EventSource.CLOSED) void this.recheck();
    };
  }

  private async recheck(): Promise<void> {
    const res = await fetch(`${base}/state`, { cache: 'no-store' }).catch(() => null);
    if (this.over) return;
    if (res?.status === 410) return this.finish('gone');
    if (res?.status === 404) return this.finish('unknown');
    if (res?.ok) this.render((await res.json()) as ShareState);
    setTimeout(() => {
      if (!this.over) this.follow();
    }, 3000);
  }

  /** The link is dead (or never was): say so, stop following, forget the positions. */
  private finish(status: 'gone' | 'unknown'): void {
    this.over = true;
    this.stream?.close();
    this.stream = null;
    this.state = null;
    this.body.dataset.link = status;
    this.headline.textContent = t(status === 'gone' ? 'gone' : 'notFound');
    this.eta.textContent = '';
    this.detail.textContent = '';
    this.updated.textContent = '';
    this.notice.hidden = true;
    this.mapBox.hidden = true;
    this.tiles?.clear();
    this.overlay.replaceChildren();
  }

  private render(state: ShareState): void {
    if (this.over) return;
    this.state = state;
    const { order, technician, eta } = state;
    this.body.dataset.link = 'live';
    this.body.dataset.state = order.state;
    this.headline.textContent = t(order.state);
    if (eta !== null) {
      this.body.dataset.etaSeconds = String(eta.seconds);
      const min = Math.ceil(eta.seconds / 60);
      this.eta.textContent = eta.seconds < 60 ? t('etaSoon') : t('eta', { min });
      const km = eta.metres / 1000;
      const far = eta.metres >= 1000 ? t('distance', { km: km.toFixed(1) }) : t('distanceM', { m: eta.metres });
      this.detail.textContent = `${far} · ${t(eta.source === 'route' ? 'viaRoute' : 'viaLine')}`;
    } else {
      delete this.body.dataset.etaSeconds;
      this.eta.textContent = '';
      this.detail.textContent = order.state === 'assigned' ? t('scheduledFor', { time: clock(order.scheduledAt) }) : '';
    }
    this.updated.textContent = technician !== null ? t('updated', { time: clock(technician.ts, true) }) : '';
    this.drawMap();
  }

  private drawMap(): void {
    const state = this.state;
    if (state === null) return;
    const width = this.mapBox.clientWidth;
    const height = this.mapBox.clientHeight;
    if (width === 0 || height === 0) return;
    const home = { lat: state.order.lat, lon: state.order.lon };
    const points = state.technician === null ? [home] : [home, state.technician];
    // A lone address is shown at street level; two points as close as the box allows.
    const view: MercatorView = fitView(points, width, height, 48, state.technician === null ? 16 : 17);
    this.tiles?.show(view);
    this.overlay.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const parts: SVGElement[] = [];
    const h = toScreen(view, home);
    if (state.technician !== null) {
      const p = toScreen(view, state.technician);
      parts.push(svg('line', { x1: p.x, y1: p.y, x2: h.x, y2: h.y, class: 'leg' }));
      parts.push(svg('circle', { cx: p.x, cy: p.y, r: 14, class: 'tech-halo' }));
      parts.push(svg('circle', { cx: p.x, cy: p.y, r: 9, class: 'tech', 'data-marker': 'technician' }));
      parts.push(svg('text', { x: p.x, y: p.y - 20, class: 'label' }, t('technician')));
    }
    parts.push(svg('path', { d: pin(h.x, h.y), class: 'home', 'data-marker': 'customer' }));
    parts.push(svg('text', { x: h.x, y: h.y + 22, class: 'label' }, t('you')));
    parts.push(...scaleBar(view, height));
    this.overlay.replaceChildren(...parts);
  }
}

/** A map pin whose tip is at (x, y). */
function pin(x: number, y: number): string {
  return `M${x},${y} c-6,-9 -11,-14 -11,-21 a11,11 0 1 1 22,0 c0,7 -5,12 -11,21 z`;
}

/** A scale bar of a round length in the bottom-left corner. */
function scaleBar(view: MercatorView, height: number): SVGElement[] {
  const mpp = metresPerPx(view);
  const steps = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000];
  const metres = steps.filter((m) => m / mpp <= 100).pop() ?? steps[0]!;
  const px = metres / mpp;
  const y = height - 14;
  const label = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  return [
    svg('path', { d: `M12,${y - 5} V${y} H${12 + px} V${y - 5}`, class: 'scale' }),
    svg('text', { x: 16 + px, y, class: 'scale-label' }, label),
  ];
}

void new SharePage().start();

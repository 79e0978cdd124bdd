/**
 * A small hand-written SVG line chart for the bench's results: panels stacked over one
 * shared x axis, each with its own y axis (linear, or logarithmic for latencies that span
 * milliseconds to seconds), measured series with a marker per point, reference lines, and
 * a legend. A pure function of its data, so the bench needs no plotting dependency and a
 * test can read the output.
 */

/** How a series is drawn: measured data gets markers, references are plain dashed lines. */
export type SeriesStyle = 'measured' | 'reference';

/** One line of a panel. */
export interface Series {
  name: string;
  color: string;
  style: SeriesStyle;
  /** `[x, y]`; a y of null leaves a gap (nothing measured there). */
  points: ReadonlyArray<readonly [number, number | null]>;
  /** A short text above each measured point, in the order of `points` (e.g. the step's load). */
  labels?: readonly string[];
}

/** One panel: a y axis and its lines. */
export interface Panel {
  yLabel: string;
  yScale: 'linear' | 'log';
  series: readonly Series[];
}

/** A whole chart. */
export interface Chart {
  title: string;
  xLabel: string;
  panels: readonly Panel[];
  width?: number;
  panelHeight?: number;
}

const MARGIN = { left: 78, right: 16, top: 40, gap: 62, bottom: 48 } as const;
const LEGEND_ROW = 18;
/** Rough width of one legend character at 12 px, to size the legend column. */
const CHAR_PX = 6.6;
const LEGEND_SWATCH = 44;

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A round step giving about `count` ticks over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 2.5 ? 2.5 : unit <= 5 ? 5 : 10) * power;
}

/** Linear ticks from 0 past `max`, and the axis top they end at. */
function linearTicks(max: number): { ticks: number[]; top: number } {
  const step = niceStep(max > 0 ? max : 1, 5);
  const top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { ticks, top };
}

/** Powers of ten spanning [min, max]. */
function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-3)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, 1e-3))));
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

/** A tick label: 12,500 -> "12.5k", 0.1 -> "0.1". */
export function formatTick(v: number): string {
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return `${Number(v.toPrecision(3))}`;
}

type Scale = (v: number) => number;

function values(series: readonly Series[], axis: 0 | 1): number[] {
  return series.flatMap((s) =>
    s.points.map((p) => p[axis]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)),
  );
}

/** The y scale and ticks of one panel, mapping into [bottom, top] pixels. */
function yAxis(panel: Panel, top: number, bottom: number): { scale: Scale; ticks: number[] } {
  const ys = values(panel.series, 1);
  if (panel.yScale === 'log') {
    const positive = ys.filter((v) => v > 0);
    const ticks = positive.length === 0 ? [1, 10] : logTicks(Math.min(...positive), Math.max(...positive));
    const lo = Math.log10(ticks[0] as number);
    const hi = Math.log10(ticks[ticks.length - 1] as number);
    const scale = (v: number): number =>
      bottom - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (bottom - top);
    return { scale, ticks };
  }
  const { ticks, top: max } = linearTicks(Math.max(0, ...ys));
  return { scale: (v) => bottom - (v / max) * (bottom - top), ticks };
}

/** One series as path segments between measured points (a null y breaks the line). */
function seriesPath(s: Series, x: Scale, y: Scale): string {
  const parts: string[] = [];
  let pen = 'M';
  for (const [px, py] of s.points) {
    if (py === null || !Number.isFinite(py)) {
      pen = 'M';
      continue;
    }
    parts.push(`${pen}${x(px).toFixed(1)},${y(py).toFixed(1)}`);
    pen = 'L';
  }
  return parts.join(' ');
}

function seriesSvg(s: Series, x: Scale, y: Scale): string {
  const dash = s.style === 'reference' ? ' stroke-dasharray="6 4"' : '';
  const width = s.style === 'reference' ? 1.5 : 2.5;
  const out = [
    `<path class="series" data-name="${escapeXml(s.name)}" d="${seriesPath(s, x, y)}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="${width}"${dash}/>`,
  ];
  if (s.style !== 'measured') return out.join('\n');
  s.points.forEach(([px, py], i) => {
    if (py === null || !Number.isFinite(py)) return;
    out.push(
      `<circle class="point" cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="4" fill="${escapeXml(s.color)}"><title>${escapeXml(`${s.name}: ${formatTick(px)}, ${formatTick(py)}`)}</title></circle>`,
    );
    const label = s.labels?.[i];
    if (label !== undefined)
      out.push(
        `<text class="point-label" x="${x(px).toFixed(1)}" y="${(y(py) - 9).toFixed(1)}" text-anchor="middle">${escapeXml(label)}</text>`,
      );
  });
  return out.join('\n');
}

/** Width of the legend column: the longest name of any panel. */
function legendWidth(series: readonly Series[]): number {
  return Math.ceil(Math.max(0, ...series.map((s) => s.name.length)) * CHAR_PX + LEGEND_SWATCH);
}

/** A panel's legend, in the column right of the plots, so it never covers a line. */
function legendSvg(series: readonly Series[], left: number, top: number): string {
  return series
    .map((s, i) => {
      const y = top + i * LEGEND_ROW;
      const dash = s.style === 'reference' ? ' stroke-dasharray="6 4"' : '';
      return [
        `<line x1="${left}" y1="${y}" x2="${left + 24}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2.5"${dash}/>`,
        `<text class="legend" x="${left + 30}" y="${y + 4}">${escapeXml(s.name)}</text>`,
      ].join('\n');
    })
    .join('\n');
}

/** Renders `chart` as a standalone SVG document. */
export function renderChart(chart: Chart): string {
  const all = chart.panels.flatMap((p) => p.series);
  const legend = legendWidth(all);
  const width = chart.width ?? 660 + legend;
  const panelHeight = chart.panelHeight ?? 260;
  const plotLeft = MARGIN.left;
  const plotRight = width - MARGIN.right - legend - 16;
  const height = MARGIN.top + chart.panels.length * (panelHeight + MARGIN.gap) - MARGIN.gap + MARGIN.bottom;
  const { ticks: xTicks, top: xMax } = linearTicks(Math.max(0, ...values(all, 0)));
  const x: Scale = (v) => plotLeft + (v / xMax) * (plotRight - plotLeft);
  const body: string[] = [];
  chart.panels.forEach((panel, i) => {
    const top = MARGIN.top + i * (panelHeight + MARGIN.gap);
    const bottom = top + panelHeight;
    const { scale: y, ticks } = yAxis(panel, top, bottom);
    body.push(`<g class="panel">`);
    for (const t of ticks)
      body.push(
        `<line class="grid" x1="${plotLeft}" y1="${y(t).toFixed(1)}" x2="${plotRight}" y2="${y(t).toFixed(1)}"/>`,
        `<text class="tick" x="${plotLeft - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${formatTick(t)}</text>`,
      );
    for (const t of xTicks)
      body.push(
        `<line class="grid" x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${bottom}"/>`,
        `<text class="tick" x="${x(t).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${formatTick(t)}</text>`,
      );
    body.push(
      `<rect class="frame" x="${plotLeft}" y="${top}" width="${plotRight - plotLeft}" height="${panelHeight}"/>`,
      `<text class="axis-label" transform="translate(${plotLeft - 58},${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`,
      `<text class="axis-label" x="${(plotLeft + plotRight) / 2}" y="${bottom + 36}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
      `<clipPath id="clip${i}"><rect x="${plotLeft}" y="${top}" width="${plotRight - plotLeft}" height="${panelHeight}"/></clipPath>`,
      `<g clip-path="url(#clip${i})">`,
      ...panel.series.map((s) => seriesSvg(s, x, y)),
      '</g>',
      legendSvg(panel.series, plotRight + 16, top + 10),
      '</g>',
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    '<style>.grid{stroke:#e4e4e4}.frame{fill:none;stroke:#888}.tick{fill:#555}.axis-label{fill:#222;font-size:13px}.legend{fill:#222}.point-label{fill:#333;font-size:11px}.title{font-size:15px;font-weight:bold}</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text class="title" x="${plotLeft}" y="24">${escapeXml(chart.title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

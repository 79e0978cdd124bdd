/** The bench's hand-written SVG chart, read back as text (no browser, no timing). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, formatTick, renderChart } from '../../load/svg-chart.js';

const chart = renderChart({
  title: 'goodput <vs> offered & "latency"',
  xLabel: 'offered fixes/s',
  panels: [
    {
      yLabel: 'goodput, acked fixes/s',
      yScale: 'linear',
      series: [
        {
          name: 'goodput',
          color: '#1f77b4',
          style: 'measured',
          points: [
            [1000, 1000],
            [2000, 1900],
            [3000, 1950],
          ],
          labels: ['0.5x', '1x', '<1.5x>'],
        },
        {
          name: 'ideal',
          color: '#888',
          style: 'reference',
          points: [
            [0, 0],
            [3000, 3000],
          ],
        },
      ],
    },
    {
      yLabel: 'p99 latency, ms (log)',
      yScale: 'log',
      series: [
        {
          name: 'SOS p99 <a&b>',
          color: '#ff7f0e',
          style: 'measured',
          points: [
            [1000, 12],
            [2000, null],
            [3000, 4200],
          ],
        },
        {
          name: '50 ms target',
          color: '#d62728',
          style: 'reference',
          points: [
            [0, 50],
            [3000, 50],
          ],
        },
      ],
    },
  ],
});

const count = (text: string, needle: string): number => text.split(needle).length - 1;

test('a standalone SVG document', () => {
  assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(chart, /<\/svg>\n$/);
});

test('one marker per measured point, none for references or gaps', () => {
  assert.equal(count(chart, '<circle class="point"'), 3 + 2);
});

test('axis labels and legend entries are written', () => {
  for (const label of ['offered fixes/s', 'goodput, acked fixes/s', 'p99 latency, ms (log)', 'goodput', 'ideal'])
    assert.ok(chart.includes(`>${label}<`), label);
  assert.ok(count(chart, 'class="legend"') === 4);
});

test('text is escaped', () => {
  assert.ok(chart.includes('goodput &#60;vs&#62; offered &#38; &#34;latency&#34;'));
  assert.ok(chart.includes('SOS p99 &#60;a&#38;b&#62;'));
  assert.ok(!chart.includes('<vs>'));
  assert.ok(!chart.includes('<a&b>'));
  assert.equal(escapeXml(`<'&">`), '&#60;&#39;&#38;&#34;&#62;');
});

test('point labels are written, escaped, one per labelled point', () => {
  assert.equal(count(chart, 'class="point-label"'), 3);
  assert.ok(chart.includes('>0.5x<'));
  assert.ok(chart.includes('>&#60;1.5x&#62;<'));
});

test('a gap splits a measured line into separate moves', () => {
  const path = /data-name="SOS p99 &#60;a&#38;b&#62;" d="([^"]*)"/.exec(chart)?.[1] ?? '';
  assert.equal(count(path, 'M'), 2);
  assert.equal(count(path, 'L'), 0);
});

test('a log axis has power-of-ten ticks spanning the data', () => {
  for (const tick of ['>10<', '>100<', '>1k<', '>10k<']) assert.ok(chart.includes(tick), tick);
});

test('tick labels are short', () => {
  assert.equal(formatTick(12_500), '12.5k');
  assert.equal(formatTick(2000), '2k');
  assert.equal(formatTick(0.1), '0.1');
  assert.equal(formatTick(0), '0');
});

/**
 * How long an SOS takes to become visible in a safety console in a real browser: a real
 * node, the console page in headless Chromium, and devices that each press SOS once. The
 * page timestamps the moment each alert row enters the DOM (a MutationObserver, so no
 * polling delay is measured); the figure is that moment minus the device's receipt of its
 * `ack`. The target is one second. Writes `load/results/console-latency.json`.
 *
 * `npm run bench:console [-- --sos 40 --gap-ms 250]`
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeviceClient } from '../src/client/index.js';
import { launchChromium } from '../test/support/chromium.js';
import { ConsolePage } from '../test/support/console-page.js';
import { latencyHistogram, launch, mint } from './launch.js';

const { values } = parseArgs({
  options: {
    sos: { type: 'string', default: '40' },
    'gap-ms': { type: 'string', default: '250' },
  },
});
const sosCount = Number(values.sos);
const gapMs = Number(values['gap-ms']);
const TARGET_MS = 1000;
const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records, inside the page, when each alert row (by data-id) first appears. */
const OBSERVE_ROWS = `
  window.__rowSeenAt = {};
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('#alerts [role="option"][data-id]')) {
      const id = el.getAttribute('data-id');
      if (!(id in window.__rowSeenAt)) window.__rowSeenAt[id] = Date.now();
    }
  }).observe(document.body, { childList: true, subtree: true });
`;

async function main(): Promise<void> {
  const server = await launch('full');
  const browser = await launchChromium();
  const devices: DeviceClient[] = [];
  try {
    const con = await ConsolePage.open(browser.context, server.httpUrl);
    await con.signIn(await mint('op-bench', 'safety'));
    await con.waitLive();
    await con.page.evaluate(OBSERVE_ROWS);

    const ackedAt = new Map<string, number>();
    for (let i = 0; i < sosCount; i++) {
      const d = new DeviceClient({ url: server.wsUrl, token: await mint(`tech-cl-${i}`, 'device') });
      await d.connect();
      devices.push(d);
      const reply = await d.sos({ ts: Date.now(), lat: 48.85 + i / 10_000, lon: 2.35, note: 'bench' });
      const at = Date.now();
      if (reply.t === 'ack' && typeof reply.incident === 'string') ackedAt.set(reply.incident, at);
      process.stderr.write(`\rSOS ${i + 1}/${sosCount} `);
      await sleep(gapMs);
    }
    process.stderr.write('\n');
    await sleep(2000);
    const seenAt = (await con.page.evaluate('window.__rowSeenAt')) as Record<string, number>;

    const hist = latencyHistogram();
    let seen = 0;
    for (const [id, at] of ackedAt) {
      const shown = seenAt[id];
      if (shown === undefined) continue;
      seen++;
      // A row can appear a hair before the device has read its ack; that counts as 0.
      hist.recordValue(Math.max(shown - at, 0) + 1);
    }
    const measured = seen > 0;
    const q = (p: number): number | null => (measured ? hist.getValueAtPercentile(p) - 1 : null);
    const result = {
      when: new Date().toISOString(),
      node: process.version,
      sosSent: sosCount,
      sosAcked: ackedAt.size,
      sosShown: seen,
      visibleMs: { p50: q(50), p99: q(99), max: measured ? hist.maxValue - 1 : null },
      target: `every acked SOS shown, p99 < ${TARGET_MS} ms`,
      verdict: !measured
        ? 'not measured'
        : seen === ackedAt.size && ackedAt.size === sosCount && (q(99) ?? Infinity) < TARGET_MS
          ? 'met'
          : 'not met',
    };
    writeFileSync(
      join(here, '..', '..', 'load', 'results', 'console-latency.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    console.log(JSON.stringify(result, null, 2));
    if (result.verdict !== 'met') process.exitCode = 1;
  } finally {
    for (const d of devices) await d.close().catch(() => {});
    await browser.close();
    await server.stop();
  }
}

await main();

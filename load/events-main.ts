/**
 * `npm run bench:events [-- --quick]`: the events part of `npm run bench` alone
 * (events-bench.ts); prints its table and writes `load/results/events-bench[-quick].json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { eventsTable, runEventsBench } from './events-bench.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results');
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick === true;
const result = await runEventsBench(quick);
mkdirSync(OUT, { recursive: true });
writeFileSync(
  join(OUT, `events-bench${quick ? '-quick' : ''}.json`),
  `${JSON.stringify({ date: new Date().toISOString(), quick, ...result }, null, 2)}\n`,
);
process.stdout.write(`${eventsTable(result).join('\n')}\n`);

/**
 * `npm run bench:events [-- --quick] [--rounds N]`: the events part of `npm run bench` alone
 * (events-bench.ts; `--rounds`: how many turns the hold arms take, 2 by default, 1 with
 * `--quick`); prints its table and writes `load/results/events-bench[-quick].json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { eventsTable, runEventsBench } from './events-bench.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'load', 'results');
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } } });
const quick = values.quick === true;
const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1 || rounds > 10)) {
  throw new Error(`--rounds: ${values.rounds} is not a count from 1 to 10`);
}
const result = await runEventsBench(quick, rounds);
mkdirSync(OUT, { recursive: true });
writeFileSync(
  join(OUT, `events-bench${quick ? '-quick' : ''}.json`),
  `${JSON.stringify({ date: new Date().toISOString(), quick, ...result }, null, 2)}\n`,
);
process.stdout.write(`${eventsTable(result).join('\n')}\n`);

/**
 * `npm run replay-dead-letter`: inserts the archive's dead letters (`${DATA_DIR}/dead-letter/*.json`,
 * rows a store refused for good) into the configured store once their cause is fixed, and
 * moves each file that landed to `dead-letter/replayed/`. Reads the node's configuration
 * from the environment like the server (DATA_DIR, CLICKHOUSE_URL).
 *
 * With the embedded store (no CLICKHOUSE_URL) the node must be stopped first: chDB's data
 * folder belongs to one process at a time. With a ClickHouse server it can run any time.
 *
 * Exit status: 0 when every file was replayed (or there was none), 1 when some stay, 2
 * for a configuration or store error.
 */
import { join } from 'node:path';
import { openStore } from '../telemetry/archive-factory.js';
import { DEAD_LETTER_DIR, listDeadLetters, replayDeadLetters } from '../telemetry/dead-letter.js';
import { createSchema } from '../telemetry/spooled-archive.js';
import { configOrExit } from './config-or-exit.js';

async function main(): Promise<number> {
  const config = configOrExit();
  const dir = join(config.DATA_DIR, DEAD_LETTER_DIR);
  if ((await listDeadLetters(dir)).length === 0) {
    process.stdout.write(`no dead letters in ${dir}\n`);
    return 0;
  }
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config);
    await createSchema(store);
  } catch (err) {
    process.stderr.write(
      `cannot open the archive store: ${(err as Error).message}\n` +
        (config.CLICKHOUSE_URL ? '' : 'With the embedded store, stop the node first: its data folder is in use.\n'),
    );
    return 2;
  }
  try {
    const outcomes = await replayDeadLetters(store, dir);
    let rows = 0;
    for (const o of outcomes) {
      if (o.ok) {
        rows += o.rows;
        process.stdout.write(`replayed ${o.file} (${o.rows} rows)\n`);
      } else {
        process.stdout.write(`kept ${o.file} (${o.rows} rows): ${o.kind} failure: ${o.error}\n`);
      }
    }
    const kept = outcomes.filter((o) => !o.ok).length;
    process.stdout.write(
      `${outcomes.length - kept} of ${outcomes.length} dead-letter files replayed (${rows} rows) into ${store.name}\n`,
    );
    return kept === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

process.exitCode = await main();

/**
 * Erasing one technician from the archive, on both stores (embedded chDB and a Debian
 * clickhouse-server 18.16): pings, order events and alert events of that technician are
 * gone, including rows that were still spooled when the erase began; other technicians'
 * rows are untouched.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { ArchiveRecord } from '../src/telemetry/archive.js';
import { archiveOptions, openStore } from '../src/telemetry/archive-factory.js';
import { SpooledArchive } from '../src/telemetry/spooled-archive.js';
import { ClickHouseServer } from './support/clickhouse-server.js';
import { eventually } from './support/eventually.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function recordsOf(tech: string, now: number, n: number): ArchiveRecord[] {
  const out: ArchiveRecord[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      table: 'pings',
      row: { tech, ts: now - 60_000 + i, lat: 1, lon: 1, acc: null, spd: null, hdg: null, bat: null },
    });
  }
  out.push({
    table: 'order_events',
    row: { order: `o-${tech}`, tech, state: 'assigned', ts: now, lat: null, lon: null },
  });
  out.push({
    table: 'alert_events',
    row: {
      alert: `a-${tech}`,
      kind: 'sos',
      level: 1,
      state: 'open',
      tech,
      order: null,
      ts: now,
      raisedAt: now,
      lat: 1,
      lon: 1,
      detail: '{}',
    },
  });
  return out;
}

for (const kind of ['chdb', 'clickhouse-server'] as const) {
  describe(`erasing a technician from the archive (${kind})`, () => {
    it('removes every row of that technician, spooled ones too, and keeps the others', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'fieldtrack-erase-'));
      dirs.push(dataDir);
      const ch = kind === 'clickhouse-server' ? await ClickHouseServer.launch() : undefined;
      try {
        const config = loadConfig({
          TRACKER_INSECURE_DEV: '1',
          DATA_DIR: dataDir,
          ARCHIVE_BATCH_MS: '50',
          ...(ch ? { CLICKHOUSE_URL: ch.url } : {}),
        });
        const store = await openStore(config);
        const archive = await SpooledArchive.open(store, archiveOptions(config), createLogger('silent'), new Metrics());
        const now = Date.now();
        await archive.write([...recordsOf('tech-gone', now, 50), ...recordsOf('tech-kept', now, 50)]);
        await eventually(
          'rows in the archive',
          async () => (await archive.track('tech-kept', 0, now)).length >= 50,
          60_000,
        );
        // More rows of the technician, still in the spool when the erase starts.
        await archive.write(recordsOf('tech-gone', now + 1000, 20));
        await archive.eraseTechnician('tech-gone');
        assert.deepEqual(await archive.track('tech-gone', 0, now + 10_000), []);
        assert.deepEqual(await archive.orderEvents('o-tech-gone'), []);
        assert.equal((await archive.track('tech-kept', 0, now)).length, 50);
        assert.equal((await archive.orderEvents('o-tech-kept')).length, 1);
        const check = await openStore(config);
        try {
          const alerts = await check.query('SELECT tech, count() FROM alert_events GROUP BY tech ORDER BY tech');
          assert.deepEqual(
            alerts.map((r) => [String(r[0]), Number(r[1])]),
            [['tech-kept', 1]],
          );
        } finally {
          await check.close();
        }
        await archive.close();
      } finally {
        await ch?.destroy();
      }
    });
  });
}

/**
 * The journal on a real tmpfs filled to the last byte: bulk writes are refused and never
 * become state, safety writes are stored with space given back by the reserve, bulk
 * writes stay refused while any of the reserve is given away, and once space is freed the
 * probe takes the reserve back and everything is accepted again. Needs root (mount).
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isStorageFailure } from '../src/actors/persistence.js';
import type { LiveKinds, LiveRecord } from '../src/actors/records.js';
import { ManualClock } from '../src/clock.js';
import { createLogger } from '../src/log.js';
import type { Alert } from '../src/protocol.js';
import { Journal, JournalFullError, RESERVE_FILE } from '../src/storage/journal.js';
import { eventually } from './support/eventually.js';
import { Tmpfs } from './support/tmpfs.js';

const log = createLogger('silent');
const RESERVE = 256 * 1024;
const PROBE_MS = 2000;

function alert(id: string, note: string): LiveRecord {
  const a: Alert = { id, kind: 'sos', level: 1, state: 'open', tech: 't-1', ts: 1_000, detail: { note } };
  return { k: 'a', a };
}

async function replayed(dir: string): Promise<Map<string, string>> {
  const { journal, records } = await Journal.open<LiveKinds>(dir, new ManualClock(), log, { reserveBytes: RESERVE });
  await journal.close();
  const out = new Map<string, string>();
  for (const r of records) if (r.k === 'a') out.set(r.a.id, String(r.a.detail?.note));
  return out;
}

describe('journal on a full disk (real tmpfs)', () => {
  // A filesystem of its own per test: a failed test must not leave the next one a full disk.
  let fs: Tmpfs;
  beforeEach(() => {
    fs = Tmpfs.mount(16);
  });
  afterEach(() => fs?.unmount());

  it('refuses bulk writes, stores safety writes from the reserve, and recovers when space returns', async () => {
    const dir = join(fs.dir, 'data');
    const clock = new ManualClock();
    const { journal } = await Journal.open<LiveKinds>(dir, clock, log, { reserveBytes: RESERVE, probeMs: PROBE_MS });
    const reservePath = join(dir, RESERVE_FILE);
    assert.equal((await stat(reservePath)).size, RESERVE);
    await journal.put(alert('before', 'x'));
    const filler = await fs.fill();
    assert.equal(fs.available, 0);

    // Bulk writes until the disk refuses one: what was left in the segment's last page
    // takes a few, then the refusal is a storage failure, not a bug.
    const note = 'n'.repeat(200);
    let refused: unknown = null;
    const stored: string[] = [];
    for (let i = 0; i < 10_000 && refused === null; i++) {
      try {
        await journal.put(alert(`bulk-${i}`, note));
        stored.push(`bulk-${i}`);
      } catch (err) {
        refused = Object.assign(err as Error, { id: `bulk-${i}` });
      }
    }
    assert.ok(refused !== null, 'the full disk refused a bulk write');
    assert.equal((refused as NodeJS.ErrnoException).code, 'ENOSPC');
    assert.ok(isStorageFailure(refused));
    const refusedId = (refused as { id: string }).id;
    assert.equal(journal.health().ok, false);
    assert.equal((await stat(reservePath)).size, RESERVE, 'a bulk write never takes from the reserve');

    // A safety write of the same size is stored: the reserve gives back space for it.
    await journal.put(alert('sos-1', note), 'safety');
    const held = (await stat(reservePath)).size;
    assert.ok(held < RESERVE, `the reserve gave space back (${held} of ${RESERVE})`);
    const health = journal.health();
    assert.equal(health.ok, false);
    assert.match(health.detail ?? '', /disk full/);
    // ...and bulk writes are now refused before they touch the disk, so the freed space stays for safety.
    await assert.rejects(journal.put(alert('bulk-after', note)), JournalFullError);
    // More safety writes keep going.
    for (let i = 2; i <= 20; i++) await journal.put(alert(`sos-${i}`, note), 'safety');

    await fs.free(filler);
    clock.advance(PROBE_MS);
    await eventually('the journal to be healthy again', () => journal.health().ok);
    assert.equal((await stat(reservePath)).size, RESERVE);
    await journal.put(alert('bulk-later', note));
    await journal.close();

    const state = await replayed(dir);
    assert.equal(state.has(refusedId), false, 'the refused write is not there after a restart');
    assert.equal(state.has('bulk-after'), false);
    for (const id of ['before', ...stored, 'bulk-later']) assert.ok(state.has(id), id);
    for (let i = 1; i <= 20; i++) assert.ok(state.has(`sos-${i}`), `sos-${i}`);
  });

  it('starts on a full disk, refusing bulk writes until the reserve is back', async () => {
    const dir = join(fs.dir, 'data-2');
    const first = await Journal.open<LiveKinds>(dir, new ManualClock(), log, {
      reserveBytes: RESERVE,
      probeMs: PROBE_MS,
    });
    await first.journal.put(alert('kept', 'x'));
    await first.journal.close();
    // The reserve file is what a full disk at start takes away: drop it, then fill.
    const filler = await fs.fill('filler');
    await fs.free(join(dir, RESERVE_FILE));
    const filler2 = await fs.fill('filler-2');

    const clock = new ManualClock();
    const { journal, records } = await Journal.open<LiveKinds>(dir, clock, log, {
      reserveBytes: RESERVE,
      probeMs: PROBE_MS,
    });
    assert.deepEqual(
      records.map((r) => (r.k === 'a' ? r.a.id : r.k)),
      ['kept'],
    );
    assert.equal(journal.acceptsBulk, false);
    await assert.rejects(journal.put(alert('bulk', 'x')), JournalFullError);

    await fs.free(filler);
    await fs.free(filler2);
    clock.advance(PROBE_MS);
    await eventually('the reserve to be taken back', () => journal.acceptsBulk);
    await journal.put(alert('bulk', 'x'));
    assert.equal(journal.health().ok, true);
    await journal.close();
  });
});

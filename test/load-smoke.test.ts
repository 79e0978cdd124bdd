/**
 * A small run of the load simulator against the real server: a few devices for a few
 * seconds, including jobs, an SOS and a console. No timing thresholds: it asserts that
 * nothing failed and that every ping sent was acked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launch } from '../load/launch.js';
import { runSim } from '../load/sim.js';

test('the simulator runs a few devices with zero errors and every ping acked', { timeout: 120_000 }, async () => {
  const server = await launch('full');
  try {
    const r = await runSim(server, {
      devices: 6,
      pingHz: 4,
      seconds: 3,
      jobShare: 0.5,
      sosPerSec: 1,
      consoles: 1,
      processes: 2,
    });
    assert.equal(r.connected, 6);
    assert.deepEqual(r.errors, {});
    assert.ok(r.sent > 0, 'pings were sent');
    assert.equal(r.acks, r.sent, 'every request was acked');
    assert.ok(r.ack.count > 0);
    assert.ok(r.sos.sent > 0, 'an SOS was sent');
    assert.equal(r.sos.seen, r.sos.sent, 'every SOS reached the console');
    assert.ok((r.server.archiveRowsPerSec ?? 0) > 0, 'the archive stored rows during the run');
  } finally {
    await server.stop();
  }
});

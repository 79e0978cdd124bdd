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

test('the simulator honours retryMs: rate-limited pings arrive later, none is lost', { timeout: 120_000 }, async () => {
  // One message per second per device against 10 pings per second: most pings are refused
  // with rate_limited, and each device's uplink resends them in batches after retryMs.
  const server = await launch('full', { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' });
  try {
    const r = await runSim(server, {
      devices: 2,
      pingHz: 10,
      seconds: 3,
      jobShare: 0,
      sosPerSec: 0,
      consoles: 0,
      processes: 1,
    });
    assert.equal(r.connected, 2);
    assert.ok(r.rateLimited > 0, 'the server refused some pings with rate_limited');
    assert.deepEqual(r.errors, {});
    assert.equal(r.acks, r.sent, 'every fix was acked, as a ping or in a batch');
  } finally {
    await server.stop();
  }
});

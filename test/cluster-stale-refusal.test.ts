/**
 * A write Redis refused as stale reaches the technician's owner at once, with no restart
 * (seed 28 of the chaos campaign). Two nodes on one real redis-server: the device is on
 * node A, which runs its technician. Redis is stopped; a dispatcher's new order for that
 * technician reaches node B, which cannot tell where the technician runs and serves the
 * order from its own state (acked, journaled, its mirror write queued with B's token for
 * that technician: none). Redis comes back and refuses the write as stale (A holds the
 * lease under a newer token). The order must still reach A, which runs the technician:
 * the device on A can depart it, and A's GET shows it, without any node being restarted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { eventually } from './support/eventually.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';

const SITE = PLACES.paris;

let cluster: Cluster;
before(async () => {
  cluster = await Cluster.launch(2, QUIET_DEADLINES_ENV);
});
after(async () => {
  await cluster?.destroy();
});

describe('an order acked on a node whose write redis refused as stale', () => {
  it('reaches the node that runs the technician without a restart', async () => {
    const [a, b] = cluster.nodes as [ServerProcess, ServerProcess];
    const tech = 'stale-tech';
    const order = 'stale-order';
    const onA = await a.device(tech);
    assert.equal((await onA.ping({ ts: Date.now(), ...SITE })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 30_000);

    await cluster.redis.stop();
    // B cannot read where the technician runs: it serves the order from its own state.
    const put = await b.http('PUT', `/v1/orders/${order}`, {
      role: 'dispatch',
      body: { technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    await cluster.redis.start();

    // Redis refuses B's write: A kept the technician's lease under a newer token.
    await b.waitForLog(
      (l) =>
        l.msg === 'redis refused a stale write: another node holds this technician' &&
        l.what === 'order' &&
        l.tech === tech,
      60_000,
    );
    // The device on A departs the order: A has it, with nobody restarted.
    const departed = await eventually('the device on A departs the order', async () => {
      const r = await onA.depart(order);
      return r.t === 'ack' ? r : undefined;
    });
    assert.equal(departed.t, 'ack');
    const onAState = await a.http('GET', `/v1/orders/${order}`, { role: 'dispatch' });
    assert.equal((onAState.body as OrderView).state, 'departed', onAState.text);
    // Sent to the owner, not written by B under its stale token.
    await b.waitForLog((l) => l.msg === 'journal reconciliation: sent to the owner' && l.tech === tech);
    assert.equal(a.exitCode, undefined, 'A was not restarted');
    assert.equal(b.exitCode, undefined, 'B was not restarted');
    await onA.close();
  });
});

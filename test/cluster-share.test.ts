/**
 * The customer tracking link on two real nodes sharing one real redis-server: a link made
 * on node A answers on node B (`/state` and the stream); the technician runs on A and its
 * departure and positions reach a stream opened on B; a revocation on A ends the stream
 * open on B and B answers `410` from then on, also after B is killed and restarted on its
 * DATA_DIR; a link made after the revocation lives on both. While Redis is down a
 * revocation is refused with `503` (nothing claimed), and a node that read the revocations
 * before the outage keeps answering `410` for the revoked link and `200` for the live one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceClient } from '../src/client/index.js';
import type { ShareLink, ShareState } from '../src/protocol.js';
import { Cluster } from './support/cluster.js';
import { PLACES, QUIET_DEADLINES_ENV } from './support/fixtures.js';
import type { ServerProcess } from './support/server-process.js';
import { north, SseReader } from './support/share.js';

const HOME = PLACES.berlin;
const TECH = 'share-tech';
const ORDER = 'share-order';

let cluster: Cluster;
const streams: SseReader[] = [];
let device: DeviceClient | undefined;

before(async () => {
  cluster = await Cluster.launch(2, QUIET_DEADLINES_ENV);
});
after(async () => {
  for (const s of streams) s.close();
  await device?.close().catch(() => {});
  await cluster?.destroy();
});

const nodes = () => cluster.nodes as [ServerProcess, ServerProcess];
const share = async (node: ServerProcess, order: string): Promise<ShareLink> => {
  const res = await node.http('POST', `/v1/orders/${order}/share`, { role: 'dispatch' });
  assert.equal(res.status, 201, res.text);
  return res.body as ShareLink;
};
const stateStatus = async (node: ServerProcess, token: string): Promise<number> => {
  const res = await fetch(`${node.httpUrl}/t/${token}/state`);
  await res.body?.cancel();
  return res.status;
};
const stream = async (node: ServerProcess, token: string): Promise<SseReader> => {
  const s = await SseReader.open(`${node.httpUrl}/t/${token}/stream`);
  streams.push(s);
  return s;
};

describe('customer tracking link on two nodes', () => {
  let link: ShareLink;
  let other: ShareLink;
  let onB: SseReader;
  let otherOnB: SseReader;
  let live: SseReader;
  let ts = Date.now() - 60_000;

  it('a link made on A answers on B, and B streams the drive of a technician run by A', async () => {
    const [a, b] = nodes();
    device = await a.device(TECH);
    ts += 1000;
    assert.equal((await device.ping({ ts, ...north(HOME, 3000), acc: 5 })).t, 'ack');
    await a.waitForLog((l) => l.msg === 'technician taken over' && l.tech === TECH, 30_000);
    const put = await a.http('PUT', `/v1/orders/${ORDER}`, {
      role: 'dispatch',
      body: { technician: TECH, ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
    });
    assert.equal(put.status, 200, put.text);
    link = await share(a, ORDER);
    other = await share(a, ORDER);

    const res = await fetch(`${b.httpUrl}/t/${link.token}/state`);
    assert.equal(res.status, 200);
    const s = (await res.json()) as ShareState;
    assert.equal(s.order.state, 'assigned');
    assert.equal(s.technician, null);

    onB = await stream(b, link.token);
    otherOnB = await stream(b, other.token);
    await onB.next((x) => x.order.state === 'assigned', 'the assigned state on B');
    assert.equal((await device.depart(ORDER)).t, 'ack');
    await onB.next((x) => x.order.state === 'departed' && x.technician !== null, 'the departure on B');
    for (const m of [2500, 2000]) {
      ts += 1000;
      const p = north(HOME, m);
      assert.equal((await device.ping({ ts, ...p, acc: 5 })).t, 'ack');
      const seen = await onB.next((x) => x.technician?.ts === ts, `the fix ${m} m out, on B`);
      assert.deepEqual(seen.technician, { ...p, ts });
      assert.equal(seen.eta?.source, 'straight_line');
    }
  });

  it('a revocation on A ends the streams open on B, and B answers 410', async () => {
    const [a, b] = nodes();
    const del = await a.http('DELETE', `/v1/orders/${ORDER}/share`, { role: 'dispatch' });
    assert.equal(del.status, 200, del.text);
    // Pushed to B: its streams end without anyone asking B anything.
    await onB.end();
    await otherOnB.end();
    assert.equal(onB.gone, true, "B's stream said gone");
    assert.equal(otherOnB.gone, true, "B's second stream said gone");
    for (const token of [link.token, other.token]) {
      assert.equal(await stateStatus(b, token), 410);
      assert.equal((await fetch(`${b.httpUrl}/t/${token}`)).status, 410);
      assert.equal((await SseReader.open(`${b.httpUrl}/t/${token}/stream`)).status, 410);
    }
    // A link made after the revocation, on B this time, lives on both nodes.
    const fresh = await share(b, ORDER);
    assert.equal(await stateStatus(a, fresh.token), 200);
    assert.equal(await stateStatus(b, fresh.token), 200);
    link = fresh;
  });

  it('B keeps the revocation across kill -9 and a restart', async () => {
    const b = nodes()[1];
    await b.crash();
    cluster.nodes[1] = await cluster.startNode(b.dataDir);
    const b2 = nodes()[1];
    // Right after its start: B waits for its first read of the revocations, it does not answer 503.
    assert.equal(await stateStatus(b2, other.token), 410, 'the revoked link on the restarted B');
    assert.equal(await stateStatus(b2, link.token), 200, 'the live link on the restarted B');
    live = await stream(b2, link.token);
    await live.next((x) => x.order.state === 'departed', 'the departed state on the restarted B');
  });

  it('while redis is down a revocation is refused with 503, and B answers from what it read', async () => {
    const [a, b] = nodes();
    await cluster.redis.stop();
    try {
      const del = await a.http('DELETE', `/v1/orders/${ORDER}/share`, { role: 'dispatch' });
      assert.equal(del.status, 503, del.text);
      assert.equal((del.body as { code?: string }).code, 'unavailable');
      assert.equal(await stateStatus(b, other.token), 410);
      assert.equal(await stateStatus(b, link.token), 200);
      // Longer than a request to another node waits (10 s) while B refreshes the order every
      // second and cannot reach A: the customer's stream waits, it is not told the link died.
      await new Promise((r) => setTimeout(r, 12_000));
      assert.equal(live.gone, false, 'the live stream on B was told gone during the outage');
      assert.equal(live.ended, false, 'the live stream on B ended during the outage');
    } finally {
      await cluster.redis.start();
    }
    // The refused DELETE changed nothing: the link still lives once Redis is back.
    assert.equal(await stateStatus(a, link.token), 200);
  });
});

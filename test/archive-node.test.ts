/**
 * The archive as a device and a console see it, on a real node with the embedded store:
 * a batch from a phone whose clock is wrong (points a day apart) is acked and archived
 * without holding up anything after it, and a track is read in pages (`limit`, `next`)
 * that neither skip nor repeat a point at their borders.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceClient, TrackPoint } from '../src/client/index.js';
import { MAX_BATCH_POINTS } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { ServerProcess } from './support/server-process.js';

const DAY_MS = 86_400_000;
type Pt = [number, number, number, number];

interface TrackAnswer {
  id: string;
  points: TrackPoint[];
  next?: number;
}

describe('archive on a real node', () => {
  let server: ServerProcess;
  const devices: DeviceClient[] = [];

  before(async () => {
    // A year of retention so that the wrong clock's points are inside the window.
    server = await ServerProcess.start({ env: { ARCHIVE_BATCH_MS: '100', RETENTION_DAYS: '400' } });
  });
  after(async () => {
    for (const d of devices) await d.close().catch(() => {});
    await server?.stop();
  });

  const device = async (sub: string): Promise<DeviceClient> => {
    const d = await server.device(sub);
    devices.push(d);
    return d;
  };

  /** Sends `pts` in batches as large as the protocol allows, waiting out `rate_limited` answers. */
  const sendAll = async (d: DeviceClient, pts: Pt[]): Promise<void> => {
    for (let i = 0; i < pts.length; ) {
      const chunk = pts.slice(i, i + MAX_BATCH_POINTS);
      const reply = await d.batch(chunk);
      if (reply.t === 'err' && reply.code === 'rate_limited') {
        await new Promise((r) => setTimeout(r, Number((reply as { retryMs?: number }).retryMs ?? 100)));
        continue;
      }
      assert.equal(reply.t, 'ack', JSON.stringify(reply));
      i += chunk.length;
    }
  };

  const track = async (tech: string, query: string): Promise<{ status: number; body: TrackAnswer }> => {
    const res = await server.http('GET', `/v1/technicians/${tech}/track?${query}`, { role: 'safety' });
    return { status: res.status, body: res.body as TrackAnswer };
  };

  it('acks and archives a batch of 150 points one day apart, and archives every row after it', async () => {
    const now = Date.now();
    const wrong = await device('wrong-clock');
    const pts: Pt[] = Array.from({ length: 150 }, (_, i) => [now - (150 - i) * DAY_MS, 48.1, 11.5, 10]);
    const ack = await wrong.batch(pts);
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    const other = await device('after-wrong-clock');
    assert.equal((await other.ping({ ts: now, lat: 48.2, lon: 11.6, acc: 5 })).t, 'ack');

    await eventually('the later ping is archived', async () => {
      const res = await track('after-wrong-clock', `from=${now - 1000}&to=${now + 1000}`);
      return res.body.points?.length === 1;
    });
    const res = await track('wrong-clock', `from=${now - 151 * DAY_MS}&to=${now}`);
    assert.deepEqual(
      res.body.points.map((p) => p[0]),
      pts.map((p) => p[0]),
    );
    const ready = await server.http('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
  });

  it('answers at most `limit` points and `next` until the window is complete, without gaps or repeats', async () => {
    const d = await device('pager');
    const end = Date.now() - 1000;
    // 5003 points a second apart, then the first thousand again (an offline backlog replayed).
    const pts: Pt[] = Array.from({ length: 5003 }, (_, i) => [end - (5002 - i) * 1000, 48 + i / 1e5, 11, 5]);
    await sendAll(d, pts);
    await sendAll(d, pts.slice(0, 1000));
    const from = pts[0]![0];
    const window = `from=${from}&to=${end}`;
    await eventually(
      'all points archived',
      async () => (await track('pager', `${window}&limit=10000`)).body.points?.length === 5003,
    );

    const whole = await track('pager', `${window}&limit=10000`);
    assert.equal(whole.body.next, undefined, 'the window is complete');
    assert.deepEqual(
      whole.body.points.map((p) => p[0]),
      pts.map((p) => p[0]),
    );

    // Default limit: 5000 points, then the rest from `next`.
    const first = await track('pager', window);
    assert.equal(first.status, 200);
    assert.equal(first.body.points.length, 5000);
    assert.equal(first.body.next, pts[4999]![0] + 1);
    const rest = await track('pager', `from=${first.body.next}&to=${end}`);
    assert.deepEqual(
      rest.body.points.map((p) => p[0]),
      pts.slice(5000).map((p) => p[0]),
    );
    assert.equal(rest.body.next, undefined);
  });

  it('pages through points a millisecond apart without skipping or repeating any at the borders', async () => {
    const d = await device('borders');
    const base = Date.now() - 60_000;
    // Clusters of consecutive milliseconds: a page can end on any of them.
    const times = [0, 1, 2, 3, 10, 11, 20, 21, 22, 30, 31, 32, 33, 34, 40, 50, 51];
    const pts: Pt[] = times.map((t, i) => [base + t, 48 + i / 1e4, 11, 5]);
    await sendAll(d, pts);
    await sendAll(d, pts.slice(3, 9));
    const to = base + 100;
    await eventually(
      'all points archived',
      async () => (await track('borders', `from=${base}&to=${to}`)).body.points?.length === pts.length,
    );
    for (const limit of [1, 2, 3, 4, 7, 16, 17, 18]) {
      const seen: number[] = [];
      let from: number | undefined = base;
      let pages = 0;
      while (from !== undefined) {
        const page = await track('borders', `from=${from}&to=${to}&limit=${limit}`);
        assert.equal(page.status, 200);
        assert.ok(page.body.points.length <= limit);
        seen.push(...page.body.points.map((p) => p[0]));
        from = page.body.next;
        if (from !== undefined) assert.equal(page.body.points.length, limit, 'only a full page has a next');
        assert.ok(++pages <= pts.length + 1, 'paging ends');
      }
      assert.deepEqual(
        seen,
        pts.map((p) => p[0]),
        `limit ${limit}`,
      );
    }
  });

  it('refuses a limit that is not a whole number in [1, 10000]', async () => {
    const now = Date.now();
    for (const limit of ['0', '-1', '10001', '2.5', 'abc', '1e9']) {
      const res = await track('pager', `from=${now - 1000}&to=${now}&limit=${limit}`);
      assert.equal(res.status, 400, `limit=${limit}`);
      assert.equal((res.body as unknown as { code: string }).code, 'bad_request');
    }
    assert.equal((await track('pager', `from=${now - DAY_MS}&to=${now}&limit=10000`)).status, 200);
  });
});

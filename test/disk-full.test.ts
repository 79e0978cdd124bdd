/**
 * The real server with DATA_DIR on a real 64 MiB tmpfs filled to the last byte:
 * - pings, an order transition, an order upsert and an erasure are refused with
 *   `unavailable` (never `internal`) and are not there after a restart;
 * - an SOS, its presses, an operator's ack and another SOS with its `sos_cancel` are acked
 *   (the journal's reserve gives them space) and survive a kill -9 and a restart on the
 *   still full disk;
 * - once the filler is deleted, `/readyz` returns to 200 and writes are acked again.
 * Needs root (mount); fails with a clear message otherwise.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Alert, OrderView, TrackPoint } from '../src/client/index.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';
import { Tmpfs } from './support/tmpfs.js';

const HOME = PLACES.milan;
const ENV = {
  RATE_LIMIT_PER_SEC: '10000',
  RATE_LIMIT_BURST: '10000',
  RATE_LIMIT_DISCONNECT_AFTER: '100000',
  // Far away: the escalation ladder must not add writes of its own during the test.
  SOS_LEVEL2_MS: '3600000',
  SOS_LEVEL3_MS: '7200000',
  SOS_SLA_MS: '7200000',
};

interface Readiness {
  ok: boolean;
  down: string[];
  components: Record<string, { ok: boolean; detail?: string }>;
}

async function readiness(server: ServerProcess): Promise<{ status: number; body: Readiness }> {
  const res = await server.http('GET', '/readyz');
  return { status: res.status, body: res.body as Readiness };
}

async function orderState(server: ServerProcess, id: string): Promise<string> {
  const res = await server.http('GET', `/v1/orders/${id}`, { role: 'dispatch' });
  assert.equal(res.status, 200, res.text);
  return (res.body as OrderView).state;
}

async function sosAlerts(server: ServerProcess, tech: string): Promise<Alert[]> {
  const res = await server.http('GET', '/v1/alerts', { role: 'safety' });
  return (res.body as { alerts: Alert[] }).alerts.filter((a) => a.kind === 'sos' && a.tech === tech);
}

describe('a node whose disk is full (real tmpfs)', () => {
  it('refuses bulk writes with unavailable, keeps SOS working through kill -9, and recovers when space returns', async () => {
    const fs = Tmpfs.mount(64);
    const servers: ServerProcess[] = [];
    try {
      const dataDir = join(fs.dir, 'data');
      const first = await ServerProcess.start({ dataDir, env: ENV });
      servers.push(first);
      const put = await first.http('PUT', '/v1/orders/full-1', {
        role: 'dispatch',
        body: { technician: 'tech-full', ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
      });
      assert.equal(put.status, 200, put.text);
      const device = await first.device('tech-full');
      const t0 = Date.now();
      let seq = 0;
      const acked: number[] = [];
      const ping = async (): Promise<{ t: string; code?: unknown; ts: number }> => {
        const ts = t0 + seq++;
        const reply = await device.ping({ ts, ...HOME, acc: 5 });
        if (reply.t === 'ack') acked.push(ts);
        return { t: reply.t, code: reply.code, ts };
      };
      assert.equal((await ping()).t, 'ack');
      const idle = await first.device('tech-idle');
      assert.equal((await idle.ping({ ts: Date.now(), ...HOME, acc: 5 })).t, 'ack');
      await idle.close();
      assert.equal((await readiness(first)).status, 200);

      const filler = await fs.fill();
      assert.equal(fs.available, 0, 'the disk is full to the last byte');

      // Pings until one is refused: the spool's last page may still take a few.
      let refusedPing: { t: string; code?: unknown; ts: number } | null = null;
      for (let i = 0; i < 5000 && refusedPing === null; i++) {
        const r = await ping();
        if (r.t !== 'ack') refusedPing = r;
      }
      assert.ok(refusedPing !== null, 'a ping was refused on the full disk');
      assert.equal(refusedPing.code, 'unavailable');
      const later = await ping();
      assert.equal(later.t, 'err');
      assert.equal(later.code, 'unavailable');
      const refusedTs = [refusedPing.ts, later.ts];

      const depart = await device.depart('full-1');
      assert.equal(depart.t, 'err');
      assert.equal(depart.code, 'unavailable', JSON.stringify(depart));
      assert.equal(await orderState(first, 'full-1'), 'assigned');
      const upsert = await first.http('PUT', '/v1/orders/full-2', {
        role: 'dispatch',
        body: { technician: 'tech-full', ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 30 },
      });
      assert.equal(upsert.status, 503, upsert.text);
      assert.equal((upsert.body as { code: string }).code, 'unavailable');

      // The SOS is acked. Presses follow until the journal has used its reserve for them.
      const sos = await device.sos({ ts: Date.now(), ...HOME, note: 'help' });
      assert.equal(sos.t, 'ack', JSON.stringify(sos));
      const incident = String(sos.incident);
      let presses = 1;
      const reserveUsed = (): boolean =>
        first.logs.some((l) => l.msg === 'journal: disk full, reserve space given to a safety write');
      for (let i = 0; i < 500 && !reserveUsed(); i++) {
        const press = await device.sos({ ts: Date.now(), ...HOME, note: `press ${i} ${'x'.repeat(150)}` });
        assert.equal(press.t, 'ack', JSON.stringify(press));
        presses++;
      }
      assert.ok(reserveUsed(), 'the reserve gave space to the SOS presses');
      const safety = await first.safety('op-full');
      const ack = await safety.ack(incident);
      assert.equal(ack.t, 'ack', JSON.stringify(ack));
      await safety.close();
      // A false alarm of another technician: its SOS and its cancellation are acked too.
      const other = await first.device('tech-full-2');
      const falseAlarm = await other.sos({ ts: Date.now(), ...HOME });
      assert.equal(falseAlarm.t, 'ack', JSON.stringify(falseAlarm));
      const cancel = await other.sosCancel(String(falseAlarm.incident));
      assert.equal(cancel.t, 'ack', JSON.stringify(cancel));
      await other.close();

      const full = await readiness(first);
      assert.equal(full.status, 503);
      assert.ok(full.body.down.includes('journal'), JSON.stringify(full.body));
      assert.match(full.body.components.journal?.detail ?? '', /disk full/);
      // Still refused while the reserve is partly given away, and so is an erasure.
      assert.equal((await device.depart('full-1')).code, 'unavailable');
      const erase = await first.http('DELETE', '/v1/technicians/tech-idle', { role: 'dispatch' });
      assert.equal(erase.status, 503, erase.text);
      assert.equal((erase.body as { code: string }).code, 'unavailable');
      assert.equal(
        first.logs.filter((l) => l.level >= 50 && l.msg === 'message handler failed').length,
        0,
        'no message ended in internal',
      );
      await device.close();

      await first.crash();
      const second = await ServerProcess.start({ dataDir, env: ENV });
      servers.push(second);
      const restored = await sosAlerts(second, 'tech-full');
      assert.equal(restored.length, 1);
      assert.equal(restored[0]!.id, incident);
      assert.equal(restored[0]!.state, 'acknowledged');
      assert.equal(restored[0]!.detail?.presses, presses);
      const cancelled = await sosAlerts(second, 'tech-full-2');
      assert.equal(cancelled.length, 1);
      assert.equal(cancelled[0]!.state, 'resolved');
      assert.equal(cancelled[0]!.detail?.cancelled, true);
      assert.equal(await orderState(second, 'full-1'), 'assigned', 'the refused transition is not there');
      assert.equal((await second.http('GET', '/v1/orders/full-2', { role: 'dispatch' })).status, 404);
      assert.equal((await readiness(second)).status, 503, 'still full after the restart');

      await fs.free(filler);
      await eventually('readyz to return to 200', async () => (await readiness(second)).status === 200, 30_000);
      const again = await second.device('tech-full');
      const tsAgain = Date.now();
      const pingAgain = await again.ping({ ts: tsAgain, ...HOME, acc: 5 });
      assert.equal(pingAgain.t, 'ack', JSON.stringify(pingAgain));
      acked.push(tsAgain);
      assert.equal((await again.depart('full-1')).t, 'ack');
      assert.equal(await orderState(second, 'full-1'), 'departed');

      // The archive has every acked ping and none of the refused ones.
      const track = await eventually(
        'the acked pings in the archive',
        async () => {
          const res = await second.http('GET', `/v1/technicians/tech-full/track?from=${t0 - 1}`, { role: 'safety' });
          const tss = new Set((res.body as { points: TrackPoint[] }).points.map((p) => p[0]));
          return acked.every((ts) => tss.has(ts)) ? tss : undefined;
        },
        60_000,
      );
      for (const ts of refusedTs) assert.equal(track.has(ts), false, `refused ping ${ts} is not archived`);
      await again.close();
    } finally {
      for (const s of servers) {
        if (s.exitCode === undefined) await s.crash().catch(() => undefined);
      }
      fs.unmount();
    }
  });
});

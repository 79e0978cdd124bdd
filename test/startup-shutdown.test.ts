/** Start-up refusals and graceful shutdown of the real server process. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionClosedError, type Reply } from '../src/client/index.js';
import { ServerProcess } from './support/server-process.js';

describe('start-up', () => {
  it('refuses to start without TRACKER_JWT_SECRET, naming it', async () => {
    const run = await ServerProcess.runToExit({});
    assert.equal(run.code, 2);
    assert.match(run.stderr, /TRACKER_JWT_SECRET is required/);
  });

  it('names every bad variable', async () => {
    const run = await ServerProcess.runToExit({ TRACKER_JWT_SECRET: 'x'.repeat(40), PORT: 'http', OFFLINE_MS: '-1' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /PORT must be a whole number/);
    assert.match(run.stderr, /OFFLINE_MS must be between/);
  });

  it('runs in insecure development mode only when asked, and says so loudly', async () => {
    const server = await ServerProcess.start({ env: { TRACKER_JWT_SECRET: '', TRACKER_INSECURE_DEV: '1' } });
    const warning = server.logs.find((l) => /INSECURE DEVELOPMENT MODE/.test(l.msg));
    assert.ok(warning, 'expected a loud warning');
    assert.equal(warning.level, 40);
    assert.equal(await server.stop(), 0);
  });

  it('starts with an unreachable REDIS_URL, serves its devices and reports redis on /readyz', async () => {
    const server = await ServerProcess.start({ env: { REDIS_URL: 'redis://127.0.0.1:1' } });
    try {
      const device = await server.device('tech-r1');
      const reply = await device.ping({ ts: Date.now(), lat: 48.85, lon: 2.35 });
      assert.equal(reply.t, 'ack');
      const ready = await server.http('GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.text, /redis/);
      await device.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

describe('graceful shutdown', () => {
  it('answers what it accepted, closes clients with 1001 and exits 0', async () => {
    const server = await ServerProcess.start();
    const device = await server.device('tech-s1');
    const safety = await server.safety('op-s1');
    const deviceClosed = new Promise<number>((resolve) => device.once('close', (code) => resolve(code)));
    const safetyClosed = new Promise<number>((resolve) => safety.once('close', (code) => resolve(code)));
    const t0 = Date.now() - 10_000;
    const pings: Promise<Reply>[] = [];
    for (let i = 0; i < 40; i++) pings.push(device.ping({ ts: t0 + i, lat: 10, lon: 10 + i / 1000 }));
    server.terminate();
    const settled = await Promise.allSettled(pings);
    assert.equal(await deviceClosed, 1001);
    assert.equal(await safetyClosed, 1001);
    assert.equal(await server.waitForExit(), 0);
    assert.ok(server.logs.some((l) => l.msg === 'shutdown complete'));

    // Every ping is either acked or visibly not (its connection closed); nothing acked is lost.
    const acked: number[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') {
        assert.equal(s.value.t, 'ack');
        acked.push(t0 + i);
      } else assert.ok(s.reason instanceof ConnectionClosedError);
    });
    // The pings went out before SIGTERM, so the node had them in hand: it must answer some.
    assert.ok(acked.length > 0, 'some pings were acked before the shutdown, so the check below tests something');
    const restarted = await ServerProcess.start({ dataDir: server.dataDir });
    try {
      let stored: number[] = [];
      for (let i = 0; i < 100; i++) {
        const res = await restarted.http('GET', `/v1/technicians/tech-s1/track?from=${t0}&to=${t0 + 100}`, {
          role: 'safety',
        });
        stored = (res.body as { points: number[][] }).points.map((p) => p[0] ?? 0);
        if (acked.every((ts) => stored.includes(ts))) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const ts of acked) assert.ok(stored.includes(ts), `acked ping ${ts} missing from the archive`);
    } finally {
      await restarted.stop();
      server.cleanup();
    }
  });

  it('refuses new upgrades while shutting down', async () => {
    const server = await ServerProcess.start();
    server.terminate();
    assert.equal(await server.waitForExit(), 0);
    await assert.rejects(server.device('tech-late'));
    server.cleanup();
  });
});

/**
 * `/readyz`'s answer (src/gateway/readiness.ts): PROTOCOL.md's 200/503 on the archive and
 * shared state, the per-component body, and `?for=devices`, which a load balancer routing
 * devices uses (503 only when the node cannot store what its devices send).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readyAnswer } from '../../src/gateway/readiness.js';

const ok = { ok: true };
const redisDown = { ok: false, detail: 'redis connection reconnecting', devices: 'degraded' as const };
const journalFailed = { ok: false, detail: 'write failed: EIO', devices: 'refused' as const };

describe('/readyz', () => {
  it('is 200 with everything reachable, devices served', () => {
    const r = readyAnswer({ archive: ok, journal: ok, redis: ok }, false, null);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.down, []);
    assert.deepEqual(r.json.devices, { state: 'served', served: true });
  });

  it('is 503 naming redis when it is down, while this node still serves its devices', () => {
    const r = readyAnswer({ archive: ok, journal: ok, redis: redisDown }, false, null);
    assert.equal(r.status, 503);
    assert.deepEqual(r.json.down, ['redis']);
    assert.equal(r.json.components.redis?.detail, redisDown.detail);
    assert.deepEqual(r.json.devices, { state: 'degraded', served: true });
    assert.equal(readyAnswer({ archive: ok, journal: ok, redis: redisDown }, false, 'devices').status, 200);
  });

  it('tells a device balancer to go elsewhere when the journal cannot store, or the node shuts down', () => {
    const failed = readyAnswer({ archive: ok, journal: journalFailed, redis: redisDown }, false, 'devices');
    assert.equal(failed.status, 503);
    assert.deepEqual(failed.json.devices, { state: 'refused', served: false });
    assert.deepEqual(failed.json.down, ['journal', 'redis']);
    const closing = readyAnswer({ archive: ok, journal: ok }, true, 'devices');
    assert.equal(closing.status, 503);
    assert.deepEqual(closing.json.down, ['gateway']);
  });

  it('counts a component down without a word on devices as refusing them', () => {
    const r = readyAnswer({ archive: { ok: false, detail: 'x' }, journal: ok }, false, 'devices');
    assert.equal(r.status, 503);
    assert.deepEqual(r.json.devices, { state: 'refused', served: false });
  });
});

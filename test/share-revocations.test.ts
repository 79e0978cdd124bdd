/**
 * The link revocation backends (src/shared/share-revocations*.ts). One contract over both,
 * the node's DATA_DIR and a real redis-server: a revocation keeps the later time, is read
 * back by a second instance (a restart, another node) and is forgotten once its links have
 * all expired. Then what only Redis does: other nodes hear a revocation (`onRevoked`);
 * while Redis is down a revocation is refused, and reads answer from what the node read
 * before (or refuse, if it never read anything); a revocation published while a node was
 * disconnected is learned when it reconnects; what Redis lost (a failover to a replica
 * that lacked the last writes) is written back; corrupt entries are reported and ignored;
 * revocations a node made alone (DATA_DIR) are carried into Redis when it joins several.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RevocationsUnavailable, type ShareRevocations } from '../src/shared/share-revocations.js';
import { LocalShareRevocations } from '../src/shared/share-revocations-local.js';
import { RedisShareRevocations, type RedisShareRevocationsOptions } from '../src/shared/share-revocations-redis.js';
import { eventually } from './support/eventually.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;
let raw: Redis;
const opened: ShareRevocations[] = [];
const dirs: string[] = [];
before(async () => {
  redis = await RedisServer.launch();
  raw = new Redis(redis.url);
});
after(async () => {
  for (const r of opened) await r.close().catch(() => {});
  raw.disconnect();
  await redis.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const now = Date.UTC(2026, 0, 1);
/** The Redis backend's clock (it prunes by it); the DATA_DIR one prunes by the revocation's time. */
let clock = now;

/** A backend and a way to open another instance over the same storage (a restart, another node). */
interface Backend {
  open(maxLinkMs: number): Promise<ShareRevocations>;
}

const localBackend = (): Backend => {
  const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-revocations-'));
  dirs.push(dir);
  return {
    async open(maxLinkMs) {
      const r = await LocalShareRevocations.open(dir, maxLinkMs);
      opened.push(r);
      return r;
    },
  };
};

function redisNode(prefix: string, maxLinkMs: number, extra: Partial<RedisShareRevocationsOptions> = {}) {
  let synced = 0;
  const r = new RedisShareRevocations({
    target: redis.url,
    prefix,
    maxLinkMs,
    now: () => clock,
    onSynced: () => synced++,
    ...extra,
  });
  opened.push(r);
  return { r, synced: () => synced };
}

const redisBackend = (): Backend => {
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  return {
    async open(maxLinkMs) {
      const node = redisNode(prefix, maxLinkMs);
      await eventually('the first read of the revocations', () => node.synced() > 0, 10_000);
      return node.r;
    },
  };
};

for (const [name, make] of [
  ['DATA_DIR', localBackend],
  ['redis', redisBackend],
] as const) {
  describe(`link revocations (${name})`, () => {
    it('keeps the later time, and another instance reads it', async () => {
      const backend = make();
      const a = await backend.open(DAY);
      assert.equal(await a.revokedAt('o1'), undefined);
      assert.equal(await a.revoke('o1', now), now);
      assert.equal(await a.revoke('o1', now - 5000), now, 'an earlier time does not bring links back');
      assert.equal(a.known('o1'), now);
      assert.equal(await a.revokedAt('o2'), undefined);
      const b = await backend.open(DAY);
      assert.equal(await b.revokedAt('o1'), now);
      assert.equal(b.known('o1'), now);
    });

    it('forgets a revocation once every link it killed has expired anyway', async () => {
      const backend = make();
      const a = await backend.open(1000);
      await a.revoke('old', now);
      clock = now + 2500;
      try {
        await a.revoke('new', now + 2500);
      } finally {
        clock = now;
      }
      const b = await backend.open(1000);
      assert.equal(await b.revokedAt('old'), undefined);
      assert.equal(await b.revokedAt('new'), now + 2500);
    });
  });
}

describe('link revocations shared through redis', () => {
  it('tells the other nodes', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const a = redisNode(prefix, DAY);
    const b = redisNode(prefix, DAY);
    const heard: Array<[string, number]> = [];
    b.r.onRevoked((order, at) => heard.push([order, at]));
    await eventually('both read the revocations', () => a.synced() > 0 && b.synced() > 0, 10_000);
    await a.r.revoke('o:1@x', now);
    await eventually('B heard it', () => heard.length > 0, 10_000);
    assert.deepEqual(heard, [['o:1@x', now]]);
    assert.equal(b.r.known('o:1@x'), now);
  });

  it('carries the revocations a node made alone into redis when it joins several', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-revocations-'));
    dirs.push(dir);
    const alone = await LocalShareRevocations.open(dir, DAY);
    await alone.revoke('solo', now);
    await alone.close();
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const joined = redisNode(prefix, DAY, { carried: (await LocalShareRevocations.open(dir, DAY)).entries() });
    assert.equal(joined.r.known('solo'), now, 'known from the start');
    await eventually('the joined node read the revocations', () => joined.synced() > 0, 10_000);
    assert.equal(await raw.hget(`${prefix}share:revoked`, 'solo'), String(now), 'written to the hash');
    const other = redisNode(prefix, DAY);
    await eventually('another node read the revocations', () => other.synced() > 0, 10_000);
    assert.equal(await other.r.revokedAt('solo'), now, 'a link revoked while alone is dead on every node');
  });

  it('answers a node just started once it connected, not with unavailable', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const a = redisNode(prefix, DAY);
    await eventually('A read the revocations', () => a.synced() > 0, 10_000);
    await a.r.revoke('o1', now);
    // Asked before its connections are up, as the first customer after a restart may ask.
    const fresh = redisNode(prefix, DAY);
    assert.equal(await fresh.r.revokedAt('o1'), now);
  });

  it('refuses while redis is down, reads what it knew, and learns what it missed once back', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const a = redisNode(prefix, DAY);
    const b = redisNode(prefix, DAY);
    const heard: string[] = [];
    b.r.onRevoked((order) => heard.push(order));
    await eventually('both read the revocations', () => a.synced() > 0 && b.synced() > 0, 10_000);
    await a.r.revoke('before', now);
    await eventually('B heard it', () => heard.includes('before'), 10_000);
    await redis.stop();
    let late: ReturnType<typeof redisNode> | undefined;
    try {
      await assert.rejects(a.r.revoke('during', now), RevocationsUnavailable);
      assert.equal(await b.r.revokedAt('before'), now, 'B answers from what it read');
      assert.equal(await b.r.revokedAt('other'), undefined);
      late = redisNode(prefix, DAY);
      await assert.rejects(late.r.revokedAt('before'), RevocationsUnavailable, 'a node that never read cannot tell');
    } finally {
      await redis.start();
    }
    await eventually(
      'A writes again',
      () =>
        a.r.revoke('after', now + 1).then(
          () => true,
          () => false,
        ),
      20_000,
    );
    // B's subscription may have come back after A published: it reads the hash on reconnect.
    await eventually('B learned the revocation made after the outage', () => heard.includes('after'), 20_000);
    assert.equal(b.r.known('after'), now + 1);
    assert.equal(await late?.r.revokedAt('before'), now);
  });

  it('writes back what redis lost, learns what it missed, and ignores corrupt entries', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const corrupt: string[] = [];
    const a = redisNode(prefix, DAY, { onCorrupt: (where, problem) => corrupt.push(`${where}: ${problem}`) });
    await eventually('A read the revocations', () => a.synced() > 0, 10_000);
    await a.r.revoke('kept', now);
    // A failover to a replica that lacked the write: the hash is gone, and every
    // connection is cut, as when the sentinels switch to the new primary.
    await raw.del(`${prefix}share:revoked`);
    await raw.hset(`${prefix}share:revoked`, 'bad', 'not-a-time', 'b d', String(now));
    // And one made while A was not listening (nothing published): read on reconnect.
    await raw.hset(`${prefix}share:revoked`, 'missed', String(now + 7));
    const heard: string[] = [];
    a.r.onRevoked((order) => heard.push(order));
    const before = a.synced();
    await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await raw.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await eventually('A read the revocations again', () => a.synced() > before, 20_000);
    assert.equal(await raw.hget(`${prefix}share:revoked`, 'kept'), String(now));
    assert.equal(a.r.known('missed'), now + 7);
    assert.deepEqual(heard, ['missed']);
    assert.equal(await a.r.revokedAt('bad'), undefined);
    assert.ok(
      corrupt.some((c) => c.includes('"bad"')),
      corrupt.join('; '),
    );
    assert.ok(
      corrupt.some((c) => c.includes('not an order id')),
      corrupt.join('; '),
    );
  });
});

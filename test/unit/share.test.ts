/**
 * The customer tracking link's pure parts: tokens (signed, tamper-evident, scoped to one
 * order), the durable revocation store, the language choice and the privacy of the state
 * object a customer sees.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { shareStateCheck } from '../../src/protocol/checks.js';
import type { OrderView } from '../../src/protocol.js';
import { pickLanguage, SHARE_TEXTS } from '../../src/share/share-i18n.js';
import { finishedAt, liveUntil, shareState } from '../../src/share/share-state.js';
import { ShareTokens } from '../../src/share/share-token.js';
import { LocalShareRevocations, SHARE_STORE_FILE } from '../../src/shared/share-revocations-local.js';

const SECRET = 'a-node-secret-that-is-long-enough-0123456789';

describe('share tokens', () => {
  const tokens = new ShareTokens(SECRET);
  const claims = { order: 'order-42:a@b.c', iat: 1_796_000_000_000, exp: 1_796_086_400_000 };

  it('round-trips the claims', () => {
    assert.deepEqual(tokens.verify(tokens.sign(claims)), claims);
  });

  it('refuses every single-character change', () => {
    const token = tokens.sign(claims);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0; i < token.length; i++) {
      for (const c of [alphabet[(alphabet.indexOf(token[i]!) + 1) % alphabet.length]!, '.']) {
        if (c === token[i]) continue;
        const tampered = token.slice(0, i) + c + token.slice(i + 1);
        assert.equal(tokens.verify(tampered), null, `accepted ${tampered}`);
      }
    }
  });

  it('refuses a token of another order with the first one MAC, another key, garbage and JWTs', () => {
    const token = tokens.sign(claims);
    const other = tokens.sign({ ...claims, order: 'order-43' });
    const [, iat, exp, mac] = token.split('.');
    assert.equal(tokens.verify(`${other.split('.')[0]}.${iat}.${exp}.${mac}`), null);
    assert.equal(new ShareTokens(`${SECRET}x`).verify(token), null);
    for (const bad of ['', '.', '...', 'a.b.c.d', `${token}.x`, token.slice(0, -1), 'eyJhbGciOiJIUzI1NiJ9.e30.x']) {
      assert.equal(tokens.verify(bad), null, bad);
    }
  });

  it('is not guessable from the claims: two keys give unrelated MACs', () => {
    const a = tokens.sign(claims).split('.')[3]!;
    const b = new ShareTokens(`${SECRET}!`).sign(claims).split('.')[3]!;
    assert.equal(a.length, 43); // 256 bits
    assert.notEqual(a, b);
  });
});

describe('share revocations on one node (DATA_DIR)', () => {
  it('revokes links made up to the revocation, durably; keeps the later time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-share-'));
    try {
      const store = await LocalShareRevocations.open(dir, 86_400_000);
      assert.equal(await store.revokedAt('o1'), undefined);
      assert.equal(await store.revoke('o1', 5000), 5000);
      assert.equal(await store.revokedAt('o1'), 5000);
      assert.equal(store.known('o1'), 5000);
      assert.equal(await store.revokedAt('o2'), undefined);
      // A revocation behind this one (another clock) does not bring it back.
      assert.equal(await store.revoke('o1', 4000), 5000);
      const reopened = await LocalShareRevocations.open(dir, 86_400_000);
      assert.equal(await reopened.revokedAt('o1'), 5000);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, SHARE_STORE_FILE), 'utf8')), { revoked: { o1: 5000 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forgets a revocation once every link it killed has expired anyway', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-share-'));
    try {
      const store = await LocalShareRevocations.open(dir, 1000);
      await store.revoke('old', 1000);
      await store.revoke('new', 2500);
      const reopened = await LocalShareRevocations.open(dir, 1000);
      assert.equal(await reopened.revokedAt('old'), undefined);
      assert.equal(await reopened.revokedAt('new'), 2500);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('share language', () => {
  const cases: Array<[string, 'zh' | 'en']> = [
    ['', 'en'],
    ['zh-CN,zh;q=0.9,en;q=0.8', 'zh'],
    ['zh', 'zh'],
    ['zh-Hant-TW', 'zh'],
    ['en-US,en;q=0.9', 'en'],
    ['en;q=0.5, zh;q=0.8', 'zh'],
    ['fr-FR, zh;q=0.9', 'en'],
    ['de', 'en'],
    ['zh;q=0, en', 'en'],
    ['*', 'en'],
    ['zhx', 'en'],
    ['ZH-cn', 'zh'],
    ['en, zh', 'en'],
    ['zh;q=1.5', 'en'],
  ];
  for (const [header, lang] of cases) {
    it(`"${header}" -> ${lang}`, () => assert.equal(pickLanguage(header), lang));
  }

  it('has every text in both languages', () => {
    assert.deepEqual(Object.keys(SHARE_TEXTS.zh).sort(), Object.keys(SHARE_TEXTS.en).sort());
  });
});

describe('share state', () => {
  const order = (state: OrderView['state'], timeline: OrderView['timeline'] = []): OrderView => ({
    id: 'o1',
    technician: 'tech-secret-id',
    state,
    scheduledAt: 1_796_000_000_000,
    durationMin: 30,
    lat: 52.5,
    lon: 13.4,
    radius: 50,
    timeline,
  });
  const fix = { lat: 52.51, lon: 13.41, ts: 1_796_000_100_000 };
  const eta = { seconds: 240, metres: 1300, source: 'route' as const };

  it('shows the position and the ETA only while departed', () => {
    for (const state of ['assigned', 'arrived', 'in_service', 'completed', 'cancelled'] as const) {
      const s = shareState(order(state), fix, eta);
      assert.equal(s.technician, null, state);
      assert.equal(s.eta, null, state);
    }
    const s = shareState(order('departed'), fix, eta);
    assert.deepEqual(s.technician, fix);
    assert.deepEqual(s.eta, eta);
    assert.deepEqual(shareState(order('departed'), null, eta).eta, null);
  });

  it('holds exactly the protocol fields: no technician id, radius, timeline, accuracy', () => {
    const rich = { ...fix, acc: 5, spd: 7, id: 'tech-secret-id' };
    const s = shareState(order('departed', [{ state: 'departed', ts: 1, lat: 1, lon: 1 }]), rich, {
      ...eta,
      extra: 1,
    } as never);
    assert.ok(shareStateCheck.Check(s), JSON.stringify(s));
    const text = JSON.stringify(s);
    for (const secret of ['tech-secret-id', 'radius', 'timeline', 'acc', 'spd', 'extra', 'durationMin']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
  });

  it('lives until exp, or SHARE_LINGER_MIN after completion or cancellation', () => {
    const done = order('completed', [
      { state: 'assigned', ts: 100 },
      { state: 'completed', ts: 5000 },
    ]);
    assert.equal(finishedAt(done), 5000);
    assert.equal(liveUntil(done, 1_000_000, 60_000), 65_000);
    assert.equal(liveUntil(done, 20_000, 60_000), 20_000);
    assert.equal(finishedAt(order('in_service')), null);
    assert.equal(liveUntil(order('in_service'), 1_000_000, 60_000), 1_000_000);
  });
});

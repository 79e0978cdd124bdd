/**
 * A tracker app's technician is online from its first fix until APP window passes without
 * another (gateway/app-presence.ts), on a real tracker and a manual clock; a socket of the
 * same technician takes precedence, and a take-over by another node ends it.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { AppPresence } from '../../src/gateway/app-presence.js';
import type { DevicePush } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { Collector, type Harness, harness, ok } from '../support/memory-archive.js';

const WINDOW_MS = 60_000;

let h: Harness;
let presence: AppPresence;
beforeEach(async () => {
  h = await harness();
  presence = new AppPresence(h.tracker, h.clock, WINDOW_MS);
});
afterEach(async () => {
  presence.close();
  await h.dispose();
});

async function online(tech: string): Promise<boolean> {
  await h.tracker.settle();
  return ok(await h.tracker.getTechnician(tech)).online;
}

async function fixFromApp(tech: string): Promise<void> {
  ok(await h.tracker.onDeviceMessage(tech, { t: 'ping', seq: 1, ts: h.clock.now(), ...PLACES.lyon }));
  presence.seen(tech);
}

describe('tracker-app presence', () => {
  test('online from the first fix until the window passes without another', async () => {
    await fixFromApp('app-1');
    assert.equal(await online('app-1'), true);
    await h.advance(WINDOW_MS - 1_000);
    await fixFromApp('app-1');
    await h.advance(WINDOW_MS - 1_000);
    assert.equal(await online('app-1'), true, 'the second fix kept it online past the first window');
    await h.advance(2_000);
    assert.equal(await online('app-1'), false, 'a whole window without a fix');
    assert.equal(presence.holds('app-1'), false);
  });

  test('a socket of the same technician takes over, and its closing does not bring the app back', async () => {
    await fixFromApp('app-2');
    const phone = new Collector<DevicePush>();
    h.tracker.attachDevice('app-2', phone);
    presence.socketAttached('app-2');
    assert.equal(presence.holds('app-2'), false);
    presence.seen('app-2');
    assert.equal(presence.holds('app-2'), false, 'fixes do not attach the app while the socket is open');
    h.tracker.detachDevice('app-2', phone);
    presence.socketDetached('app-2');
    assert.equal(await online('app-2'), false);
    presence.seen('app-2');
    assert.equal(await online('app-2'), true, 'the app attaches again once the socket is gone');
  });
});

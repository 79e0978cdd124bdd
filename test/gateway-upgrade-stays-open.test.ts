/**
 * Every upgraded connection stays open. Upgrades finished from a promise, inside
 * `res.cork`, had uWS shut some new sockets down right after `open`, with no close frame
 * (a 1006 on both sides; see src/gateway/jwt-hs256.ts): about one test run in four lost a
 * device that way. Here many devices and consoles connect one after another, each sending
 * at once, and every one must be answered on a socket that is still open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DeviceClient, SafetyClient } from '../src/client/index.js';
import { ServerProcess } from './support/server-process.js';

const DEVICES = 300;
const CONSOLES = 20;

describe('upgraded connections', () => {
  let server: ServerProcess;
  const clients: Array<DeviceClient | SafetyClient> = [];
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await server.stop();
  });

  it('stay open: each device and console answered right after connecting', async () => {
    const closedEarly: string[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const device = await server.newDevice(`tech-up-${i}`);
      device.on('close', (code) => closedEarly.push(`device ${i}: ${code}`));
      await device.connect();
      clients.push(device);
      const reply = await device.ping({ ts: Date.now(), lat: 52.5 + i / 1e4, lon: 13.4, acc: 5 });
      assert.equal(reply.t, 'ack', JSON.stringify(reply));
    }
    for (let i = 0; i < CONSOLES; i++) {
      const console = await server.newSafety(`op-up-${i}`);
      console.on('close', (code) => closedEarly.push(`console ${i}: ${code}`));
      await console.connect();
      clients.push(console);
      // An ack of an alert that does not exist: an answer on an open socket, which is the point.
      const reply = await console.ack('no-such-alert');
      assert.equal(reply.t, 'err');
    }
    assert.deepEqual(closedEarly, []);
    const closedLog = server.logs.filter((l) => l.msg === 'connection closed');
    assert.deepEqual(closedLog, [], 'the server closed no connection');
  });
});

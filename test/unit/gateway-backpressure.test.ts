/**
 * The send path's backpressure rule, on a socket whose buffered amount the test controls:
 * past the limit the console is dropped with 4002 and counted; below it, it is sent to.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { TokenVerifier } from '../../src/gateway/auth.js';
import { InflightTracker } from '../../src/gateway/inflight.js';
import { type Connection, type EndpointDeps, sendMessage } from '../../src/gateway/socket-endpoint.js';
import type { WebSocket } from '../../src/gateway/uws.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { testConnection } from '../support/connection.js';

/** A socket that records what the send path did to it. */
function recordingSocket(buffered: number) {
  const sent: Buffer[] = [];
  let corks = 0;
  const ended: Array<[number | undefined, string | undefined]> = [];
  const conn = testConnection('op', 'safety', '/v1/safety');
  const ws = {
    getUserData: () => conn,
    getBufferedAmount: () => buffered,
    cork: (fn: () => void) => {
      corks += 1;
      fn();
    },
    send: (frame: Buffer) => {
      sent.push(frame);
      return 1;
    },
    end: (code?: number, reason?: string) => {
      ended.push([code, reason]);
    },
  } as unknown as WebSocket<Connection>;
  return {
    ws,
    sent,
    ended,
    conn,
    get corks() {
      return corks;
    },
  };
}

function deps(limit: number): EndpointDeps {
  const config = loadConfig({ TRACKER_JWT_SECRET: 'x'.repeat(40), SAFETY_MAX_BUFFERED_BYTES: String(limit) });
  return {
    config,
    clock: systemClock,
    log: createLogger('silent'),
    metrics: new Metrics(),
    verifier: new TokenVerifier(config.jwtSecret, config.TOKEN_MAX_LIFETIME_SEC),
    inflight: new InflightTracker(),
    connections: new Set(),
    isShuttingDown: () => false,
  };
}

describe('backpressure', () => {
  it('pushes while the unread data is under the limit, each at once in a corked write', async () => {
    const d = deps(4096);
    const socket = recordingSocket(4096);
    sendMessage(socket.ws, { t: 'snapshot', alerts: [] }, d);
    sendMessage(
      socket.ws,
      { t: 'alert', alert: { id: 'a', kind: 'sos', level: 1, state: 'open', tech: 't', ts: 1 } },
      d,
    );
    assert.equal(socket.sent.length, 2, 'pushes do not wait for the end of the turn');
    assert.equal(socket.corks, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(socket.sent.length, 2, 'and are not written again');
    assert.deepEqual(socket.ended, []);
  });

  it('drops a console over the limit with 4002, counts it, and sends nothing after', async () => {
    const d = deps(4096);
    const socket = recordingSocket(4097);
    sendMessage(socket.ws, { t: 'snapshot', alerts: [] }, d);
    sendMessage(socket.ws, { t: 'snapshot', alerts: [] }, d);
    assert.equal(socket.sent.length, 0);
    assert.deepEqual(socket.ended, [[4002, 'slow consumer: too much unread data']]);
    assert.equal(socket.conn.closed, true);
    const metric = await d.metrics.slowConsumersDropped.get();
    assert.equal(metric.values[0]?.value, 1);
  });
});

/**
 * The fix lane (gateway/fix-lane.ts): pings and batches wait in it in slices of bounded
 * time, so an SOS that arrives in the same turn as thousands of pings is handled first.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { TokenVerifier } from '../../src/gateway/auth.js';
import { decodeFrame } from '../../src/gateway/codec.js';
import { FixLane, MAX_SLICE_MS } from '../../src/gateway/fix-lane.js';
import { InflightTracker } from '../../src/gateway/inflight.js';
import {
  type Connection,
  type EndpointBehaviour,
  type EndpointDeps,
  NOT_ATTACHED,
  registerSocketEndpoint,
} from '../../src/gateway/socket-endpoint.js';
import type { TemplatedApp, WebSocket } from '../../src/gateway/uws.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { atNextTurn } from '../../src/next-turn.js';
import { testConnection } from '../support/connection.js';

describe('fix lane', () => {
  /** A lane on a clock the test moves, with its next turn run by hand. */
  function manualLane(sliceMs: number) {
    let now = 0;
    let pending: (() => void) | null = null;
    const errors: unknown[] = [];
    const lane = new FixLane(
      sliceMs,
      (err) => errors.push(err),
      () => now,
      (run) => {
        assert.equal(pending, null, 'one turn scheduled at a time');
        pending = run;
      },
    );
    return {
      lane,
      errors,
      advance(ms: number) {
        now += ms;
      },
      /** Queues `n` jobs of 1 ms each on the lane's clock; returns the indexes run so far. */
      fill(n: number): number[] {
        const ran: number[] = [];
        for (let i = 0; i < n; i++)
          lane.push(() => {
            ran.push(i);
            now += 1;
          });
        return ran;
      },
      /** Runs the scheduled turn; false when none was scheduled. */
      turn(): boolean {
        const run = pending;
        pending = null;
        run?.();
        return run !== null;
      },
    };
  }

  it('runs jobs in order, at most a slice of time per turn, and the rest in later turns', () => {
    const m = manualLane(4);
    // Each job takes 1 ms of the lane's clock.
    const ran = m.fill(10);
    assert.equal(m.lane.length, 10);
    assert.ok(m.turn());
    assert.deepEqual(ran, [0, 1, 2, 3], 'a 4 ms slice holds four 1 ms jobs');
    assert.ok(m.turn());
    assert.ok(m.turn());
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(m.lane.length, 0);
    assert.equal(m.turn(), false, 'an empty lane schedules nothing');
  });

  it('works as long as the rest of the loop took since its last slice, within bounds', () => {
    const m = manualLane(4);
    const ran = m.fill(200);
    m.turn();
    assert.equal(ran.length, 4, 'the first slice: the minimum');
    m.advance(20);
    m.turn();
    assert.equal(ran.length, 4 + 20, 'after 20 ms of other work, a 20 ms slice');
    m.advance(500);
    m.turn();
    assert.equal(ran.length, 4 + 20 + MAX_SLICE_MS, 'never more than MAX_SLICE_MS');
    m.advance(1);
    m.turn();
    assert.equal(ran.length, 4 + 20 + MAX_SLICE_MS + 4, 'after a short turn, the minimum again');
  });

  it('starts the durable writes asked for since the last turn before its slice', () => {
    const m = manualLane(4);
    const order: string[] = [];
    m.lane.push(() => order.push('ping'));
    atNextTurn(() => order.push('write'));
    m.turn();
    assert.deepEqual(order, ['write', 'ping']);
  });

  it('on the real event loop, lets work queued by an I/O callback run before its next slice', async () => {
    // An SOS read by uWS (an I/O callback) queues its actor turn and console push with
    // setImmediate; they must not wait behind another slice of pings.
    const lane = new FixLane(2, (err) => assert.fail(String(err)));
    const order: string[] = [];
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    for (let i = 0; i < 200; i++)
      lane.push(() => {
        busy(1);
        order.push('job');
      });
    const io = await new Promise<number>((resolve) =>
      // Reading a file completes in the poll phase, as uWS's frames do.
      readFile(new URL(import.meta.url), () => {
        order.push('io');
        setImmediate(() => {
          order.push('immediate');
          resolve(order.length);
        });
      }),
    );
    assert.ok(lane.length > 0, 'the lane was still working');
    assert.deepEqual(order.slice(io - 2, io), ['io', 'immediate'], 'no slice ran between the callback and its work');
    while (lane.length > 0) await new Promise((r) => setTimeout(r, 5));
  });

  it('keeps slices the shortest while safety work is under way', () => {
    const m = manualLane(4);
    const ran = m.fill(500);
    m.turn();
    const first = m.lane.urgent();
    const second = m.lane.urgent();
    m.advance(500);
    m.turn();
    assert.equal(ran.length, 4 + 4, 'an SOS under way: the minimum slice, however long the turn');
    first();
    first();
    m.advance(500);
    m.turn();
    assert.equal(ran.length, 4 + 4 + 4, 'one answered twice still leaves the other under way');
    second();
    m.advance(500);
    m.turn();
    assert.equal(ran.length, 4 + 4 + 4 + MAX_SLICE_MS, 'all answered: long slices again');
  });

  it('runs at least one job per turn, however slow, and goes on after a job throws', () => {
    const m = manualLane(1);
    const ran: string[] = [];
    m.lane.push(() => {
      m.advance(50);
      throw new Error('boom');
    });
    m.lane.push(() => ran.push('second'));
    m.turn();
    assert.equal(m.errors.length, 1);
    assert.deepEqual(ran, []);
    m.turn();
    assert.deepEqual(ran, ['second']);
  });
});

describe('socket endpoint with a fix lane', () => {
  type Msg = { t: string; seq: number };

  /** Registers a test endpoint on a fake uWS app and returns its frame handler and what the behaviour saw. */
  function endpointWith(lane: FixLane | undefined, slow: Map<string, Promise<void>> = new Map()) {
    const handled: string[] = [];
    const behaviour: EndpointBehaviour<Msg> = {
      path: '/v1/device',
      roles: ['device'],
      validate: (frame) => ({ ok: true, value: { t: String(frame.t), seq: Number(frame.seq) } }),
      handle: async (_principal, msg) => {
        handled.push(`${msg.t}:${msg.seq}`);
        await slow.get(msg.t);
        return { ok: true, value: {} };
      },
      attach: () => NOT_ATTACHED,
    };
    let handlers: { message: (ws: WebSocket<Connection>, frame: ArrayBuffer, isBinary: boolean) => void } | undefined;
    const app = {
      ws: (_path: string, h: typeof handlers) => {
        handlers = h;
      },
    } as unknown as TemplatedApp;
    const config = loadConfig({
      TRACKER_JWT_SECRET: 'x'.repeat(40),
      RATE_LIMIT_PER_SEC: '100000',
      RATE_LIMIT_BURST: '100000',
    });
    const inflight = new InflightTracker();
    const deps: EndpointDeps = {
      config,
      clock: systemClock,
      log: createLogger('silent'),
      metrics: new Metrics(),
      verifier: new TokenVerifier(config.jwtSecret, config.TOKEN_MAX_LIFETIME_SEC),
      inflight,
      connections: new Set(),
      isShuttingDown: () => false,
      ...(lane === undefined ? {} : { lane }),
    };
    registerSocketEndpoint(app, behaviour, deps);
    const conn = testConnection('tech-1', 'device', '/v1/device', 100_000);
    const answers: Array<Record<string, unknown>> = [];
    const ws = {
      getUserData: () => conn,
      getBufferedAmount: () => 0,
      cork: (fn: () => void) => fn(),
      send: (frame: Buffer) => {
        const d = decodeFrame(new Uint8Array(frame));
        if (d.ok) answers.push(d.value);
        return 1;
      },
      end: () => undefined,
    } as unknown as WebSocket<Connection>;
    /** Delivers one frame the way uWS does: memory that is reused once the callback returns. */
    const deliver = (msg: Record<string, unknown>): void => deliverBytes(pack(msg));
    const deliverBytes = (bytes: Uint8Array): void => {
      const frame = new ArrayBuffer(bytes.length);
      new Uint8Array(frame).set(bytes);
      handlers?.message(ws, frame, true);
      new Uint8Array(frame).fill(0xc1);
    };
    return { deliver, deliverBytes, handled, answers, inflight };
  }

  const turns = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  it('hands an SOS to the behaviour before the pings that arrived ahead of it in the same turn', async () => {
    const e = endpointWith(new FixLane(4, (err) => assert.fail(String(err))));
    for (let seq = 1; seq <= 200; seq++) e.deliver({ t: 'ping', seq, ts: 1, lat: 1, lon: 1 });
    e.deliver({ t: 'sos', seq: 201, ts: 1, lat: 1, lon: 1 });
    assert.deepEqual(e.handled, ['sos:201'], 'only the SOS is handled on arrival');
    assert.equal(e.inflight.size, 201, 'queued pings count as in flight');
    for (let i = 0; i < 1000 && e.answers.length < 201; i++) await turns(1);
    assert.equal(e.handled.length, 201);
    // The copies survived uWS reusing the frame memory: every ping's own seq, in order.
    assert.deepEqual(
      e.handled.slice(1),
      Array.from({ length: 200 }, (_, i) => `ping:${i + 1}`),
    );
    assert.equal(e.answers.length, 201);
    assert.ok(e.answers.every((a) => a.t === 'ack'));
    assert.equal(e.inflight.size, 0);
  });

  it('keeps the lane hurried from reading an SOS until it is answered', async () => {
    let now = 0;
    let pending: (() => void) | null = null;
    const lane = new FixLane(
      4,
      (err) => assert.fail(String(err)),
      () => now,
      (run) => {
        pending = run;
      },
    );
    let stored = (): void => {};
    const e = endpointWith(lane, new Map([['sos', new Promise<void>((r) => (stored = r))]]));
    for (let i = 0; i < 500; i++) lane.push(() => (now += 1));
    const sliceAfterLongTurn = (): number => {
      const before = lane.length;
      now += 500;
      const run = pending;
      pending = null;
      run?.();
      return before - lane.length;
    };
    assert.equal(sliceAfterLongTurn(), 4, 'the first slice');
    assert.equal(sliceAfterLongTurn(), MAX_SLICE_MS, 'after a long turn, a long slice');
    e.deliver({ t: 'sos', seq: 1, ts: 1, lat: 1, lon: 1 });
    assert.equal(sliceAfterLongTurn(), 4, 'an SOS read and not answered: the shortest slice');
    stored();
    for (let i = 0; i < 100 && e.answers.length === 0; i++) await turns(1);
    assert.equal(e.answers[0]?.t, 'ack');
    assert.equal(sliceAfterLongTurn(), MAX_SLICE_MS, 'answered: long slices again');
  });

  it('without a lane handles frames in arrival order (what the lane changes)', async () => {
    const e = endpointWith(undefined);
    for (let seq = 1; seq <= 3; seq++) e.deliver({ t: 'ping', seq, ts: 1, lat: 1, lon: 1 });
    e.deliver({ t: 'sos', seq: 4, ts: 1, lat: 1, lon: 1 });
    assert.deepEqual(e.handled, ['ping:1', 'ping:2', 'ping:3', 'sos:4']);
    await turns(3);
    assert.equal(e.inflight.size, 0);
  });

  it('answers a queued frame that turns out undecodable, and settles its count', async () => {
    const e = endpointWith(new FixLane(4, (err) => assert.fail(String(err))));
    // Its first bytes read as a ping (so it is queued), but a frame must be exactly one map.
    const bytes = Buffer.concat([pack({ t: 'ping', seq: 8 }), pack(1)]);
    e.deliverBytes(bytes);
    assert.equal(e.inflight.size, 1, 'queued');
    for (let i = 0; i < 100 && e.answers.length === 0; i++) await turns(1);
    assert.deepEqual(e.handled, []);
    assert.equal(e.answers.length, 1);
    assert.equal(e.answers[0]?.t, 'err');
    assert.equal(e.answers[0]?.code, 'bad_request');
    assert.equal(e.inflight.size, 0);
  });
});

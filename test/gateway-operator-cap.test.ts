/**
 * One safety operator (token sub) holds at most SAFETY_MAX_CONNECTIONS_PER_OPERATOR
 * consoles (default 5) on the real server: the next is closed with 4004 and a reason,
 * before any snapshot, while other operators and a freed slot still work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SafetyClient, SafetyPush } from '../src/client/index.js';
import { CloseCode } from '../src/protocol.js';
import { ServerProcess } from './support/server-process.js';

interface Console {
  client: SafetyClient;
  /** Every push received, in order: frames before the close frame are all in here once it closed. */
  pushes: SafetyPush[];
  snapshot: Promise<SafetyPush>;
  closed: Promise<[number, string]>;
}

/** Connects a console for `sub`, listening for its snapshot and its close from the start. */
async function openConsole(server: ServerProcess, sub: string): Promise<Console> {
  const client = await server.newSafety(sub);
  const pushes: SafetyPush[] = [];
  client.on('push', (m) => pushes.push(m));
  const snapshot = new Promise<SafetyPush>((resolve) => client.once('push', resolve));
  const closed = new Promise<[number, string]>((resolve) =>
    client.once('close', (code, reason) => resolve([code, reason])),
  );
  await client.connect();
  return { client, pushes, snapshot, closed };
}

describe('connections per safety operator (default 5)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it('refuses the sixth console of one operator with 4004, keeps the others and frees a slot on close', async () => {
    const held: Console[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await openConsole(server, 'op-cap');
      assert.equal((await c.snapshot).t, 'snapshot');
      held.push(c);
    }
    const sixth = await openConsole(server, 'op-cap');
    const [code, reason] = await sixth.closed;
    assert.equal(code, CloseCode.operatorConnectionLimit);
    assert.equal(code, 4004);
    assert.match(reason, /operator already has 5 console connections/);
    assert.deepEqual(sixth.pushes, [], 'a refused console gets no snapshot');

    // Another operator is not affected, and the five keep working.
    const other = await openConsole(server, 'op-cap-other');
    assert.equal((await other.snapshot).t, 'snapshot');
    assert.equal(
      held.every((c) => c.client.isOpen),
      true,
    );
    const answer = await held[0]!.client.ack('no-such-alert');
    assert.equal(answer.t, 'err', 'an open console is still served');

    // Closing one frees its slot.
    await held[4]!.client.close();
    const again = await openConsole(server, 'op-cap');
    assert.equal((await again.snapshot).t, 'snapshot');
    assert.equal(again.client.isOpen, true);

    const log = await server.waitForLog((l) => l.msg === 'console refused: operator connection limit');
    assert.equal(log.sub, 'op-cap');
    for (const c of [...held, other, again]) await c.client.close();
  });
});

describe('connections per safety operator, configured', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { SAFETY_MAX_CONNECTIONS_PER_OPERATOR: '1' } });
  });
  after(async () => {
    await server.stop();
  });

  it('follows SAFETY_MAX_CONNECTIONS_PER_OPERATOR', async () => {
    const first = await openConsole(server, 'op-one');
    assert.equal((await first.snapshot).t, 'snapshot');
    const second = await openConsole(server, 'op-one');
    const [code, reason] = await second.closed;
    assert.equal(code, 4004);
    assert.match(reason, /already has 1 console connections/);
    await first.client.close();
  });
});

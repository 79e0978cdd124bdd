/**
 * Retiring or replacing an actor is a message in its mailbox: an actor busy with a
 * message finishes it, then the retirement runs, and messages sent after it see the new
 * state. Nothing polls for an idle moment.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { start, stop } from 'nact';
import type { Reply } from '../../src/actors/messages.js';
import { type ActorSpec, Registry } from '../../src/actors/registry.js';
import { WorkCounter } from '../../src/actors/work.js';
import { ManualClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';

type Msg = { t: 'add'; n: number; gate?: Promise<void> } | { t: 'get'; reply: Reply<number | null> } | { t: 'tick' };

const counter: ActorSpec<number, Msg> = {
  kind: 'counter',
  async handle(_id, state, msg) {
    if (msg.t === 'add') {
      await msg.gate;
      return (state ?? 0) + msg.n;
    }
    if (msg.t === 'get') msg.reply({ ok: true, value: state ?? null });
    return state;
  },
  replyCrash() {},
  passivable: () => true,
};

function registry(): { reg: Registry<number, Msg>; close(): void } {
  const system = start();
  const reg = new Registry(
    system,
    counter,
    { t: 'tick' },
    new ManualClock(),
    60_000,
    new Metrics(),
    createLogger('silent'),
    new WorkCounter(),
  );
  return {
    reg,
    close() {
      reg.stopAll();
      stop(system);
    },
  };
}

const get = (reg: Registry<number, Msg>, id: string): Promise<number | null> =>
  new Promise((resolve) => reg.send(id, { t: 'get', reply: (out) => resolve(out.ok ? out.value : -1) }));
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('retiring an actor through its mailbox', () => {
  it('a busy actor finishes its message first; messages sent after the retirement start afresh', async () => {
    const { reg, close } = registry();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    reg.send('c1', { t: 'add', n: 5 });
    assert.equal(await get(reg, 'c1'), 5);
    reg.send('c1', { t: 'add', n: 1, gate });
    let forgotten: boolean | undefined;
    const retired = reg.forget('c1').then((v) => (forgotten = v));
    reg.send('c1', { t: 'add', n: 2 });
    await turns(10);
    assert.equal(forgotten, undefined, 'the retirement waits for the message in progress');
    assert.equal(reg.records.get('c1'), 5);
    open();
    await retired;
    assert.equal(forgotten, true);
    // The message sent after the retirement ran on a fresh state.
    assert.equal(await get(reg, 'c1'), 2);
    close();
  });

  it('a replacement lands between the messages sent before and after it', async () => {
    const { reg, close } = registry();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    reg.send('c2', { t: 'add', n: 1, gate });
    const replaced = reg.replace('c2', 40);
    reg.send('c2', { t: 'add', n: 2 });
    open();
    await replaced;
    assert.equal(await get(reg, 'c2'), 42);
    assert.equal(reg.records.get('c2'), 42);
    close();
  });

  it('keep, asked when the retirement runs, can keep the state', async () => {
    const { reg, close } = registry();
    reg.send('c3', { t: 'add', n: 1 });
    const kept = reg.forget('c3', (n) => n > 2);
    reg.send('c3', { t: 'add', n: 9 });
    assert.equal(await kept, true, 'judged on the state it found (1), not a later one');
    reg.send('c4', { t: 'add', n: 3 });
    assert.equal(await get(reg, 'c4'), 3);
    assert.equal(await reg.forget('c4', (n) => n > 2), false);
    assert.equal(await get(reg, 'c4'), 3);
    close();
  });

  it('an actor not in memory is retired at once', async () => {
    const { reg, close } = registry();
    reg.records.set('c5', 7);
    assert.equal(reg.isLive('c5'), false);
    assert.equal(await reg.forget('c5'), true);
    assert.equal(reg.records.has('c5'), false);
    close();
  });
});

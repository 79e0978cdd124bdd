/**
 * SOS incidents through the Tracker: durable before the ack, pushed at once, the whole
 * escalation ladder with and without acknowledgement, the technician's sos_status,
 * resolution, and cancellation as a false alarm.
 */
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Alert, SafetyPush } from '../../src/protocol.js';
import { PLACES } from '../support/fixtures.js';
import { type Collector, connectedHarness, type DeviceCollector, type Harness, ok } from '../support/memory-archive.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HERE = PLACES.lyon;

let h: Harness;
let consoleLink: Collector<SafetyPush>;
let phone: DeviceCollector;
beforeEach(async () => {
  ({ h, consoleLink, phone } = await connectedHarness());
});
afterEach(async () => {
  await h.dispose();
});

async function sos(tech = 'tech-1'): Promise<string> {
  const out = ok(await h.tracker.onDeviceMessage(tech, { t: 'sos', seq: 1, ts: h.clock.now(), ...HERE, note: 'help' }));
  assert.equal(typeof out.incident, 'string');
  return out.incident as string;
}
async function incident(id: string): Promise<Alert> {
  const a = (await h.tracker.listAlerts()).find((x) => x.id === id);
  assert.ok(a, `alert ${id} listed`);
  return a;
}
const pushesOf = (id: string) =>
  consoleLink.got.flatMap((m) => (m.t === 'alert' && m.alert.id === id ? [m.alert] : []));

describe('SOS', () => {
  test('is journaled before the ack and pushed at once', async () => {
    const id = await sos();
    // Journal on disk holds more than an empty segment right after the ack.
    const dir = join(h.dir, 'journal');
    const sizes = await Promise.all((await readdir(dir)).map((f) => stat(join(dir, f)).then((s) => s.size)));
    assert.ok(sizes.reduce((a, b) => a + b, 0) > 0, 'journal written');
    const pushed = pushesOf(id);
    assert.equal(pushed.length, 1);
    assert.equal(pushed[0]?.kind, 'sos');
    assert.equal(pushed[0]?.level, 1);
    assert.equal(pushed[0]?.state, 'open');
    assert.equal(pushed[0]?.lat, HERE.lat);
    assert.equal(pushed[0]?.detail?.note, 'help');
    assert.equal(h.archive.alertEvents.filter((e) => e.alert === id).length, 1);
  });

  test('reaches consoles before its incident actor runs, not a turn later', async () => {
    const answer = h.tracker.onDeviceMessage('tech-1', { t: 'sos', seq: 1, ts: h.clock.now(), ...HERE, note: 'help' });
    // Microtasks only: an actor's turn is a setImmediate (nact), which none of these reach.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    const pushed = consoleLink.got.flatMap((m) => (m.t === 'alert' && m.alert.kind === 'sos' ? [m.alert] : []));
    assert.equal(pushed.length, 1, 'on the console before any actor turn');
    assert.equal(pushed[0]?.state, 'open');
    assert.equal(pushed[0]?.detail?.note, 'help');
    const id = ok(await answer).incident;
    assert.equal(pushed[0]?.id, id, 'the incident the device is acked with');
    assert.deepEqual(await incident(id as string), pushed[0], 'stored as announced');
    assert.equal(pushesOf(id as string).length, 1, 'announced once');
  });

  test("tells the technician of an operator's ack before the incident actor's turn", async () => {
    const id = await sos();
    const acked = h.tracker.onSafetyMessage('op', { t: 'ack', seq: 2, id });
    // Microtasks only: the incident actor's turn is a setImmediate (nact), which none of these reach.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    assert.deepEqual(phone.got, [{ t: 'sos_status', incident: id, state: 'acknowledged' }]);
    ok(await acked);
    assert.equal((await incident(id)).state, 'acknowledged');
    assert.equal(phone.got.length, 1, 'told once, not again by the actor');
  });

  test('reaches consoles while it is stored, and an operator may acknowledge it before it is', async () => {
    let release = (): void => undefined;
    h.archive.held = new Promise((r) => {
      release = r;
    });
    const answer = h.tracker.onDeviceMessage('tech-1', { t: 'sos', seq: 1, ts: h.clock.now(), ...HERE });
    let pushed: Alert | undefined;
    for (let i = 0; i < 100 && pushed === undefined; i++) {
      await new Promise((r) => setImmediate(r));
      pushed = consoleLink.got.flatMap((m) => (m.t === 'alert' ? [m.alert] : []))[0];
    }
    assert.ok(pushed, 'on the console before its archive row is written');
    let answered = false;
    void answer.then(() => (answered = true));
    let ackAnswered = false;
    const acked = h.tracker.onSafetyMessage('op', { t: 'ack', seq: 2, id: pushed.id });
    void acked.then(() => (ackAnswered = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'the device is answered only once it is stored');
    assert.equal(ackAnswered, false, 'the operator is answered only once the ack is stored');
    const told = { t: 'sos_status', incident: pushed.id, state: 'acknowledged' };
    assert.deepEqual(phone.got, [told], 'the technician hears of the ack without waiting for the SOS write');
    h.archive.held = null;
    release();
    assert.equal(ok(await answer).incident, pushed.id);
    ok(await acked);
    assert.equal((await incident(pushed.id)).state, 'acknowledged');
    assert.deepEqual(phone.got, [told], 'told once, not again when the ack is stored');
  });

  test('an escalation being stored does not hold back the technician hearing an ack or a resolve', async () => {
    const id = await sos();
    let release = (): void => undefined;
    h.archive.held = new Promise((r) => {
      release = r;
    });
    // Level 2 comes due; its write is held.
    const escalating = h.advance(60 * SEC);
    for (let i = 0; i < 100 && pushesOf(id).length < 2; i++) await new Promise((r) => setImmediate(r));
    assert.equal(pushesOf(id).at(-1)?.level, 2, 'level 2 announced while it is stored');
    const acked = h.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id });
    const resolved = h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 2, id });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      phone.got.map((m) => (m.t === 'sos_status' ? m.state : m.t)),
      ['acknowledged', 'resolved'],
    );
    h.archive.held = null;
    release();
    await escalating;
    ok(await acked);
    ok(await resolved);
    assert.equal((await incident(id)).state, 'resolved');
    assert.deepEqual(
      phone.got.map((m) => (m.t === 'sos_status' ? m.state : m.t)),
      ['acknowledged', 'resolved'],
      'each state told once',
    );
  });

  test('climbs to level 2, level 3 and slaBreached without an acknowledgement', async () => {
    const id = await sos();
    await h.advance(60 * SEC - 1);
    assert.equal((await incident(id)).level, 1);
    await h.advance(1);
    assert.equal((await incident(id)).level, 2);
    await h.advance(4 * MIN - 1);
    assert.equal((await incident(id)).level, 2);
    await h.advance(1);
    assert.equal((await incident(id)).level, 3);
    assert.equal((await incident(id)).detail?.slaBreached, undefined);
    await h.advance(10 * MIN - 1);
    assert.equal((await incident(id)).detail?.slaBreached, undefined);
    await h.advance(1);
    const a = await incident(id);
    assert.equal(a.level, 3);
    assert.equal(a.detail?.slaBreached, true);
    assert.equal(a.state, 'open');
    assert.deepEqual(
      pushesOf(id).map((x) => [x.level, x.detail?.slaBreached ?? false]),
      [
        [1, false],
        [2, false],
        [3, false],
        [3, true],
      ],
    );
    await h.advance(60 * MIN);
    assert.equal(pushesOf(id).length, 4, 'nothing more after the top of the ladder');
  });

  test('an acknowledgement stops the ladder and tells the technician', async () => {
    const id = await sos();
    await h.advance(90 * SEC);
    assert.equal((await incident(id)).level, 2);
    ok(await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 1, id }));
    assert.deepEqual(phone.got, [{ t: 'sos_status', incident: id, state: 'acknowledged' }]);
    await h.advance(30 * MIN);
    const a = await incident(id);
    assert.equal(a.state, 'acknowledged');
    assert.equal(a.level, 2);
    assert.equal(a.detail?.slaBreached, undefined);
    // Ack twice: idempotent, no second push to anyone.
    ok(await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 2, id }));
    assert.equal(phone.got.length, 1);
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 3, id, note: 'on site' }));
    assert.deepEqual(phone.got.at(-1), { t: 'sos_status', incident: id, state: 'resolved' });
    assert.equal((await incident(id)).state, 'resolved');
    assert.equal((await incident(id)).detail?.note, 'on site');
    const again = await h.tracker.onSafetyMessage('op', { t: 'ack', seq: 4, id });
    assert.equal(!again.ok && again.code, 'conflict');
  });

  test('resolve without ack closes it and stops the ladder', async () => {
    const id = await sos();
    ok(await h.tracker.onSafetyMessage('op', { t: 'resolve', seq: 1, id }));
    await h.advance(20 * MIN);
    const a = await incident(id);
    assert.equal(a.state, 'resolved');
    assert.equal(a.level, 1);
    assert.deepEqual(phone.got, [{ t: 'sos_status', incident: id, state: 'resolved' }]);
  });

  test('the technician cancels: resolved as a false alarm, consoles told', async () => {
    const id = await sos();
    ok(await h.tracker.onDeviceMessage('tech-1', { t: 'sos_cancel', seq: 2, incident: id }));
    const a = await incident(id);
    assert.equal(a.state, 'resolved');
    assert.equal(a.detail?.cancelled, true);
    assert.equal(a.detail?.falseAlarm, true);
    assert.equal(pushesOf(id).at(-1)?.state, 'resolved');
    await h.advance(20 * MIN);
    assert.equal((await incident(id)).level, 1);
    const again = await h.tracker.onDeviceMessage('tech-1', { t: 'sos_cancel', seq: 3, incident: id });
    assert.equal(!again.ok && again.code, 'conflict');
  });

  test('another technician cannot cancel it, and cannot tell it from an unknown incident', async () => {
    const id = await sos();
    const foreign = await h.tracker.onDeviceMessage('tech-2', { t: 'sos_cancel', seq: 2, incident: id });
    const unknown = await h.tracker.onDeviceMessage('tech-2', { t: 'sos_cancel', seq: 3, incident: 'a-nope' });
    assert.equal(!foreign.ok && foreign.code, 'forbidden');
    assert.equal(!unknown.ok && unknown.code, 'forbidden');
    assert.equal(
      !foreign.ok && foreign.msg.replace(id, 'X'),
      !unknown.ok && unknown.msg.replace('a-nope', 'X'),
      'the same answer for both',
    );
    assert.equal((await incident(id)).state, 'open');
  });

  test('one unresolved incident per technician: another sos is a press of it', async () => {
    const first = await sos();
    await h.advance(10 * SEC);
    const later = { lat: HERE.lat + 0.001, lon: HERE.lon };
    const out = ok(
      await h.tracker.onDeviceMessage('tech-1', { t: 'sos', seq: 2, ts: h.clock.now(), ...later, note: 'still here' }),
    );
    assert.equal(out.incident, first);
    const a = await incident(first);
    assert.equal(a.detail?.presses, 2);
    assert.deepEqual(a.detail?.pressNotes, ['still here']);
    assert.equal(a.detail?.note, 'help', 'the first note is kept');
    assert.equal(a.lat, later.lat, 'the alert moves to the newest fix');
    assert.equal(pushesOf(first).at(-1)?.detail?.presses, 2, 'consoles get the change');
    assert.equal((await h.tracker.listAlerts('open')).length, 1);
    // The ladder still counts from the first press.
    await h.advance(50 * SEC);
    assert.equal((await incident(first)).level, 2);
    // Another technician's SOS is its own incident.
    const other = await sos('tech-2');
    assert.notEqual(other, first);
    // Once resolved, the next sos opens a new incident.
    ok(await h.tracker.onDeviceMessage('tech-1', { t: 'sos_cancel', seq: 3, incident: first }));
    const next = await sos();
    assert.notEqual(next, first);
    assert.equal((await incident(next)).detail?.presses, 1);
  });

  test('a flood of sos stays one bounded incident', async () => {
    const sent = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        h.tracker.onDeviceMessage('tech-1', {
          t: 'sos',
          seq: i,
          ts: h.clock.now() - 300 + i,
          ...HERE,
          note: 'x'.repeat(1000),
        }),
      ),
    );
    const ids = new Set(sent.map((o) => ok(o).incident));
    assert.equal(ids.size, 1, 'every press acked with the one incident');
    const open = await h.tracker.listAlerts('open');
    assert.equal(open.length, 1);
    assert.equal(open[0]?.detail?.presses, 300);
    assert.equal((open[0]?.detail?.pressNotes as unknown[] | undefined)?.length, 5);
    assert.ok(JSON.stringify(open[0]).length < 8 * 1024, 'the alert stays small');
  });

  test('accepted even when the archive spool is full (journaled, pushed)', async () => {
    h.archive.full = true;
    const id = await sos();
    assert.equal((await incident(id)).state, 'open');
    assert.equal(pushesOf(id).length, 1);
  });
});

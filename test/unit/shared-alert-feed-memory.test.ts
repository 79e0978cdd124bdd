/**
 * The in-process alert feed keeps only its newest changes, as the Redis stream does, and
 * still loses no open alert and no change a live tail should see.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/protocol.js';
import type { FeedEntry } from '../../src/shared/alert-feed.js';
import { MemoryAlertFeed } from '../../src/shared/alert-feed-memory.js';

function alert(id: string, state: Alert['state'] = 'open'): Alert {
  return { id, kind: 'offline', level: 1, state, tech: 't1', ts: 1_700_000_000_000 };
}

describe('memory alert feed', () => {
  it('holds at most maxLen changes however many are appended, the newest ones', async () => {
    const feed = new MemoryAlertFeed(1000);
    const live: FeedEntry[] = [];
    const stop = feed.tail('0', (e) => live.push(e));
    // An alert storm: each alert opened and resolved, one stays open from the start.
    await feed.append(alert('kept-open'));
    for (let i = 0; i < 25_000; i++) {
      await feed.append(alert(`a${i}`));
      await feed.append(alert(`a${i}`, 'resolved'));
    }
    assert.ok(feed.length <= 1000, `held ${feed.length}`);
    assert.equal(live.length, 50_001, 'a live tail saw every change');
    const snap = await feed.snapshot();
    assert.deepEqual(
      snap.alerts.map((a) => a.id),
      ['kept-open'],
      'open alerts survive trimming',
    );
    const replay: FeedEntry[] = [];
    const stopReplay = feed.tail('0', (e) => replay.push(e));
    assert.equal(replay.length, 1000, 'a replay from the start gets the changes kept');
    assert.deepEqual(
      replay.map((e) => e.position),
      live.slice(-1000).map((e) => e.position),
    );
    const since = await feed.idsSince(0);
    assert.equal(since.complete, false, 'a trimmed feed says it does not reach back');
    await stop();
    await stopReplay();
  });

  it('says its history is complete while nothing was trimmed', async () => {
    const feed = new MemoryAlertFeed(10);
    for (let i = 0; i < 10; i++) await feed.append(alert(`a${i}`));
    const since = await feed.idsSince(0);
    assert.equal(since.complete, true);
    assert.equal(since.ids.size, 10);
  });
});

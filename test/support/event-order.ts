/** The ordering promise of webhook deliveries, checked on what a receiver got. */
import assert from 'node:assert/strict';
import type { DispatchEvent } from '../../src/protocol.js';

/** For each ordering key, ids in the order the receiver first accepted them must ascend. */
export function assertOrderedPerKey(events: DispatchEvent[]): void {
  const last = new Map<string, string>();
  for (const ev of events) {
    for (const key of [ev.order && `o:${ev.order}`, ev.tech && `t:${ev.tech}`]) {
      if (!key) continue;
      const prev = last.get(key);
      assert.ok(prev === undefined || prev < ev.id, `${key}: ${ev.id} (${ev.type}) accepted after ${prev}`);
      last.set(key, ev.id);
    }
  }
}

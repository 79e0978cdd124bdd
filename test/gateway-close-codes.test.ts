/**
 * Close codes chosen by clients never become metric labels: many distinct codes end up
 * in one "other" series, while the server's own codes and 1000/1005/1006 keep theirs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { closeCodeLabel } from '../src/gateway/close-label.js';
import { CloseCode } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { ServerProcess, token } from './support/server-process.js';

/** `fieldtrack_connections_closed_total` by reason label, for one endpoint. */
async function closedByReason(server: ServerProcess): Promise<Map<string, number>> {
  const res = await server.http('GET', '/metrics');
  const out = new Map<string, number>();
  for (const line of res.text.split('\n')) {
    const m = /^fieldtrack_connections_closed_total\{endpoint="\/v1\/device",reason="([^"]*)"\} (\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Connects a raw device socket and closes it with `code`. */
async function openAndClose(server: ServerProcess, sub: string, code: number | null): Promise<void> {
  const ws = new WebSocket(`${server.wsUrl}/v1/device`, {
    headers: { authorization: `Bearer ${await token(sub, 'device')}` },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    if (code === null) ws.terminate();
    else ws.close(code);
  });
}

describe('close code labels (unit)', () => {
  it("keeps the server's codes and 1000/1001/1005/1006, and maps every other code to other", () => {
    for (const code of [...Object.values(CloseCode), 1005, 1006]) assert.equal(closeCodeLabel(code), String(code));
    for (const code of [1002, 1007, 1010, 1012, 2999, 3000, 3999, 4000, 4099, 4999, 5000, -1, 0, 65535]) {
      assert.equal(closeCodeLabel(code), 'other', `code ${code}`);
    }
  });
});

describe('close code labels on the real server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it('counts 40 distinct client-chosen codes in one series', async () => {
    // uWS itself reports codes outside 1000-1011 and 4000-4999 as 1006: the private range is where a client picks freely.
    const chosen = Array.from({ length: 40 }, (_, i) => 4100 + i * 21);
    for (const [i, code] of chosen.entries()) await openAndClose(server, `tech-cc-${i}`, code);
    await openAndClose(server, 'tech-cc-normal', 1000);
    await openAndClose(server, 'tech-cc-dropped', null);
    const known = new Set([...Object.values(CloseCode), 1005, 1006].map(String));
    const counts = await eventually('every close counted', async () => {
      const c = await closedByReason(server);
      const total = [...c.values()].reduce((a, b) => a + b, 0);
      return total >= chosen.length + 2 ? c : undefined;
    });
    for (const label of counts.keys()) {
      assert.ok(label === 'other' || known.has(label), `unexpected label ${label}`);
    }
    assert.equal(counts.get('other'), chosen.length);
    assert.equal(counts.get('1000'), 1);
    assert.equal(counts.get('1006'), 1);
  });
});

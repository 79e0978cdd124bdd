/**
 * A short fault campaign on real processes (load/chaos.ts, what `npm run chaos` runs):
 * three nodes on a Redis primary, replica and Sentinel, simulated devices and consoles, and
 * a seeded schedule of SIGSTOP/SIGCONT, kill -9 and restart of nodes, a Redis primary
 * kill and console reconnects. Passes when the checker finds no violation; the checker
 * itself is shown to catch planted violations in test/unit/load-chaos-check.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHAOS = join(dirname(fileURLToPath(import.meta.url)), '..', 'load', 'chaos.js');
/** This seed's schedule holds a node kill, a SIGSTOP, a Redis primary kill and a console move. */
const SEED = '4';

describe('fault campaign', () => {
  it(`keeps every invariant under seed ${SEED} for 1.5 minutes`, { timeout: 600_000 }, async () => {
    const child = spawn(process.execPath, [CHAOS, '--seed', SEED, '--minutes', '1.5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.match(out, new RegExp(`seed ${SEED}`));
    assert.match(out, /schedule:/);
    assert.equal(code, 0, out);
    assert.match(out, /verdict: PASS/);
  });
});

/**
 * Starts and controls the webhook receiver process (webhook-receiver.ts) for tests, and
 * reads back what it accepted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DispatchEvent } from '../../src/protocol.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'webhook-receiver.js');

/** One request the receiver accepted. */
export interface Received {
  at: number;
  headers: Record<string, string>;
  body: string;
  event: DispatchEvent;
}

/** A running receiver process. */
export class Receiver {
  private constructor(
    private child: ChildProcess,
    readonly file: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Starts a receiver writing to `file`, on `port` (0: a free one). */
  static async start(file: string, port = 0, env: Record<string, string> = {}): Promise<Receiver> {
    const child = spawn(process.execPath, [SCRIPT, file, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { PATH: process.env.PATH, ...env },
    });
    const bound = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const line = out.split('\n').find((l) => l.includes('listening'));
        if (line) resolve((JSON.parse(line) as { listening: number }).listening);
      });
      child.on('exit', (code) => reject(new Error(`receiver exited with ${code} before listening`)));
    });
    return new Receiver(child, file, bound);
  }

  /** Sets how it answers from now on. */
  async mode(mode: 'ok' | 'fail' | 'hang', delayMs = 0): Promise<void> {
    await fetch(`http://127.0.0.1:${this.port}/_mode`, { method: 'POST', body: JSON.stringify({ mode, delayMs }) });
  }

  /** kill -9: the receiver is down until started again on the same port. */
  async kill(): Promise<void> {
    // Already dead (an exit code, or a signal such as an earlier kill): 'exit' will not fire again.
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Every accepted request, in the order accepted (duplicates included). */
  received(): Received[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const r = JSON.parse(l) as Omit<Received, 'event'>;
        return { ...r, event: JSON.parse(r.body) as DispatchEvent };
      });
  }

  /** Accepted events, each id once, in the order first accepted: what a deduplicating receiver keeps. */
  unique(): DispatchEvent[] {
    const seen = new Set<string>();
    const out: DispatchEvent[] = [];
    for (const r of this.received()) {
      if (seen.has(r.event.id)) continue;
      seen.add(r.event.id);
      out.push(r.event);
    }
    return out;
  }
}

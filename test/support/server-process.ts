/**
 * Runs the real server (`dist/src/main.js`) as a child process on a free port with its
 * own temporary DATA_DIR, the way an operator would, and gives tests tokens, URLs and
 * the log lines it printed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { type ClientOptions, DeviceClient, SafetyClient } from '../../src/client/index.js';

/** Path of the compiled entry point. */
export const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'main.js');

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** One parsed pino line. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse a data dir (restart after a crash); a new temp dir otherwise. */
  dataDir?: string;
  /** Also copy the process's stdout (its pino lines) to `<logTo>.log` and its stderr to `<logTo>.stderr`. */
  logTo?: string;
}

/** A running server process. */
export class ServerProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private exitWaiters: Array<(code: number | null) => void> = [];
  exitCode: number | null | undefined = undefined;
  /** Set when the test itself stops or kills the process, so only a death of its own is reported. */
  private exitRequested = false;

  private constructor(
    readonly child: ChildProcess,
    readonly dataDir: string,
    readonly ownsDataDir: boolean,
  ) {}

  port = 0;

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it logged `listening`. */
  static async start(options: StartOptions = {}): Promise<ServerProcess> {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'fieldtrack-test-'));
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TRACKER_JWT_SECRET: TEST_SECRET,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, dataDir, options.dataDir === undefined);
    if (options.logTo !== undefined) {
      // Piped before any output is read, so the files hold every line from the first.
      child.stdout?.pipe(createWriteStream(`${options.logTo}.log`, { flags: 'a' }));
      child.stderr?.pipe(createWriteStream(`${options.logTo}.stderr`, { flags: 'a' }));
    }
    await server.waitUntilListening();
    return server;
  }

  /** Spawns with `env` and waits for the process to exit (for start-up refusals). */
  static async runToExit(
    env: Record<string, string>,
  ): Promise<{ code: number | null; stderr: string; logs: LogLine[] }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'fieldtrack-test-'));
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, dataDir, true);
    server.collect();
    const code = await server.waitForExit(30_000);
    server.cleanup();
    return { code, stderr: server.stderr.join(''), logs: server.logs };
  }

  private collect(): void {
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr.push(`${line}\n`);
        }
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.child.on('exit', (code, signal) => {
      this.exitCode = code;
      // A server that dies on its own (an exit code, or a signal such as SIGSEGV from a native
      // module) leaves its tests failing with closed connections: say why.
      if (!this.exitRequested && this.logs.some((l) => l.msg === 'listening')) {
        const last = this.logs.slice(-10).map((l) => JSON.stringify(l));
        process.stderr.write(
          `server process (pid ${this.child.pid}, data ${this.dataDir}) exited on its own with ${code ?? signal}\n` +
            `${this.stderr.join('').slice(-4000)}\n${last.join('\n')}\n`,
        );
      }
      // Asked to stop but killed by a signal (null exit code): name the signal, as a failed
      // `stop() === 0` cannot.
      if (this.exitRequested && code === null && signal !== 'SIGKILL') {
        process.stderr.write(`server process (pid ${this.child.pid}) stopped by ${signal}, not by its own exit\n`);
      }
      for (const wake of this.exitWaiters.splice(0)) wake(code);
    });
  }

  private waitUntilListening(): Promise<void> {
    this.collect();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not start in 60 s: ${this.stderr.join('')}`)),
        60_000,
      );
      const check = setInterval(() => {
        const line = this.logs.find((l) => l.msg === 'listening');
        if (line) {
          clearInterval(check);
          clearTimeout(timer);
          this.port = line.port as number;
          resolve();
        } else if (this.exitCode !== undefined) {
          clearInterval(check);
          clearTimeout(timer);
          reject(new Error(`server exited with ${this.exitCode} before listening: ${this.stderr.join('')}`));
        }
      }, 20);
    });
  }

  /** Resolves with the exit code, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs = 30_000): Promise<number | null> {
    if (this.exitCode !== undefined) return Promise.resolve(this.exitCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not exit within ${timeoutMs} ms`)), timeoutMs);
      this.exitWaiters.push((code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** Polls the collected log lines until one matches, or rejects after `timeoutMs`. */
  async waitForLog(match: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logs.find(match);
      if (line) return line;
      if (Date.now() > deadline) throw new Error('expected log line did not appear');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends SIGTERM without waiting, for tests that watch the shutdown itself. */
  terminate(): void {
    this.exitRequested = true;
    this.child.kill('SIGTERM');
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number | null> {
    this.exitRequested = true;
    if (this.exitCode === undefined) this.child.kill('SIGTERM');
    const code = await this.waitForExit();
    this.cleanup();
    return code;
  }

  /** SIGSTOP: the process freezes as in a long GC pause, a VM stall or a partition (timers, sockets, all). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** SIGCONT: a paused process runs again, its monotonic clock having moved on meanwhile. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** kill -9: no chance to flush anything. Keeps the data dir for a restart. */
  async crash(): Promise<void> {
    this.exitRequested = true;
    this.child.kill('SIGKILL');
    await this.waitForExit();
  }

  /** Removes the temp data dir if this process created it. */
  cleanup(): void {
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A connected device client for technician `sub`. */
  async device(sub: string, extra: Partial<ClientOptions> = {}): Promise<DeviceClient> {
    const client = await this.newDevice(sub, extra);
    await client.connect();
    return client;
  }

  /** A connected safety client. Pushes sent at open (the snapshot) may arrive before listeners: see newSafety. */
  async safety(sub = 'operator-1', extra: Partial<ClientOptions> = {}): Promise<SafetyClient> {
    const client = await this.newSafety(sub, extra);
    await client.connect();
    return client;
  }

  /** A device client not yet connected, so listeners can be attached first. */
  async newDevice(sub: string, extra: Partial<ClientOptions> = {}): Promise<DeviceClient> {
    return new DeviceClient({ url: this.wsUrl, token: await token(sub, 'device'), ...extra });
  }

  /** A safety client not yet connected, so a listener sees the snapshot. */
  async newSafety(sub = 'operator-1', extra: Partial<ClientOptions> = {}): Promise<SafetyClient> {
    return new SafetyClient({ url: this.wsUrl, token: await token(sub, 'safety'), ...extra });
  }

  /** An HTTP request with a token of `role` (or `token` as given), JSON body and answer. */
  async http(
    method: string,
    path: string,
    options: { role?: string; sub?: string; token?: string; body?: unknown } = {},
  ): Promise<{ status: number; body: unknown; text: string; headers: Headers }> {
    const headers: Record<string, string> = {};
    const bearer = options.token ?? (options.role ? await token(options.sub ?? 'caller', options.role) : undefined);
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.httpUrl + path, {
      method,
      headers,
      body:
        options.body === undefined
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : JSON.stringify(options.body),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body, text, headers: res.headers };
  }
}

/** Signs an HS256 token for `sub` with `role`; `exp` in seconds since the epoch (default in one hour). */
export function token(sub: string, role: string, options: { exp?: number; secret?: string } = {}): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}

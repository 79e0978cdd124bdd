/**
 * Spawning a throwaway server binary (clickhouse-server, redis-server) for tests: keeps the
 * tail of its stderr for error messages, and makes sure a test process that dies without
 * cleaning up never leaves the server behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';

/** A spawned server process. */
export interface Daemon {
  proc: ChildProcess;
  /** The last 4000 characters it wrote to stderr. */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** Spawns `path args` in `cwd`, killed with SIGKILL if this process exits first. */
export function spawnDaemon(path: string, args: string[], cwd: string): Daemon {
  const proc = spawn(path, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  proc.stderr!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  const reap = (): void => {
    proc.kill('SIGKILL');
  };
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      process.removeListener('exit', reap);
      resolve();
    }),
  );
  return { proc, stderr: () => tail, exited };
}

/**
 * The lifecycle both throwaway servers share: one process at a time in a temp folder,
 * graceful or abrupt stop keeping the data for a later start, and removal of the folder.
 */
export abstract class DaemonServer {
  protected proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  protected constructor(
    /** Temp folder with config, data and logs; removed by `destroy`. */
    readonly dir: string,
    private readonly name: string,
  ) {}

  /** True between `start` and `stop`/`kill`. */
  get running(): boolean {
    return this.proc !== null;
  }

  /** Spawns the server process; refuses while one is running. */
  protected spawn(path: string, args: string[]): Daemon {
    if (this.proc) throw new Error(`${this.name} is already running`);
    const daemon = spawnDaemon(path, args, this.dir);
    this.proc = daemon.proc;
    this.exited = daemon.exited;
    return daemon;
  }

  /** SIGSTOP: the server freezes as in a stall (swapping, a VM paused); `resume` wakes it. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** SIGCONT after `pause`. */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Graceful stop (SIGTERM), keeping the data for a later `start`. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Abrupt stop (SIGKILL), keeping the fsynced data for a later `start`. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    proc.kill(sig);
    await this.exited;
    this.proc = null;
  }

  /** Kills the server and removes its temp folder. */
  async destroy(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Spawning a throwaway server binary (clickhouse-server, redis-server) for tests: keeps the
 * tail of its stderr for error messages, and makes sure a test process that dies without
 * cleaning up never leaves the server behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';

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

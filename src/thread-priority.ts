/**
 * Lowers the CPU priority (raises the nice value) of the thread that calls it, for helper
 * threads whose work can wait while the main thread cannot: on two busy cores the webhook
 * delivery thread, at the main thread's priority, took CPU the device acks needed.
 *
 * Linux only: there a thread is a task with its own id (`/proc/thread-self` names it), and
 * setpriority(2) on a task id changes that thread alone. Raising a nice value needs no
 * privilege. Threads the caller starts later inherit the new value.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { basename } from 'node:path';

/** Sets this thread's nice value to `nice`; null when done (or `nice` is 0), else why not. */
export function niceThisThread(nice: number): string | null {
  if (nice === 0) return null;
  try {
    const tid = Number(basename(readlinkSync('/proc/thread-self')));
    if (!Number.isInteger(tid) || tid <= 0) return 'no thread id in /proc/thread-self';
    setPriority(tid, nice);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

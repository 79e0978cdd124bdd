/**
 * Installs a Debian package for a test helper that needs a real binary. Tests must never
 * skip silently because a server is missing, so a failed install is a thrown error that
 * says what to run by hand.
 *
 * Test files run in parallel processes, and two of them may want a package at once
 * (clickhouse-server and redis-server on a fresh machine); apt refuses a second apt-get
 * while one holds its lock. So every install here runs under one `flock`, waits for
 * apt's own locks as well (another apt on the machine), and the package's presence is
 * checked again once the lock is held: the process that waited finds it installed.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Longest wait for the install lock and apt's locks, seconds. */
const LOCK_WAIT_SEC = 900;
const LOCK_FILE = join(tmpdir(), 'fieldtrack-apt.lock');

/**
 * Runs `apt-get update` then `apt-get install -y <pkg>` unless dpkg reports `pkg`
 * installed once the lock is held; throws a clear error if that fails.
 */
export function aptInstall(pkg: string): void {
  if (!/^[a-z0-9][a-z0-9.+-]*$/.test(pkg)) throw new Error(`not a Debian package name: ${pkg}`);
  const apt = `apt-get -o DPkg::Lock::Timeout=${LOCK_WAIT_SEC} -q`;
  const script =
    `dpkg-query -W -f='\${Status}' ${pkg} 2>/dev/null | grep -q 'install ok installed' || ` +
    `{ ${apt} update && ${apt} install -y ${pkg}; }`;
  const r = spawnSync('flock', ['--timeout', String(LOCK_WAIT_SEC), LOCK_FILE, 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const problem = r.error
    ? r.error.message
    : r.status !== 0
      ? `exit ${r.status}: ${(r.stderr || r.stdout).trim().slice(-2000)}`
      : null;
  if (problem !== null) {
    throw new Error(
      `${pkg} is not installed and could not be installed automatically (${problem}). ` +
        `Install it by hand: sudo apt-get update && sudo apt-get install -y ${pkg}`,
    );
  }
}

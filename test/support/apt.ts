/**
 * Installs a Debian package for a test helper that needs a real binary. Tests must never
 * skip silently because a server is missing, so a failed install is a thrown error that
 * says what to run by hand.
 */
import { spawnSync } from 'node:child_process';

/** Runs `apt-get update` then `apt-get install -y <pkg>`; throws a clear error if either fails. */
export function aptInstall(pkg: string): void {
  const run = (args: string[]): string | null => {
    const r = spawnSync('apt-get', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.error) return r.error.message;
    if (r.status !== 0) return `exit ${r.status}: ${(r.stderr || r.stdout).trim().slice(-2000)}`;
    return null;
  };
  const problem = run(['update']) ?? run(['install', '-y', pkg]);
  if (problem !== null) {
    throw new Error(
      `${pkg} is not installed and could not be installed automatically (${problem}). ` +
        `Install it by hand: sudo apt-get update && sudo apt-get install -y ${pkg}`,
    );
  }
}

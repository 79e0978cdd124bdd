/**
 * A small real filesystem that tests can fill to the last byte: a tmpfs mounted on a fresh
 * directory (needs root). A test that needs one fails with a clear message when it cannot
 * be mounted, rather than skipping silently.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A mounted tmpfs of a fixed size. */
export class Tmpfs {
  private constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `sizeMiB` on a new directory; throws with what to do when it cannot. */
  static mount(sizeMiB: number): Tmpfs {
    const dir = mkdtempSync(join(tmpdir(), 'fieldtrack-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
      throw new Error(
        `this test needs a real small filesystem to fill: mounting a ${sizeMiB} MiB tmpfs on ${dir} failed (${why}). ` +
          'Run it as root (or with CAP_SYS_ADMIN) on Linux.',
      );
    }
    return new Tmpfs(dir);
  }

  /** Bytes an unprivileged writer can still use. */
  get available(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /**
   * Takes every free byte with the file `name`: allocates what statfs reports free, then
   * appends in ever smaller pieces until even one byte is refused with ENOSPC. Returns
   * the file's path.
   */
  async fill(name = 'filler'): Promise<string> {
    const path = join(this.dir, name);
    const fh = await open(path, 'a');
    try {
      for (let piece = Math.max(1, this.available); piece >= 1; piece = Math.floor(piece / 2)) {
        const buf = Buffer.alloc(Math.min(piece, 1 << 20), 0x5a);
        for (;;) {
          try {
            const { bytesWritten } = await fh.write(buf);
            if (bytesWritten < buf.length) break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
            break;
          }
        }
      }
      await fh.sync().catch(() => undefined);
    } finally {
      await fh.close();
    }
    return path;
  }

  /** Deletes a file made by `fill`, giving its space back. */
  async free(path: string): Promise<void> {
    await unlink(path);
  }

  /** Unmounts and removes the directory; safe to call twice. */
  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir], { stdio: 'pipe' });
    } catch {
      // Already unmounted.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

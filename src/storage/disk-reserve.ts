/**
 * Disk space held back for safety writes: a file of `JOURNAL_RESERVE_BYTES` in DATA_DIR,
 * filled with real bytes so that the filesystem has really allocated them. When the disk
 * is full, the journal gives part of it back (`release`) right before it retries an SOS
 * or another safety write that was refused for lack of space; while any of it is given
 * back, ordinary writes are refused, so the freed space goes to safety writes. `refill`
 * takes the space back once the disk has room again.
 *
 * The bytes are not zeros: a filesystem that compresses or deduplicates would otherwise
 * hold nothing back for them.
 */
import { randomBytes } from 'node:crypto';
import { constants, type FileHandle, open } from 'node:fs/promises';

const CHUNK = randomBytes(64 * 1024);

/** True when `err` says the disk (or the quota) has no room left. */
export function isOutOfSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The reserve file; see the module comment. */
export class DiskReserve {
  /** Serialises release and refill: both move the end of the same file. */
  private io: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fh: FileHandle | null,
    /** Bytes the reserve should hold. */
    readonly target: number,
    /** Bytes it holds now (durably: each change is fsynced). */
    private size: number,
  ) {}

  /**
   * Opens (creating if needed) the reserve at `path` and fills it up to `target` bytes as
   * far as the disk allows; `target` 0 means no reserve and no file.
   */
  static async open(path: string, target: number): Promise<DiskReserve> {
    if (target <= 0) return new DiskReserve(null, 0, 0);
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const { size } = await fh.stat();
      const reserve = new DiskReserve(fh, target, size);
      // A reserve left bigger by an earlier, larger setting gives the extra back.
      if (size > target) await reserve.release(size - target);
      await reserve.refill();
      return reserve;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Bytes held now. */
  get held(): number {
    return this.size;
  }

  /** Whether the reserve holds all of its target. */
  get whole(): boolean {
    return this.size >= this.target;
  }

  /** Gives back up to `bytes` of the reserve; resolves with how many were given back. */
  release(bytes: number): Promise<number> {
    return this.serial(async () => {
      const fh = this.fh;
      if (fh === null || this.size === 0) return 0;
      const next = Math.max(0, this.size - bytes);
      await fh.truncate(next);
      // Made durable at once, so that the space is free for the write that asked for it.
      await fh.datasync();
      const freed = this.size - next;
      this.size = next;
      return freed;
    });
  }

  /** Grows the reserve back towards its target as far as the disk allows; whether it is whole. */
  refill(): Promise<boolean> {
    return this.serial(async () => {
      const fh = this.fh;
      if (fh === null || this.size >= this.target) return true;
      let size = this.size;
      try {
        while (size < this.target) {
          const len = Math.min(CHUNK.length, this.target - size);
          const { bytesWritten } = await fh.write(CHUNK, 0, len, size);
          if (bytesWritten === 0) break;
          size += bytesWritten;
        }
        await fh.datasync();
      } catch (err) {
        if (!isOutOfSpace(err)) throw err;
        // Keep what was taken: every byte held is a byte a bulk write cannot use. The
        // file's end is what counts, whatever a partial write left behind it.
        size = (await fh.stat()).size;
        await fh.datasync().catch(() => undefined);
      }
      this.size = size;
      return size >= this.target;
    });
  }

  /** Closes the file; the reserve stays on disk for the next start. */
  async close(): Promise<void> {
    await this.io.catch(() => undefined);
    await this.fh?.close();
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.io.then(op, op);
    this.io = result.catch(() => undefined);
    return result;
  }
}

/**
 * Revocations of customer tracking links, durable in `DATA_DIR/share-links.json`: for each
 * order whose links were revoked, when. A link made at or before that moment is dead
 * (`410`); a link made later (`POST` again) lives. Making a link writes nothing (the token
 * carries its claims, share-token.ts); only a revocation does: the file is rewritten to a
 * temporary file, fsynced and renamed over the old one, so a crash leaves one or the other,
 * and the `DELETE` is answered only after that. An entry is dropped once every link it
 * killed has expired anyway (`maxLinkMs` after the revocation), so the file stays small.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { replaceFileDurably } from '../storage/checkpoint.js';

/** The file's name in DATA_DIR. */
export const SHARE_STORE_FILE = 'share-links.json';

/** See the module comment. */
export class ShareStore {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly revoked: Map<string, number>,
    private readonly maxLinkMs: number,
  ) {}

  /** Reads the store in `dataDir` (empty when there is none yet); throws on a malformed file. */
  static async open(dataDir: string, maxLinkMs: number): Promise<ShareStore> {
    const path = join(dataDir, SHARE_STORE_FILE);
    const revoked = new Map<string, number>();
    let text: string | null = null;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      const parsed = JSON.parse(text) as { revoked?: Record<string, unknown> };
      for (const [order, at] of Object.entries(parsed.revoked ?? {})) {
        if (!Number.isSafeInteger(at)) throw new Error(`${path}: revocation of ${order} is not a time`);
        revoked.set(order, at as number);
      }
    }
    return new ShareStore(path, revoked, maxLinkMs);
  }

  /** Whether a link of `order` made at `iat` was revoked. */
  isRevoked(order: string, iat: number): boolean {
    const at = this.revoked.get(order);
    return at !== undefined && iat <= at;
  }

  /** The `iat` of a link of `order` made now: after its last revocation, even within the same millisecond. */
  issueTime(order: string, now: number): number {
    const at = this.revoked.get(order);
    return at === undefined ? now : Math.max(now, at + 1);
  }

  /** Revokes every link of `order` made up to `now`; resolves once that is durable. */
  revoke(order: string, now: number): Promise<void> {
    this.revoked.set(order, Math.max(now, this.revoked.get(order) ?? 0));
    for (const [id, at] of this.revoked) if (at + this.maxLinkMs < now) this.revoked.delete(id);
    const snapshot = JSON.stringify({ revoked: Object.fromEntries(this.revoked) });
    const write = this.writing.then(() => writeDurably(this.path, snapshot));
    // A failed write fails its own DELETE; the next revocation writes everything again.
    this.writing = write.catch(() => {});
    return write;
  }

  /** Resolves once every revocation so far is on disk (shutdown). */
  flush(): Promise<void> {
    return this.writing;
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await replaceFileDurably(path, text);
}

/**
 * Revocations of customer tracking links for one node (no `REDIS_URL`), in memory and
 * durable in `DATA_DIR/share-links.json`. Making a link writes nothing (the token carries
 * its claims); only a revocation does: the file is rewritten to a temporary file, fsynced
 * and renamed over the old one, so a crash leaves one or the other, and `revoke` resolves
 * only after that. An entry is dropped once every link it killed has expired anyway
 * (`maxLinkMs` after the revocation), so the file stays small. There is no other node, so
 * `onRevoked` never fires.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { replaceFileDurably } from '../storage/checkpoint.js';
import type { ShareRevocations } from './share-revocations.js';

/** The file's name in DATA_DIR. */
export const SHARE_STORE_FILE = 'share-links.json';

/** See the module comment. */
export class LocalShareRevocations implements ShareRevocations {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly revoked: Map<string, number>,
    private readonly maxLinkMs: number,
  ) {}

  /** Reads the store in `dataDir` (empty when there is none yet); throws on a malformed file. */
  static async open(dataDir: string, maxLinkMs: number): Promise<LocalShareRevocations> {
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
    return new LocalShareRevocations(path, revoked, maxLinkMs);
  }

  async revokedAt(order: string): Promise<number | undefined> {
    return this.revoked.get(order);
  }

  known(order: string): number | undefined {
    return this.revoked.get(order);
  }

  async revoke(order: string, at: number): Promise<number> {
    const stored = Math.max(at, this.revoked.get(order) ?? 0);
    this.revoked.set(order, stored);
    for (const [id, t] of this.revoked) if (t + this.maxLinkMs < at) this.revoked.delete(id);
    const snapshot = JSON.stringify({ revoked: Object.fromEntries(this.revoked) });
    const write = this.writing.then(() => writeDurably(this.path, snapshot));
    // A failed write fails its own DELETE; the next revocation writes everything again.
    this.writing = write.catch(() => {});
    await write;
    return stored;
  }

  onRevoked(): void {}

  /** Every revocation in the store (not yet forgotten), to carry into Redis when the node joins several. */
  entries(): ReadonlyMap<string, number> {
    return new Map(this.revoked);
  }

  /** Resolves once every revocation so far is on disk. */
  close(): Promise<void> {
    return this.writing;
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await replaceFileDurably(path, text);
}

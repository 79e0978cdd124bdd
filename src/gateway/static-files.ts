/**
 * A fixed set of files served from memory. Files are read once, when the gateway starts,
 * and looked up by exact URL path: a request path is a key in a map and never becomes a
 * file-system path, so `..`, encoded slashes or symlinks cannot reach any other file.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, posix, relative, sep } from 'node:path';

/** Content types of the extensions we serve; any other file is refused when the set is built. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** One file, ready to send. */
export interface StaticFile {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong validator: a hash of the content, so a rebuilt file gets a new one. */
  readonly etag: string;
}

/** URL paths to in-memory files. */
export class StaticFiles {
  private readonly files = new Map<string, StaticFile>();

  /** Serves `file` at `urlPath`; throws when the file cannot be read or its type is not servable. */
  addFile(urlPath: string, file: string): void {
    const contentType = CONTENT_TYPES[extname(file)];
    if (contentType === undefined) throw new Error(`${file}: no content type for ${extname(file) || 'no extension'}`);
    const body = readFileSync(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    this.files.set(urlPath, { body, contentType, etag });
  }

  /**
   * Serves every file under `dir` whose extension is in `extensions`, at `prefix` plus
   * its path relative to `dir` (with `/` separators). Returns how many were added.
   */
  addTree(prefix: string, dir: string, extensions: readonly string[]): number {
    let added = 0;
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !extensions.includes(extname(entry.name))) continue;
      const file = join(entry.parentPath, entry.name);
      this.addFile(posix.join(prefix, relative(dir, file).split(sep).join('/')), file);
      added += 1;
    }
    return added;
  }

  /** The file at exactly `urlPath`, if any. */
  get(urlPath: string): StaticFile | undefined {
    return this.files.get(urlPath);
  }

  /** Every URL path served, for logs and tests. */
  get paths(): string[] {
    return [...this.files.keys()];
  }
}

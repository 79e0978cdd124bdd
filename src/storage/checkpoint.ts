/**
 * A tiny durable file holding one log position: how far the archive writer got. Written
 * to a temp file, fsynced and renamed over the old one, so a crash leaves either the old
 * or the new position, never a torn one. Losing progress is harmless (rows re-inserted
 * are deduplicated); skipping unarchived rows would not be, hence the care.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LogPosition } from './append-log.js';

/** Reads the position saved at `path`; null when there is none yet. Throws on a malformed file. */
export async function readCheckpoint(path: string): Promise<LogPosition | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<LogPosition>;
  if (!Number.isSafeInteger(parsed.segment) || !Number.isSafeInteger(parsed.offset)) {
    throw new Error(`checkpoint ${path} is malformed: ${text.slice(0, 100)}`);
  }
  return { segment: parsed.segment!, offset: parsed.offset! };
}

/** Durably replaces the position saved at `path`. */
export async function writeCheckpoint(path: string, pos: LogPosition): Promise<void> {
  await replaceFileDurably(path, JSON.stringify({ segment: pos.segment, offset: pos.offset }));
}

/**
 * Replaces the file at `path` with `text` so that a crash leaves either the old or the new
 * content, never a mix: written beside it, fsynced, renamed over it, and the folder fsynced
 * (the rename itself must survive a power loss too).
 */
export async function replaceFileDurably(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

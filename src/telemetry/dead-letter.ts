/**
 * The archive's dead letters: rows a store refused for a reason retrying cannot fix (or
 * that could not even be encoded) are written to `${DATA_DIR}/dead-letter/`, one JSON file
 * per refusal, before the spool moves past them. Nothing is lost: an operator reads the
 * reason, fixes what is wrong (schema, engine settings, the data) and replays the files
 * with `npm run replay-dead-letter`. Replayed files move to `dead-letter/replayed/`.
 *
 * The folder is append-only for the node; only the replay command moves files out of it.
 * Each file is written to a temp name, fsynced and renamed, so a crash leaves either a
 * whole file or none (then the batch is still in the spool and refused again).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchiveRecord } from './archive.js';
import { BatchEncoder } from './schema.js';
import type { Store } from './store.js';
import { classifyStoreFailure } from './store-failure.js';

/** Sub-folder of `DATA_DIR` holding dead letters. */
export const DEAD_LETTER_DIR = 'dead-letter';
/** Sub-folder of the dead-letter folder where replayed files are kept. */
export const REPLAYED_DIR = 'replayed';

/** One dead-letter file's content. */
export interface DeadLetter {
  version: 1;
  /** When the rows were set aside (epoch ms). */
  at: number;
  /** The store that refused them (its `name`), or "encoder" for rows that could not be encoded. */
  store: string;
  table: string;
  /** The day partition of the rows, when known. */
  day: string | null;
  /** ClickHouse error code of the refusal, when the engine gave one. */
  code: number | null;
  reason: string;
  rows: number;
  records: ArchiveRecord[];
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes dead-letter files into one folder. */
export class DeadLetterFolder {
  private ready = false;

  /** `dir` is `${DATA_DIR}/dead-letter`; created on first use. */
  constructor(readonly dir: string) {}

  /** Durably writes one dead letter and returns its file name. */
  async add(letter: Omit<DeadLetter, 'version' | 'rows'>): Promise<string> {
    if (!this.ready) {
      await mkdir(this.dir, { recursive: true });
      this.ready = true;
    }
    const full: DeadLetter = { version: 1, ...letter, rows: letter.records.length };
    // Time first so that names sort in the order the letters were written.
    const stamp = new Date(letter.at).toISOString().replace(/[:.]/g, '-');
    const name = `${stamp}-${letter.table}-${letter.day ?? 'unknown-day'}-${randomBytes(4).toString('hex')}.json`;
    const tmp = join(this.dir, `.${name}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      // A record the encoder refused may hold anything the spool decoded, BigInt included,
      // which JSON.stringify would throw on: that must not stop the drainer either.
      await fh.writeFile(`${JSON.stringify(full, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    await syncDir(this.dir);
    return name;
  }
}

/** Names of the dead-letter files waiting in `dir`, oldest first; none when the folder does not exist. */
export async function listDeadLetters(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
}

/** Reads one dead-letter file; throws when it is not one. */
export async function readDeadLetter(path: string): Promise<DeadLetter> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<DeadLetter>;
  if (parsed.version !== 1 || !Array.isArray(parsed.records) || typeof parsed.table !== 'string') {
    throw new Error(`${path} is not a dead-letter file`);
  }
  return parsed as DeadLetter;
}

/** What happened to one file during a replay. */
export interface ReplayOutcome {
  file: string;
  rows: number;
  ok: boolean;
  /** Why it stays, when not ok. */
  error?: string;
  /** Whether that failure looks permanent (fix the cause first) or transient (just run again). */
  kind?: 'transient' | 'permanent';
}

/**
 * Inserts every waiting dead letter of `dir` into `store` (split by table and day like the
 * drainer's inserts) and moves each file that landed whole to `replayed/`. A file that is
 * refused again stays where it is; inserting part of it twice later is harmless (the
 * tables deduplicate). The store's schema must exist.
 */
export async function replayDeadLetters(store: Store, dir: string): Promise<ReplayOutcome[]> {
  const out: ReplayOutcome[] = [];
  for (const file of await listDeadLetters(dir)) {
    const path = join(dir, file);
    let rows = 0;
    try {
      const letter = await readDeadLetter(path);
      rows = letter.records.length;
      const encoder = new BatchEncoder();
      for (const rec of letter.records) encoder.add(rec);
      const { tables, rejected } = encoder.finish();
      if (rejected.length > 0) {
        out.push({ file, rows, ok: false, kind: 'permanent', error: `cannot encode: ${rejected[0]!.reason}` });
        continue;
      }
      for (const t of tables) await store.insert(t.table, t.columns, t.body);
      await mkdir(join(dir, REPLAYED_DIR), { recursive: true });
      await rename(path, join(dir, REPLAYED_DIR, file));
      await syncDir(dir);
      out.push({ file, rows, ok: true });
    } catch (err) {
      out.push({ file, rows, ok: false, kind: classifyStoreFailure(err).kind, error: (err as Error).message });
    }
  }
  return out;
}

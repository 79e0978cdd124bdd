/**
 * The console's copy of one technician's recent track. The map refreshes every few
 * seconds; instead of reading the whole window again each time it asks the server only
 * for points after the newest one it has (`from` = last ts + 1), following the track
 * pages' `next`, and keeps a bounded window in memory: the last `windowMs`, at most
 * `maxPoints` points.
 *
 * A point that reaches the archive later than a newer one (a device's offline backlog)
 * falls before `from` and is not fetched; it shows when the window is loaded again (a new
 * selection). The live position is drawn from the technician's own record anyway.
 */
import type { TrackPoint } from '../../protocol.js';
import type { Api, ApiResult } from './api.js';

/** One track page as the server answers it (PROTOCOL.md, "Track pages"). */
export interface TrackPage {
  points: TrackPoint[];
  /** The `from` of the next page; absent when the window is complete. */
  next?: number;
}

/** Pages read per refresh at most; a longer backlog is read on the following refreshes. */
export const MAX_PAGES_PER_REFRESH = 4;

/** The recent points of one technician, oldest first. */
export class TrackWindow {
  private pts: TrackPoint[] = [];
  /** Where the next fetch starts; null until the first one. */
  private resumeAt: number | null = null;
  /** The refresh in progress: refreshes run one after another, so none asks for what another is reading. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    readonly tech: string,
    private readonly windowMs: number,
    private readonly maxPoints: number,
  ) {}

  /** Runs `job` after the refreshes already queued on this window. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.busy.then(job, job);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /** The points held, oldest first. */
  get points(): readonly TrackPoint[] {
    return this.pts;
  }

  /** The `from` of the next request at `now`: after the newest point held, or the start of the window. */
  fromAt(now: number): number {
    return Math.max(this.resumeAt ?? 0, Math.round(now) - this.windowMs);
  }

  /**
   * Adds one page read from `from` (points in time order, each after the ones held) and
   * notes where the next read starts; then drops points older than the window and the
   * oldest beyond `maxPoints`.
   */
  add(page: TrackPage, from: number, now: number): void {
    const last = this.pts.at(-1)?.[0] ?? Number.NEGATIVE_INFINITY;
    for (const p of page.points) if (p[0] > last && p[0] >= from) this.pts.push(p);
    const newest = page.points.at(-1)?.[0];
    this.resumeAt = page.next ?? (newest === undefined ? from : newest + 1);
    const oldest = now - this.windowMs;
    let drop = 0;
    while (drop < this.pts.length && this.pts[drop]![0] < oldest) drop++;
    drop = Math.max(drop, this.pts.length - this.maxPoints);
    if (drop > 0) this.pts = this.pts.slice(drop);
  }
}

/**
 * Reads what is new for `window` at `now` (up to `to`), following `next` for up to
 * `MAX_PAGES_PER_REFRESH` pages. Resolves with the first failure, if any; what was read
 * before it stays in the window.
 */
export function refreshTrack(api: Api, window: TrackWindow, now: number, to: number): Promise<ApiResult<null>> {
  const path = `/v1/technicians/${encodeURIComponent(window.tech)}/track`;
  return window.exclusive(async (): Promise<ApiResult<null>> => {
    for (let page = 0; page < MAX_PAGES_PER_REFRESH; page++) {
      const from = window.fromAt(now);
      if (from > to) break;
      const res = await api.get<TrackPage>(`${path}?from=${from}&to=${to}`);
      if (!res.ok) return res;
      window.add(res.value, from, now);
      if (res.value.next === undefined) break;
    }
    return { ok: true, value: null };
  });
}

/**
 * The HTTP side of the console: JSON GETs on the node's own origin with the operator's
 * token as `Authorization: Bearer` (never in a URL, where logs and histories keep it).
 */

/** A JSON answer, or why there is none: `status` 0 means the server could not be reached. */
export type ApiResult<T> = { ok: true; value: T } | { ok: false; status: number; msg: string };

/** Calls the node's HTTP API as one operator. */
export class Api {
  constructor(private readonly token: string) {}

  /** GETs `path` (with its query) and parses the JSON body; never throws. */
  async get<T>(path: string, signal?: AbortSignal): Promise<ApiResult<T>> {
    let res: Response;
    try {
      res = await fetch(path, {
        headers: { authorization: `Bearer ${this.token}` },
        cache: 'no-store',
        credentials: 'omit',
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      return { ok: false, status: 0, msg: `server unreachable (${(err as Error).message})` };
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      return { ok: false, status: res.status, msg: `unexpected answer (HTTP ${res.status})` };
    }
    if (res.ok) return { ok: true, value: body as T };
    const msg = typeof (body as { msg?: unknown })?.msg === 'string' ? (body as { msg: string }).msg : res.statusText;
    return { ok: false, status: res.status, msg };
  }
}

/** Fetches the public console settings (no token needed). */
export async function fetchPublicJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { cache: 'no-store', credentials: 'omit' });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

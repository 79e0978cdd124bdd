/**
 * ETAs from a router speaking the OSRM HTTP API (`ROUTER_URL`): `GET
 * <base>/route/v1/driving/<lon>,<lat>;<lon>,<lat>?overview=false` answers
 * `{code:"Ok", routes:[{duration, distance}]}` (seconds, metres).
 *
 * - Each request is bounded by a timeout; whatever goes wrong (timeout, connection
 *   refused, a non-2xx status, an answer that is not a route) falls back to the straight
 *   line, and each fallback is reported (`onFallback`, a metric) with its reason.
 * - One cached answer per journey key (the order id): reused while the technician is
 *   within `REUSE_M` of where it was asked from and it is younger than `REUSE_MS` (a
 *   fallback for `RETRY_MS` only, so a router that is back is used again soon). At most
 *   one request per key is in flight; callers in the meantime share it.
 */
import { distanceMeters } from '../geofence/distance.js';
import { type Eta, type EtaEstimator, type LatLon, straightLineEta } from './eta.js';

/** Why a router answer was not used. */
export type FallbackReason = 'timeout' | 'error' | 'status' | 'no_route' | 'bad_answer';

/** A cached route answer is reused while the technician stays within this many metres of where it was asked... */
export const REUSE_M = 50;
/** ... and for at most this long. */
export const REUSE_MS = 30_000;
/** A fallback answer is reused this long before the router is asked again. */
export const RETRY_MS = 5_000;

export interface OsrmOptions {
  /** The router's base URL (ROUTER_URL), without `/route/v1`. */
  baseUrl: string;
  timeoutMs: number;
  /** Speed of the straight-line fallback (TRAVEL_SPEED_MPS). */
  speedMps: number;
  /** Milliseconds now (the node's clock). */
  now: () => number;
  /** Called once per router request that could not be used. */
  onFallback: (reason: FallbackReason) => void;
  /** Called once per router request answered with a route. */
  onRoute?: () => void;
}

interface Cached {
  from: LatLon;
  at: number;
  eta: Eta;
}

class Fallback extends Error {
  constructor(readonly reason: FallbackReason) {
    super(reason);
  }
}

/** Reads `{code:"Ok", routes:[{duration, distance}]}`; throws a `Fallback` for anything else. */
export function readOsrmRoute(body: unknown): { seconds: number; metres: number } {
  if (typeof body !== 'object' || body === null) throw new Fallback('bad_answer');
  const { code, routes } = body as { code?: unknown; routes?: unknown };
  if (code !== 'Ok') throw new Fallback(typeof code === 'string' ? 'no_route' : 'bad_answer');
  if (!Array.isArray(routes) || routes.length === 0) throw new Fallback('no_route');
  const { duration, distance } = routes[0] as { duration?: unknown; distance?: unknown };
  if (typeof duration !== 'number' || typeof distance !== 'number') throw new Fallback('bad_answer');
  if (!Number.isFinite(duration) || !Number.isFinite(distance) || duration < 0 || distance < 0) {
    throw new Fallback('bad_answer');
  }
  return { seconds: Math.round(duration), metres: Math.round(distance) };
}

/** See the module comment. */
export class OsrmEstimator implements EtaEstimator {
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<Eta>>();
  private readonly base: string;

  constructor(private readonly opts: OsrmOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
  }

  estimate(key: string, from: LatLon, to: LatLon): Promise<Eta> {
    const now = this.opts.now();
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      const maxAge = hit.eta.source === 'route' ? REUSE_MS : RETRY_MS;
      if (now - hit.at < maxAge && distanceMeters(hit.from.lat, hit.from.lon, from.lat, from.lon) < REUSE_M) {
        return Promise.resolve(hit.eta);
      }
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const asked = this.ask(from, to).then((eta) => {
      this.inFlight.delete(key);
      this.cache.set(key, { from: { lat: from.lat, lon: from.lon }, at: this.opts.now(), eta });
      return eta;
    });
    this.inFlight.set(key, asked);
    return asked;
  }

  forget(key: string): void {
    this.cache.delete(key);
  }

  /** How many journeys have a cached answer (tests, metrics). */
  get size(): number {
    return this.cache.size;
  }

  private async ask(from: LatLon, to: LatLon): Promise<Eta> {
    const url = `${this.base}/route/v1/driving/${from.lon},${from.lat};${to.lon},${to.lat}?overview=false`;
    try {
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
      } catch (err) {
        throw new Fallback((err as Error).name === 'TimeoutError' ? 'timeout' : 'error');
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch (err) {
        throw new Fallback((err as Error).name === 'TimeoutError' ? 'timeout' : res.ok ? 'bad_answer' : 'status');
      }
      // OSRM answers 400 with {code:"NoRoute"} and the like: a route it cannot make.
      if (!res.ok && (body as { code?: unknown } | null)?.code === undefined) throw new Fallback('status');
      const route = readOsrmRoute(body);
      this.opts.onRoute?.();
      return { ...route, source: 'route' };
    } catch (err) {
      this.opts.onFallback(err instanceof Fallback ? err.reason : 'error');
      return straightLineEta(from, to, this.opts.speedMps);
    }
  }
}

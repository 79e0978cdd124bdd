/**
 * Redis live-position index: a GEO set (technician → quantised position) that `GEOSEARCH`
 * (Redis ≥ 6.2) narrows to a radius, and a hash holding each technician's exact last fix
 * and its time, which the answer is built from. Writes are auto-pipelined and not awaited:
 * a ping costs two commands (GEOADD, HSET) sent with everything else of that tick, and
 * never waits a round trip.
 */
import type { Redis } from 'ioredis';
import { distanceMeters } from '../geofence/distance.js';
import { roundMeters } from '../geofence/fence.js';
import type { NearbyTechnician } from '../protocol.js';
import type { NearbyIndex } from './nearby-index.js';
import { nearestFirst } from './nearby-index-memory.js';
import { nearbyFixCheck, type OnCorrupt } from './record-schemas.js';
import { closeRedis, type RedisTarget, redisClient } from './redis-target.js';

/** See the module comment. */
export class RedisNearbyIndex implements NearbyIndex {
  private readonly redis: Redis;
  private readonly geoKey: string;
  private readonly fixKey: string;
  private readonly inFlight = new Set<Promise<unknown>>();

  /**
   * `prefix` namespaces the keys; `onError` hears about failed fire-and-forget writes,
   * `onCorrupt` about a stored fix that fails its schema (that technician is left out).
   */
  constructor(
    url: RedisTarget | string,
    prefix: string,
    private readonly onError?: (err: Error) => void,
    private readonly onCorrupt?: OnCorrupt,
  ) {
    this.redis = redisClient(url, { enableAutoPipelining: true });
    this.redis.on('error', (err: Error) => onError?.(err));
    this.geoKey = `${prefix}geo:online`;
    this.fixKey = `${prefix}geo:fix`;
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: Error) => this.onError?.(err)).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  put(id: string, lat: number, lon: number, ts: number): void {
    this.track(this.redis.geoadd(this.geoKey, lon, lat, id));
    this.track(this.redis.hset(this.fixKey, id, `${lat},${lon},${ts}`));
  }

  remove(id: string): void {
    this.track(this.redis.zrem(this.geoKey, id));
    this.track(this.redis.hdel(this.fixKey, id));
  }

  async erase(id: string): Promise<void> {
    // Earlier puts are in flight on this connection: wait for them so none lands after.
    await Promise.all(this.inFlight);
    await Promise.all([this.redis.zrem(this.geoKey, id), this.redis.hdel(this.fixKey, id)]);
  }

  async search(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    // GEO cells are coarser than a fix; widen by a metre, then decide on the exact fixes.
    const ids = (await this.redis.geosearch(
      this.geoKey,
      'FROMLONLAT',
      lon,
      lat,
      'BYRADIUS',
      radius + 1,
      'm',
      'ASC',
    )) as string[];
    if (ids.length === 0) return [];
    const fixes = await this.redis.hmget(this.fixKey, ...ids);
    const out: NearbyTechnician[] = [];
    ids.forEach((id, i) => {
      const raw = fixes[i];
      // In the GEO set but without a fix: erased or removed meanwhile.
      if (raw === null || raw === undefined) return;
      const parts = raw.split(',').map(Number);
      if (!nearbyFixCheck.Check(parts)) {
        this.onCorrupt?.('nearby index fix', 'not three numbers lat,lon,ts in range');
        return;
      }
      const [pLat, pLon, ts] = parts;
      const dist = distanceMeters(lat, lon, pLat, pLon);
      if (dist <= radius) out.push({ id, lat: pLat, lon: pLon, ts, dist: roundMeters(dist) });
    });
    return out.sort(nearestFirst);
  }

  async close(): Promise<void> {
    await Promise.all(this.inFlight);
    await closeRedis(this.redis);
  }
}

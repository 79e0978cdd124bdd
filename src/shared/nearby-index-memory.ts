/** In-process live-position index for one node without `REDIS_URL`. */
import { distanceMeters } from '../geofence/distance.js';
import { roundMeters } from '../geofence/fence.js';
import type { NearbyTechnician } from '../protocol.js';
import type { NearbyIndex } from './nearby-index.js';

/** Orders search results nearest first, ties by id, so both backends answer identically. */
export function nearestFirst(a: NearbyTechnician, b: NearbyTechnician): number {
  return a.dist - b.dist || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** See the module comment. */
export class MemoryNearbyIndex implements NearbyIndex {
  private readonly positions = new Map<string, { lat: number; lon: number; ts: number }>();

  put(id: string, lat: number, lon: number, ts: number): void {
    this.positions.set(id, { lat, lon, ts });
  }

  remove(id: string): void {
    this.positions.delete(id);
  }

  async erase(id: string): Promise<void> {
    this.positions.delete(id);
  }

  async search(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    const out: NearbyTechnician[] = [];
    for (const [id, p] of this.positions) {
      const dist = distanceMeters(lat, lon, p.lat, p.lon);
      if (dist <= radius) out.push({ id, lat: p.lat, lon: p.lon, ts: p.ts, dist: roundMeters(dist) });
    }
    return out.sort(nearestFirst);
  }

  async close(): Promise<void> {}
}

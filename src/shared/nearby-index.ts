/**
 * The live-position index behind `GET /v1/nearby`: the last position of every online
 * technician, searchable by distance across all nodes. One interface, one file per backend
 * (in-process, Redis GEO set).
 */
import type { NearbyTechnician } from '../protocol.js';

/** See the module comment. */
export interface NearbyIndex {
  /** Records technician `id`'s latest position. Fire-and-forget: a ping never waits on it. */
  put(id: string, lat: number, lon: number, ts: number): void;
  /** Drops `id` (it went offline), so searches only find online technicians. Fire-and-forget. */
  remove(id: string): void;
  /**
   * Drops `id` and resolves once the index no longer holds it (erasing a technician's data
   * on request): unlike `remove`, the caller answers only after every node's search misses it.
   */
  erase(id: string): Promise<void>;
  /** Technicians within `radius` metres of (lat, lon), nearest first (ties by id). */
  search(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]>;
  /** Waits for writes in flight and releases connections. */
  close(): Promise<void>;
}

/** In-process leases for one node without `REDIS_URL`, timed by the behaviour `Clock`. */
import type { Clock } from '../clock.js';
import type { Leases } from './leases.js';

/** See the module comment. */
export class MemoryLeases implements Leases {
  private readonly held = new Map<string, { owner: string; until: number }>();
  /** Per key, the newest fencing token issued and the node it went to (never expires). */
  private readonly fences = new Map<string, { token: number; owner: string }>();

  constructor(private readonly clock: Clock) {}

  private live(key: string): { owner: string; until: number } | undefined {
    const l = this.held.get(key);
    if (l !== undefined && l.until <= this.clock.now()) {
      this.held.delete(key);
      return undefined;
    }
    return l;
  }

  /** The token of `key` for `owner`: the current one if `owner` had it last, else a new one. */
  private fence(key: string, owner: string): number {
    const f = this.fences.get(key);
    if (f !== undefined && f.owner === owner) return f.token;
    const next = { token: (f?.token ?? 0) + 1, owner };
    this.fences.set(key, next);
    return next.token;
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<number | null> {
    const l = this.live(key);
    if (l !== undefined && l.owner !== owner) return null;
    this.held.set(key, { owner, until: this.clock.now() + ttlMs });
    return this.fence(key, owner);
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)?.owner !== owner) return false;
    this.held.set(key, { owner, until: this.clock.now() + ttlMs });
    return true;
  }

  async transfer(key: string, owner: string, to: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)?.owner !== owner) return false;
    this.held.set(key, { owner: to, until: this.clock.now() + ttlMs });
    this.fence(key, to);
    return true;
  }

  async release(key: string, owner: string): Promise<boolean> {
    if (this.live(key)?.owner !== owner) return false;
    this.held.delete(key);
    return true;
  }

  async holder(key: string): Promise<string | null> {
    return this.live(key)?.owner ?? null;
  }

  /** Loses lease `key` and its fence, as a Redis replica promoted before it received them would (tests). */
  forget(key: string): void {
    this.held.delete(key);
    this.fences.delete(key);
  }

  async close(): Promise<void> {}
}

/**
 * Who may open a WebSocket at all, before the token is even checked: a ceiling on open
 * connections in total and per source address, and a token-bucket rate of upgrades per
 * source address. A slot is reserved when an upgrade starts (so a burst of upgrades that
 * are all still verifying their tokens cannot slip past the ceiling) and released when
 * the upgrade fails or the connection closes.
 */
import { RateLimiter } from './rate-limit.js';

/** The limits, from configuration. */
export interface AdmissionLimits {
  maxConnections: number;
  maxPerAddress: number;
  upgradesPerSec: number;
  upgradeBurst: number;
}

/** Why an upgrade is refused: the HTTP status and a message for the client. */
export type Refusal = { status: 429 | 503; msg: string };

/** Forget an address's upgrade bucket after it has been idle this long (it is full again by then). */
const BUCKET_IDLE_MS = 60_000;

/** Counts connections (and upgrades in progress) per source address; one instance per server. */
export class Admission {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly buckets = new Map<string, { limiter: RateLimiter; usedAt: number }>();
  private lastSweep = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Open connections plus upgrades in progress. */
  get size(): number {
    return this.total;
  }

  /** Reserves a slot for `remote`, or says why not. Every success must be paired with one `release`. */
  admit(remote: string, now: number): Refusal | null {
    this.sweep(now);
    if (this.total >= this.limits.maxConnections) {
      return { status: 503, msg: `the server is at its limit of ${this.limits.maxConnections} connections` };
    }
    const open = this.perAddress.get(remote) ?? 0;
    if (open >= this.limits.maxPerAddress) {
      return { status: 429, msg: `more than ${this.limits.maxPerAddress} connections from one address` };
    }
    let bucket = this.buckets.get(remote);
    if (!bucket) {
      bucket = { limiter: new RateLimiter(this.limits.upgradesPerSec, this.limits.upgradeBurst, now), usedAt: now };
      this.buckets.set(remote, bucket);
    }
    bucket.usedAt = now;
    if (!bucket.limiter.take(now)) {
      return { status: 429, msg: `more than ${this.limits.upgradesPerSec} connection attempts per second` };
    }
    this.total += 1;
    this.perAddress.set(remote, open + 1);
    return null;
  }

  /** Gives back the slot `admit` reserved for `remote`. */
  release(remote: string): void {
    const open = this.perAddress.get(remote);
    if (open === undefined) return;
    this.total -= 1;
    if (open <= 1) this.perAddress.delete(remote);
    else this.perAddress.set(remote, open - 1);
  }

  /** Drops idle upgrade buckets so that many distinct addresses cannot grow memory forever. */
  private sweep(now: number): void {
    if (now - this.lastSweep < BUCKET_IDLE_MS) return;
    this.lastSweep = now;
    for (const [remote, bucket] of this.buckets) {
      if (now - bucket.usedAt > BUCKET_IDLE_MS) this.buckets.delete(remote);
    }
  }
}

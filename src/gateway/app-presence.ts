/**
 * Online state of technicians whose phone runs a tracker app (OsmAnd protocol, OwnTracks)
 * instead of holding a `/v1/device` socket. Such a technician is attached to the tracker
 * from its first accepted fix until `windowMs` pass without another one, so that it is
 * `online` and offered by `GET /v1/nearby` as a socket device is while connected. Pushes
 * (notices, `sos_status`) cannot reach an app and are dropped.
 *
 * A socket wins: while a `/v1/device` connection of the technician is open here the app's
 * fixes do not attach anything (the socket's link stays the one pushes go to), and a
 * socket that opens takes the technician over from the app.
 */
import type { DeviceLink, Tracker } from '../actors/api.js';
import type { CancelTimer, Clock } from '../clock.js';

interface Attached {
  link: DeviceLink;
  /** When the last fix came. */
  lastAt: number;
  cancel: CancelTimer;
}

/** See the module comment. One per node. */
export class AppPresence {
  private readonly apps = new Map<string, Attached>();
  private readonly sockets = new Set<string>();

  constructor(
    private readonly tracker: Tracker,
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  /** An app of technician `tech` delivered a fix: online for another `windowMs`. */
  seen(tech: string): void {
    if (this.sockets.has(tech)) return;
    const now = this.clock.now();
    const current = this.apps.get(tech);
    if (current !== undefined) {
      current.lastAt = now;
      return;
    }
    // An app has no connection to push on or close: its next request simply comes again.
    // When another node takes the technician over, this node stops counting it as online.
    const link: DeviceLink = {
      push: () => {},
      moveOn: () => {
        if (this.apps.get(tech) !== entry) return;
        entry.cancel();
        this.apps.delete(tech);
        this.tracker.detachDevice(tech, link);
      },
    };
    const entry: Attached = { link, lastAt: now, cancel: () => {} };
    this.apps.set(tech, entry);
    this.tracker.attachDevice(tech, link);
    this.arm(tech, entry);
  }

  /** Detaches when the window passes without a fix; re-arms when one came meanwhile. */
  private arm(tech: string, entry: Attached): void {
    entry.cancel = this.clock.setTimer(entry.lastAt + this.windowMs, () => {
      if (this.apps.get(tech) !== entry) return;
      if (this.clock.now() < entry.lastAt + this.windowMs) {
        this.arm(tech, entry);
        return;
      }
      this.apps.delete(tech);
      this.tracker.detachDevice(tech, entry.link);
    });
  }

  /** A `/v1/device` socket of `tech` opened here: its link replaced the app's. */
  socketAttached(tech: string): void {
    this.sockets.add(tech);
    const entry = this.apps.get(tech);
    if (entry === undefined) return;
    entry.cancel();
    this.apps.delete(tech);
  }

  /** That socket closed (and no newer one of `tech` is open). */
  socketDetached(tech: string): void {
    this.sockets.delete(tech);
  }

  /** Whether an app keeps `tech` online (tests). */
  holds(tech: string): boolean {
    return this.apps.has(tech);
  }

  /** Stops every timer (shutdown); the tracker closes its links itself. */
  close(): void {
    for (const entry of this.apps.values()) entry.cancel();
    this.apps.clear();
  }
}

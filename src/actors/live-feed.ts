/**
 * One `LiveObserver` that fans out to any number of listeners added later: the
 * composition root gives it to the tracker at start, and features (the customer link's
 * hub, the events of issue 16) add their listener whenever they start. A listener that
 * throws is logged and does not stop the others, nor the actor that committed the change.
 */
import type { Logger } from '../log.js';
import type { Approaching, LiveObserver } from './api.js';

/** See the module comment. */
export class LiveFeed implements LiveObserver {
  private listeners: LiveObserver[] = [];

  constructor(private readonly log?: Logger) {}

  /** Adds `listener`; the function returned removes it. */
  add(listener: LiveObserver): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  position(tech: string, pos: { ts: number; lat: number; lon: number }): void {
    for (const l of this.listeners) if (l.position) this.call(() => l.position?.(tech, pos));
  }

  order(order: Parameters<NonNullable<LiveObserver['order']>>[0]): void {
    for (const l of this.listeners) if (l.order) this.call(() => l.order?.(order));
  }

  approaching(event: Approaching): void {
    for (const l of this.listeners) if (l.approaching) this.call(() => l.approaching?.(event));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log?.error({ err }, 'live feed listener failed');
    }
  }
}

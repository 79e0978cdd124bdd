/**
 * What a customer may see, as pure functions of the order, the technician's live position
 * and the ETA (PROTOCOL.md, "Customer tracking link"):
 * - the order's state, scheduled time and place (the customer's own address);
 * - the technician's position only while the order is `departed`, and only the live one:
 *   no track, no id, no accuracy or speed, no other technician;
 * - the ETA only while `departed`.
 * And whether a link still answers: not revoked, not past its `exp`, and its order not
 * completed or cancelled more than SHARE_LINGER_MIN ago.
 */
import type { Eta } from '../eta/eta.js';
import type { OrderView, ShareState } from '../protocol.js';

/** The live position of a technician as the hub keeps it. */
export interface Fix {
  readonly lat: number;
  readonly lon: number;
  readonly ts: number;
}

/** The state object of `/t/<token>/state` and the stream. */
export function shareState(order: OrderView, fix: Fix | null, eta: Eta | null): ShareState {
  const departed = order.state === 'departed';
  return {
    order: { state: order.state, scheduledAt: order.scheduledAt, lat: order.lat, lon: order.lon },
    technician: departed && fix !== null ? { lat: fix.lat, lon: fix.lon, ts: fix.ts } : null,
    eta:
      departed && fix !== null && eta !== null
        ? { seconds: eta.seconds, metres: eta.metres, source: eta.source }
        : null,
  };
}

/** When the order was completed or cancelled (its timeline's entry), or null while it is not. */
export function finishedAt(order: OrderView): number | null {
  if (order.state !== 'completed' && order.state !== 'cancelled') return null;
  for (let i = order.timeline.length - 1; i >= 0; i--) {
    const e = order.timeline[i]!;
    if (e.state === order.state) return e.ts;
  }
  return null;
}

/** Until when a link of `order` with expiry `exp` answers (exclusive); Infinity-free: capped by `exp`. */
export function liveUntil(order: OrderView, exp: number, lingerMs: number): number {
  const done = finishedAt(order);
  return done === null ? exp : Math.min(exp, done + lingerMs);
}

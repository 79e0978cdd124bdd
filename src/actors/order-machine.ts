/**
 * The order state machine as a pure table: which command moves an order from which state
 * to which. Actors ask it; tests check every (state, command) pair against it.
 *
 *   assigned -depart-> departed -checkin-> arrived -start-> in_service -complete-> completed
 *   any state before completed -cancel-> cancelled
 */
import type { OrderState } from '../protocol.js';

/** What can be done to an order: the device commands and the dispatcher's cancel. */
export type OrderCommand = 'depart' | 'checkin' | 'start' | 'complete' | 'cancel';

/** For each command, the states it is allowed from and the state it leads to. */
export const TRANSITIONS: Readonly<Record<OrderCommand, { from: readonly OrderState[]; to: OrderState }>> = {
  depart: { from: ['assigned'], to: 'departed' },
  checkin: { from: ['departed'], to: 'arrived' },
  start: { from: ['arrived'], to: 'in_service' },
  complete: { from: ['in_service'], to: 'completed' },
  cancel: { from: ['assigned', 'departed', 'arrived', 'in_service'], to: 'cancelled' },
};

/** The state `command` leads to from `state`, or null when it is not allowed there (a `conflict`). */
export function nextState(state: OrderState, command: OrderCommand): OrderState | null {
  const t = TRANSITIONS[command];
  return t.from.includes(state) ? t.to : null;
}

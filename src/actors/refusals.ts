/** Refusals that several actors and the tracker give in the same words. */
import type { Refusal } from '../outcome.js';

/**
 * A device asking about an order or incident that is not its own. Unknown and foreign ids
 * get the same answer, so a device cannot probe which ids exist.
 */
export function notYours(what: 'order' | 'incident', id: string): Refusal {
  return { ok: false, code: 'forbidden', msg: `${what} ${id} is not assigned to you` };
}

/** Nothing of that id is known here. */
export function notFound(msg: string): Refusal {
  return { ok: false, code: 'not_found', msg };
}

/** An archive read failed; the caller may retry. */
export const ARCHIVE_DOWN: Refusal = {
  ok: false,
  code: 'unavailable',
  msg: 'the archive cannot be read right now; retry',
};

/**
 * What a behaviour call answers, in protocol terms. Neutral ground: the gateway renders
 * these, the actors produce them, and the archive and shared state report their health
 * with `ComponentHealth`, so none of them has to import another's port to say so.
 */
import type { ErrorCode } from './protocol.js';

/** Fields added to an `ack` (for example `dist`, `n`, `incident`). */
export type AckExtras = Record<string, unknown>;

/** A refusal in protocol terms; `extras` go into the `err` frame or HTTP body beside code and msg. */
export interface Refusal {
  ok: false;
  code: ErrorCode;
  msg: string;
  extras?: Record<string, unknown>;
}

/** What a behaviour call answers: a value, or a refusal that changed nothing. */
export type Outcome<T> = { ok: true; value: T } | Refusal;

/** Health of one dependency, for `/readyz`. */
export interface ComponentHealth {
  ok: boolean;
  detail?: string;
}

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

/**
 * What a component's state leaves of this node's service to its own devices: `served`
 * (everything a device sends is acked as usual), `degraded` (acked from this node alone:
 * some work is refused or waits, but SOS and check-ins are served), `refused` (the node
 * cannot store what devices send).
 */
export type DeviceService = 'served' | 'degraded' | 'refused';

/** Health of one dependency, for `/readyz`. */
export interface ComponentHealth {
  ok: boolean;
  detail?: string;
  /** What this state means for this node's devices (absent: `served`). */
  devices?: DeviceService;
}

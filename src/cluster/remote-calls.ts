/**
 * The requests one node runs for another (multi-node mode) and the checks their
 * arguments pass on arrival: they crossed a network, so they are validated like any
 * input, even though the first node's gateway validated them already.
 */
import type { OrderInput, SafetyMessage } from '../protocol.js';

/** A request run on the node that owns the technician concerned. */
export type RemoteCall =
  | { op: 'safety'; operator: string; msg: SafetyMessage }
  | { op: 'putOrder'; id: string; input: OrderInput }
  | { op: 'cancelOrder'; id: string }
  | { op: 'getOrder'; id: string }
  | { op: 'getTechnician'; id: string }
  | { op: 'eraseTechnician'; id: string };

const isId = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 128;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function safetyMessage(x: unknown): SafetyMessage | null {
  if (typeof x !== 'object' || x === null) return null;
  const m = x as Record<string, unknown>;
  if ((m.t !== 'ack' && m.t !== 'resolve') || !isId(m.id) || !isNum(m.seq)) return null;
  if (m.note !== undefined && (typeof m.note !== 'string' || m.note.length > 2000)) return null;
  return m as unknown as SafetyMessage;
}

function orderInput(x: unknown): OrderInput | null {
  if (typeof x !== 'object' || x === null) return null;
  const o = x as Record<string, unknown>;
  if (!isId(o.technician) || !isNum(o.lat) || !isNum(o.lon) || !isNum(o.scheduledAt) || !isNum(o.durationMin))
    return null;
  if (o.radius !== undefined && !isNum(o.radius)) return null;
  if (o.polygon !== undefined) {
    if (!Array.isArray(o.polygon) || o.polygon.length > 1000) return null;
    if (!o.polygon.every((p) => Array.isArray(p) && p.length === 2 && isNum(p[0]) && isNum(p[1]))) return null;
  }
  return o as unknown as OrderInput;
}

/** Parses a request that arrived on the node bus; null when malformed. */
export function parseRemoteCall(op: string, args: unknown): RemoteCall | null {
  if (typeof args !== 'object' || args === null) return null;
  const a = args as Record<string, unknown>;
  switch (op) {
    case 'safety': {
      const msg = safetyMessage(a.msg);
      return isId(a.operator) && msg !== null ? { op, operator: a.operator, msg } : null;
    }
    case 'putOrder': {
      const input = orderInput(a.input);
      return isId(a.id) && input !== null ? { op, id: a.id, input } : null;
    }
    case 'cancelOrder':
    case 'getOrder':
    case 'getTechnician':
    case 'eraseTechnician':
      return isId(a.id) ? { op, id: a.id } : null;
    default:
      return null;
  }
}

/**
 * The metric label of a close code. A client may close with any code from 1000 to 4999,
 * and each distinct label is a new time series: only codes the server itself knows get
 * their own label, everything else counts as "other".
 */
import { CloseCode } from '../protocol.js';

/** 1005: closed without a status code; 1006: the connection dropped without a close frame. */
const OBSERVED_ONLY = [1005, 1006];

const known = new Set<number>([...Object.values(CloseCode), ...OBSERVED_ONLY]);

/** `code` as a label from a bounded set: a known code as digits, else "other". */
export function closeCodeLabel(code: number): string {
  return known.has(code) ? String(code) : 'other';
}

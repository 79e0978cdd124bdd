/**
 * Tells a store failure that retrying can fix (the engine is down, slow, busy or short of
 * memory) from one it cannot (the engine read the rows and refused them: bad data, types,
 * syntax, too many partitions for one insert). The drainer retries the first kind with
 * backoff and moves the second kind to the dead-letter file, so one poisoned batch can
 * never hold up every row behind it.
 *
 * Only an answer of the engine with one of the codes below counts as permanent. Anything
 * else, including errors this module does not recognise, is transient: treating an outage
 * as bad data would empty the spool into dead letters, while treating bad data as an
 * outage only delays it until an operator looks (the failure is logged and on /readyz).
 */

/** Whether retrying can fix a failure. */
export type FailureKind = 'transient' | 'permanent';

/** A classified failure: its kind and the ClickHouse error code, when the engine gave one. */
export interface FailureClass {
  kind: FailureKind;
  /** ClickHouse error code (e.g. 27), or null for network errors and the like. */
  code: number | null;
}

/**
 * ClickHouse error codes that mean "these rows or this statement are wrong", the same on
 * Debian's 18.16 and on chDB. Code 252 (TOO_MANY_PARTS) is special-cased below: it also
 * names the transient "too many parts, merges are slower than inserts".
 */
const PERMANENT_CODES: ReadonlyMap<number, string> = new Map([
  [6, 'CANNOT_PARSE_TEXT'],
  [16, 'NO_SUCH_COLUMN_IN_TABLE'],
  [25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'],
  [26, 'CANNOT_PARSE_QUOTED_STRING'],
  [27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  [32, 'ATTEMPT_TO_READ_AFTER_EOF'],
  [33, 'CANNOT_READ_ALL_DATA'],
  [38, 'CANNOT_PARSE_DATE'],
  [41, 'CANNOT_PARSE_DATETIME'],
  [43, 'ILLEGAL_TYPE_OF_ARGUMENT'],
  [47, 'UNKNOWN_IDENTIFIER'],
  [53, 'TYPE_MISMATCH'],
  [62, 'SYNTAX_ERROR'],
  [69, 'ARGUMENT_OUT_OF_BOUND'],
  [70, 'CANNOT_CONVERT_TYPE'],
  [72, 'CANNOT_PARSE_NUMBER'],
  [117, 'INCORRECT_DATA'],
  [131, 'TOO_LARGE_STRING_SIZE'],
  [321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  [349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'],
  [469, 'VIOLATED_CONSTRAINT'],
]);

const TOO_MANY_PARTS = 252;
/** The permanent flavour of code 252: one insert touching too many partitions. */
const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i;

/** "Code: 27." (chDB, new servers) or "Code: 252, e.displayText()" (18.16) in an engine message. */
const CODE_IN_MESSAGE = /\bCode: (\d+)[.,]/;

/** Every message and code along an error's `cause` chain (StoreError wraps the driver's error). */
function chain(err: unknown): { messages: string[]; codes: number[] } {
  const messages: string[] = [];
  const codes: number[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== null && cur !== undefined && depth < 8; depth++) {
    if (cur instanceof Error) messages.push(cur.message);
    else messages.push(String(cur));
    if (typeof cur === 'object') {
      // chDB's ChdbInsertError carries `clickhouseCode`; @clickhouse/client's ClickHouseError a numeric-string `code`.
      const o = cur as { clickhouseCode?: unknown; code?: unknown; cause?: unknown };
      if (typeof o.clickhouseCode === 'number') codes.push(o.clickhouseCode);
      if (typeof o.code === 'string' && /^\d+$/.test(o.code)) codes.push(Number(o.code));
      cur = o.cause;
    } else {
      cur = undefined;
    }
  }
  for (const m of messages) {
    const found = CODE_IN_MESSAGE.exec(m);
    if (found) codes.push(Number(found[1]));
  }
  return { messages, codes };
}

/** Classifies a failure of a store call (see the module comment). */
export function classifyStoreFailure(err: unknown): FailureClass {
  const { messages, codes } = chain(err);
  const code = codes[0] ?? null;
  if (code === null) return { kind: 'transient', code };
  if (code === TOO_MANY_PARTS) {
    return { kind: messages.some((m) => TOO_MANY_PARTITIONS.test(m)) ? 'permanent' : 'transient', code };
  }
  return { kind: PERMANENT_CODES.has(code) ? 'permanent' : 'transient', code };
}

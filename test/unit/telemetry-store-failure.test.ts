/**
 * The store-failure classifier as a table: engine answers copied from chDB 26 and Debian's
 * ClickHouse 18.16 (whose HTTP errors carry no type name, so the client hands them over as
 * plain errors), network errors of the HTTP client, and the wrappers around them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreError } from '../../src/telemetry/store.js';
import { classifyStoreFailure, type FailureKind } from '../../src/telemetry/store-failure.js';

/** An error like chDB's ChdbInsertError: the code as `clickhouseCode`, the text as message. */
function chdbError(code: number, text: string): Error {
  return Object.assign(new Error(`Code: ${code}. DB::Exception: ${text}`), { clickhouseCode: code });
}
/** An error like @clickhouse/client's ClickHouseError (a newer server): `code` is a numeric string. */
function clientError(code: string, type: string, text: string): Error {
  return Object.assign(new Error(text), { code, type });
}
/** The text of an 18.16 server answer over HTTP, which the client passes on unparsed. */
function old(code: number, text: string): Error {
  return new Error(`Code: ${code}, e.displayText() = DB::Exception: ${text}, e.what() = DB::Exception\n`);
}
function sysError(code: string, text: string): Error {
  return Object.assign(new Error(text), { code });
}
const wrapped = (cause: unknown): StoreError => new StoreError('chdb', 'insert into pings', cause);

const cases: [string, unknown, FailureKind, number | null][] = [
  // Refused for good: the rows or the statement are wrong.
  [
    'chDB: too many partitions for one insert block',
    chdbError(252, 'Too many partitions for single INSERT block (more than 100). (TOO_MANY_PARTS)'),
    'permanent',
    252,
  ],
  [
    '18.16: too many partitions for one insert block',
    old(252, 'Too many partitions for single INSERT block (more than 100)'),
    'permanent',
    252,
  ],
  [
    'chDB: unparsable value',
    chdbError(27, "Cannot parse input: expected '\\t' before: '.5\\t11.5'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)"),
    'permanent',
    27,
  ],
  ['18.16: unparsable number', old(72, 'Cannot parse number'), 'permanent', 72],
  ['server: syntax error', clientError('62', 'SYNTAX_ERROR', 'Syntax error: failed at position 1'), 'permanent', 62],
  ['server: type mismatch', clientError('53', 'TYPE_MISMATCH', 'Type mismatch'), 'permanent', 53],
  ['18.16: NULL into a plain column', old(349, 'Cannot insert NULL value into a column'), 'permanent', 349],
  ['wrapped in StoreError', wrapped(chdbError(6, 'Cannot parse string')), 'permanent', 6],
  // Retrying fixes these: the engine is down, slow, busy or short of memory.
  [
    '18.16: too many parts, merges behind',
    old(252, 'Too many parts (300). Merges are processing significantly slower than inserts.'),
    'transient',
    252,
  ],
  ['memory limit', chdbError(241, 'Memory limit (total) exceeded (MEMORY_LIMIT_EXCEEDED)'), 'transient', 241],
  ['18.16: query timeout', old(159, 'Timeout exceeded: elapsed 30.1 seconds'), 'transient', 159],
  ['too many simultaneous queries', old(202, 'Too many simultaneous queries. Maximum: 50'), 'transient', 202],
  ['unknown table (schema recreated on retry)', old(60, "Table default.pings doesn't exist."), 'transient', 60],
  ['connection refused', wrapped(sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8123')), 'transient', null],
  ['connection reset', wrapped(sysError('ECONNRESET', 'socket hang up')), 'transient', null],
  ['HTTP client timeout', wrapped(new Error('Timeout error.')), 'transient', null],
  ['a store that is closed', wrapped(new Error('store is closed')), 'transient', null],
  ['not an Error at all', 'something odd', 'transient', null],
  ['nothing', undefined, 'transient', null],
];

describe('classifyStoreFailure', () => {
  for (const [name, err, kind, code] of cases) {
    it(`${name}: ${kind}`, () => {
      assert.deepEqual(classifyStoreFailure(err), { kind, code });
    });
  }
});

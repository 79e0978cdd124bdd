/**
 * The one typed configuration of a node, read from environment variables.
 *
 * Every variable is declared once in `VARIABLES` with its default and a sentence for the
 * README; `loadConfig` validates all of them and reports every bad one at once, so an
 * operator fixes a deployment in one round instead of one crash per variable.
 */

import { MAX_BATCH_POINTS, MAX_RADIUS_M } from './protocol.js';

/** A well-known secret used only when `TRACKER_INSECURE_DEV=1`: tokens are forgeable by anyone. */
export const INSECURE_DEV_SECRET = 'fieldtrack-insecure-development-secret-do-not-use';

type Parser<T> = (raw: string) => T;

interface Variable<T> {
  /** Default when unset; `undefined` means the variable is optional and has no value. */
  readonly def: T | undefined;
  readonly parse: Parser<T>;
  /** One sentence for the README table. */
  readonly doc: string;
}

class ConfigValueError extends Error {}

const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigValueError(`must be a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigValueError(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const num =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigValueError(`must be a number, got "${raw}"`);
    if (n < min || n > max) throw new ConfigValueError(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const text: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new ConfigValueError('must not be empty');
  return raw;
};

const flag: Parser<boolean> = (raw) => {
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', ''].includes(raw.toLowerCase())) return false;
  throw new ConfigValueError(`must be 1/true/yes or 0/false/no, got "${raw}"`);
};

const url =
  (...protocols: string[]): Parser<string> =>
  (raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigValueError(`must be a URL, got "${raw}"`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigValueError(`must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
    }
    return raw;
  };

/** A comma-separated list of `host:port` (Sentinel addresses). */
const hostPorts: Parser<{ host: string; port: number }[]> = (raw) => {
  const out = raw.split(',').map((part) => {
    const m = /^\s*([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})\s*$/.exec(part);
    const port = Number(m?.[2]);
    if (m === null || !(port >= 1 && port <= 65535)) {
      throw new ConfigValueError(`must be a comma-separated list of host:port, got "${part.trim()}"`);
    }
    return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
  });
  return out;
};

/**
 * An XYZ raster tile template (`https://tile.example.org/{z}/{x}/{y}.png`): http or https,
 * with `{z}`, `{x}` and `{y}` once each, and no other placeholder, so the pages load tiles
 * from exactly one origin (the one the Content-Security-Policy allows).
 */
const tileTemplate: Parser<string> = (raw) => {
  for (const p of ['{z}', '{x}', '{y}']) {
    if (raw.split(p).length !== 2) throw new ConfigValueError(`must contain ${p} exactly once, got "${raw}"`);
  }
  const rest = raw.replace('{z}', '0').replace('{x}', '0').replace('{y}', '0');
  if (/[{}]/.test(rest)) throw new ConfigValueError(`may hold only {z}, {x} and {y} as placeholders, got "${raw}"`);
  url('http:', 'https:')(rest);
  return raw;
};

const logLevel: Parser<string> = (raw) => {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(raw)) throw new ConfigValueError(`must be one of ${levels.join(', ')}, got "${raw}"`);
  return raw;
};

const v = <T>(def: T | undefined, parse: Parser<T>, doc: string): Variable<T> => ({ def, parse, doc });
const MIN = 60_000;
const SEC = 1000;

/** Every environment variable the server reads. */
export const VARIABLES = {
  PORT: v(8080, int(0, 65535), 'TCP port of the HTTP and WebSocket listener (0 picks a free one).'),
  HOST: v('127.0.0.1', text, 'Address to listen on; 0.0.0.0 for every interface.'),
  TRACKER_JWT_SECRET: v<string>(
    undefined,
    text,
    'HS256 secret that signs every token (at least 32 characters). Required.',
  ),
  TRACKER_INSECURE_DEV: v(
    false,
    flag,
    `Development only: run without TRACKER_JWT_SECRET, using the public secret "${INSECURE_DEV_SECRET}".`,
  ),
  DATA_DIR: v('./data', text, "The node's local journal, spool and embedded archive; two nodes never share one."),
  TLS_CERT_FILE: v<string>(
    undefined,
    text,
    'PEM certificate (chain) file; with TLS_KEY_FILE the node serves wss:// and https:// itself (TLS 1.2+).',
  ),
  TLS_KEY_FILE: v<string>(undefined, text, 'PEM private key file for TLS_CERT_FILE.'),
  TLS_KEY_PASSPHRASE: v<string>(undefined, text, 'Passphrase of TLS_KEY_FILE when it is encrypted.'),
  REDIS_URL: v<string>(undefined, url('redis:', 'rediss:'), 'Shared state across nodes; unset: in-process state.'),
  REDIS_SENTINELS: v<{ host: string; port: number }[]>(
    undefined,
    hostPorts,
    'Redis Sentinel addresses (host:port,host:port): shared state on the primary they monitor, followed across failovers. Needs REDIS_SENTINEL_NAME; excludes REDIS_URL.',
  ),
  REDIS_SENTINEL_NAME: v<string>(
    undefined,
    text,
    'Name of the primary the sentinels monitor (their `sentinel monitor <name>`).',
  ),
  REDIS_PASSWORD: v<string>(
    undefined,
    text,
    'Password of the Redis data nodes when REDIS_SENTINELS is used (REDIS_URL carries its own).',
  ),
  CLICKHOUSE_URL: v<string>(
    undefined,
    url('http:', 'https:'),
    'ClickHouse server for the archive (HTTP interface); unset: embedded chDB in DATA_DIR.',
  ),
  LOG_LEVEL: v('info', logLevel, 'pino level: fatal, error, warn, info, debug, trace or silent.'),

  RATE_LIMIT_PER_SEC: v(50, num(0.1, 1e6), 'Messages per second a connection may send on average.'),
  RATE_LIMIT_BURST: v(100, int(1, 1e6), 'Messages a connection may send at once before the rate applies.'),
  RATE_LIMIT_DISCONNECT_AFTER: v(
    200,
    int(1, 1e6),
    'Rate-limited messages in a row after which the connection is closed with 1008.',
  ),
  GARBAGE_DISCONNECT_AFTER: v(
    20,
    int(1, 1e6),
    'Undecodable frames in a row after which the connection is closed with 1008.',
  ),
  MAX_CONNECTIONS: v(
    18_000,
    int(1, 1e7),
    'Open WebSocket connections past which new upgrades get 503; open ones keep working (keep it under the open-files limit).',
  ),
  MAX_CONNECTIONS_PER_ADDRESS: v(
    10_000,
    int(1, 1e7),
    'Open WebSocket connections one source address may hold; past it upgrades get 429 (behind a proxy every client shares its address).',
  ),
  UPGRADE_RATE_PER_SEC: v(1000, num(0.01, 1e6), 'WebSocket upgrade attempts per second one source address may make.'),
  UPGRADE_BURST: v(
    10_000,
    int(1, 1e7),
    'Upgrade attempts one source address may make at once before the rate applies.',
  ),
  SAFETY_MAX_BUFFERED_BYTES: v(
    1024 * 1024,
    int(1024, 1 << 30),
    'Bytes a safety console may leave unread before it is dropped with close code 4002.',
  ),
  IDLE_TIMEOUT_SEC: v(120, int(8, 960), 'WebSocket idle timeout; the server pings idle clients before it.'),
  SHUTDOWN_TIMEOUT_MS: v(10_000, int(100, 600_000), 'Longest a graceful shutdown may take before the process exits.'),
  MAX_HTTP_BODY_BYTES: v(64 * 1024, int(1024, 16 << 20), 'Largest HTTP request body accepted.'),

  GEOFENCE_RADIUS_M: v(50, num(1, MAX_RADIUS_M), 'Check-in radius around the customer when an order gives none.'),
  MAX_ACCURACY_M: v(
    200,
    num(1, 100_000),
    'Fixes less accurate than this are archived but decide no geofence or alert.',
  ),
  GEOFENCE_EXIT_DWELL_MS: v(
    2 * MIN,
    int(0, 24 * 60 * MIN),
    'geofence_exit also fires when the technician stays outside this long (besides two fixes in a row).',
  ),
  LATE_DEPARTURE_MS: v(
    15 * MIN,
    int(0, 24 * 60 * MIN),
    'late_departure: order still assigned this long after scheduledAt.',
  ),
  LATE_ARRIVAL_MS: v(15 * MIN, int(0, 24 * 60 * MIN), 'late_arrival: not arrived this long after scheduledAt.'),
  TRAVEL_SPEED_MPS: v(
    8.3,
    num(0.1, 100),
    'Travel speed of straight-line ETAs: the late-arrival prediction, and the customer link without ROUTER_URL.',
  ),
  OVERTIME_FACTOR: v(1.5, num(1, 100), 'overtime: in_service longer than durationMin times this.'),
  OFFLINE_MS: v(5 * MIN, int(1000, 24 * 60 * MIN), 'offline: no ping for this long with an active order.'),
  IMPLAUSIBLE_SPEED_MPS: v(70, num(1, 10_000), 'implausible_move: two pings imply a speed above this.'),
  SOS_LEVEL2_MS: v(60 * SEC, int(0, 24 * 60 * MIN), 'Unacknowledged SOS rises to level 2 after this.'),
  SOS_LEVEL3_MS: v(5 * MIN, int(0, 24 * 60 * MIN), 'Unacknowledged SOS rises to level 3 after this.'),
  SOS_SLA_MS: v(15 * MIN, int(0, 24 * 60 * MIN), 'Unacknowledged SOS is flagged detail.slaBreached after this.'),
  PASSIVATE_AFTER_MS: v(
    10 * MIN,
    int(1000, 24 * 60 * MIN),
    'An idle technician actor is stopped after this (state kept).',
  ),

  ARCHIVE_BATCH_ROWS: v(10_000, int(1, 1_000_000), 'Rows per archive insert at most.'),
  ARCHIVE_BATCH_MS: v(1000, int(10, 600_000), 'Longest a spooled row waits before an insert is made.'),
  SPOOL_MAX_BYTES: v(
    1024 ** 3,
    int(1024 * 1024, 2 ** 50),
    'Disk budget of the archive spool; past it new data is refused.',
  ),
  RETENTION_DAYS: v(30, int(1, 36_500), 'Archived days kept; older day partitions are dropped.'),
  JOURNAL_RESERVE_BYTES: v(
    4 * 1024 * 1024,
    int(0, 1 << 30),
    'Disk space held in DATA_DIR for safety writes (SOS, alerts, acks) when the disk is full; 0: none.',
  ),
  TOKEN_MAX_LIFETIME_SEC: v(
    30 * 24 * 3600,
    int(60, 10 * 365 * 24 * 3600),
    'Longest a token may live: exp at most this many seconds after iat (after now when it has no iat); longer-lived tokens get 401.',
  ),
  MAX_FIXES_IN_FLIGHT: v(
    2000,
    int(1, 10_000_000),
    'Ceiling of the pings and batches a node may have unanswered at once; below it the limit follows the delivery rate (SHED_TARGET_MS). Past the limit a new ping or batch gets rate_limited with retryMs at once (SOS, check-ins and transitions never).',
  ),
  SHED_MIN_IN_FLIGHT: v(
    200,
    int(1, 10_000_000),
    'Floor of the adaptive limit of pings and batches in flight: the node always takes at least this many at once.',
  ),
  SHED_TARGET_MS: v(
    250,
    int(1, 60_000),
    'Answer time a saturated node may take for a ping or batch it admitted: the in-flight limit is the best delivery rate of the last second times this.',
  ),
  SHED_INTERVAL_MS: v(100, int(10, 60_000), 'How often the load-shedding limit is recomputed.'),
  FIX_LANE_SLICE_MS: v(
    4,
    int(0, 1000),
    'Shortest slice the node works on queued pings and batches in one event-loop turn (a slice lasts as long as the rest of the loop took, at most 50 ms, and only this long while an SOS or an operator answer is under way), so SOS, check-ins and transitions are handled on arrival, ahead of pings; 0 handles every frame on arrival.',
  ),
  BATCH_POINTS_PER_SEC: v(
    1000,
    num(1, 1e7),
    'batch points per second one connection may send on average; past it a batch gets rate_limited with retryMs.',
  ),
  BATCH_POINTS_BURST: v(
    10_000,
    int(MAX_BATCH_POINTS, 1e8),
    `batch points one connection may send at once before BATCH_POINTS_PER_SEC applies (at least ${MAX_BATCH_POINTS}, one full batch).`,
  ),
  SAFETY_MAX_CONNECTIONS_PER_OPERATOR: v(
    5,
    int(1, 100_000),
    'Console connections one safety token sub may hold on this node; the next is closed with 4004.',
  ),

  SHARE_LINGER_MIN: v(
    30,
    num(0, 7 * 24 * 60),
    'A customer tracking link keeps answering this many minutes after its order is completed or cancelled, then 410.',
  ),
  SHARE_LINK_HOURS: v(
    24,
    num(0.001, 366 * 24),
    'Longest a customer tracking link lives after it is made (its expiresAt), whatever the order does.',
  ),
  SHARE_BASE_URL: v<string>(
    undefined,
    url('http:', 'https:'),
    "Public base of the customer links (https://track.example.com); unset: http://<the request's Host>.",
  ),
  SHARE_MAX_STREAMS: v(
    20_000,
    int(1, 10_000_000),
    'Open customer streams (/t/<token>/stream) this node serves at once; past it a new stream gets 503.',
  ),
  SHARE_MAX_STREAMS_PER_ORDER: v(
    20,
    int(1, 100_000),
    'Open customer streams of one order this node serves at once; past it a new one gets 429.',
  ),
  APPROACH_SEC: v(300, num(0, 24 * 3600), 'order.approaching fires once per order when the ETA falls under this.'),
  APPROACH_M: v(
    500,
    num(0, 1_000_000),
    'order.approaching also fires once the distance to the customer falls under this many metres.',
  ),
  ROUTER_URL: v<string>(
    undefined,
    url('http:', 'https:'),
    'OSRM HTTP API for ETAs (its /route/v1/driving); unset: straight line at TRAVEL_SPEED_MPS.',
  ),
  ROUTER_TIMEOUT_MS: v(
    1000,
    int(10, 60_000),
    'Longest an ETA waits for ROUTER_URL before it falls back to the straight line (counted in metrics).',
  ),
  MAP_TILE_URL: v<string>(
    undefined,
    tileTemplate,
    'XYZ raster tile template (https://tiles.example.org/{z}/{x}/{y}.png): the console and the customer page draw real streets from it and their CSP allows its origin; unset: no tiles, nothing loaded from elsewhere.',
  ),
  MAP_TILE_ATTRIBUTION: v<string>(
    undefined,
    text,
    'Attribution shown on maps drawn with MAP_TILE_URL (e.g. "© OpenStreetMap contributors").',
  ),
  WEBHOOK_ALLOW_PRIVATE: v(
    false,
    flag,
    'Allow webhook URLs that resolve to loopback, private, link-local or other non-public addresses (tests, private networks); off: such URLs get 400 and are refused at delivery.',
  ),
  WEBHOOK_MAX_IN_FLIGHT: v(8, int(1, 1000), 'Deliveries one webhook may have unanswered at once.'),
  WEBHOOK_MAX_PENDING_IN_MEMORY: v(
    10_000,
    int(1, 10_000_000),
    'Pending events one webhook holds in memory at most; the others stay in the event log (or the shared stream) and are read back from there, in order, as the backlog drains.',
  ),
  WEBHOOK_THREAD_NICE: v(
    10,
    int(0, 19),
    "Nice value of the thread that sends webhooks (Linux): it yields the CPU to the main thread, so deliveries wait rather than device acks when the cores are busy. 0: the main thread's priority.",
  ),
  WEBHOOK_TIMEOUT_MS: v(10_000, int(100, 600_000), 'A delivery not answered 2xx within this fails and is retried.'),
  WEBHOOK_RETRY_BASE_MS: v(
    1000,
    int(1, 24 * 60 * MIN),
    'First retry delay of a failed delivery; each further retry doubles it (with jitter: 50-100% of it).',
  ),
  WEBHOOK_RETRY_MAX_MS: v(60 * MIN, int(1, 24 * 60 * MIN), 'Longest delay between two delivery attempts.'),
  WEBHOOK_RETRY_FOR_MS: v(
    24 * 60 * MIN,
    int(1, 30 * 24 * 60 * MIN),
    'How long a failing event is retried after its first attempt before it is dead (listed, redeliverable).',
  ),
  EVENTS_RELAY_WAIT_MS: v(
    1000,
    int(0, 60_000),
    'Several nodes: longest an answer to a change that made events waits for them to reach the shared Redis stream while Redis does not answer (then it is answered, and answers stop waiting until the relay caught up); 0: answers never wait for the stream.',
  ),
  EVENTS_RETENTION_HOURS: v(
    72,
    int(1, 24 * 365),
    'Events are kept (GET /v1/events, the SSE stream) at least this long, and as long as a webhook has not settled them.',
  ),
} as const;

type Vars = typeof VARIABLES;
type ValueOf<K extends keyof Vars> = Vars[K] extends Variable<infer T> ? T : never;
/** Variables with a default are always present; the others may be undefined. */
export type Config = {
  readonly [K in keyof Vars]: Vars[K]['def'] extends undefined ? ValueOf<K> | undefined : ValueOf<K>;
} & {
  /** The secret actually in use: TRACKER_JWT_SECRET or, in insecure dev mode, INSECURE_DEV_SECRET. */
  readonly jwtSecret: string;
};

/** Thrown by `loadConfig` with one line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates every variable of `VARIABLES` from `env`; throws `ConfigError` listing all problems. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(VARIABLES) as [string, Variable<unknown>][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      out[name] = variable.def;
      continue;
    }
    try {
      out[name] = variable.parse(raw);
    } catch (err) {
      if (!(err instanceof ConfigValueError)) throw err;
      problems.push(`${name} ${err.message}`);
    }
  }
  const secret = out.TRACKER_JWT_SECRET as string | undefined;
  if (secret !== undefined && secret.length < 32) {
    problems.push('TRACKER_JWT_SECRET must be at least 32 characters (HS256 wants 256 bits of key)');
  }
  if (secret === undefined && out.TRACKER_INSECURE_DEV !== true) {
    problems.push('TRACKER_JWT_SECRET is required (or set TRACKER_INSECURE_DEV=1 for local development only)');
  }
  const l2 = out.SOS_LEVEL2_MS as number;
  const l3 = out.SOS_LEVEL3_MS as number;
  if (l2 !== undefined && l3 !== undefined && l3 < l2) {
    problems.push(`SOS_LEVEL3_MS (${l3}) must not be less than SOS_LEVEL2_MS (${l2})`);
  }
  const sentinels = out.REDIS_SENTINELS !== undefined;
  if (sentinels && out.REDIS_URL !== undefined) problems.push('set either REDIS_URL or REDIS_SENTINELS, not both');
  if (sentinels !== (out.REDIS_SENTINEL_NAME !== undefined)) {
    problems.push('REDIS_SENTINELS and REDIS_SENTINEL_NAME go together: set both or neither');
  }
  const base = out.WEBHOOK_RETRY_BASE_MS as number;
  const max = out.WEBHOOK_RETRY_MAX_MS as number;
  if (base !== undefined && max !== undefined && max < base) {
    problems.push(`WEBHOOK_RETRY_MAX_MS (${max}) must not be less than WEBHOOK_RETRY_BASE_MS (${base})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...out, jwtSecret: secret ?? INSECURE_DEV_SECRET } as Config;
}

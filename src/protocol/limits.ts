/**
 * Every limit of the wire protocol and the HTTP API, defined once. The schemas
 * (`schemas.ts`), the route checks, the typed client and the README all take their
 * numbers from here; nothing else may write them down again. Plain constants with no
 * dependency, so the browser console can import them too.
 */

/** Largest frame the server reads, per PROTOCOL.md. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Most points in one `batch` message, per PROTOCOL.md. */
export const MAX_BATCH_POINTS = 1000;
/** How far in the future a point's `ts` may be before it is refused, per PROTOCOL.md. */
export const MAX_FUTURE_MS = 5 * 60 * 1000;

/** Longest id (orders, technicians, alerts, incidents, token `sub`). */
export const ID_MAX_LENGTH = 128;
/** Ids: short, URL- and log-safe. */
export const ID_PATTERN = `^[A-Za-z0-9._:@-]{1,${ID_MAX_LENGTH}}$`;
/** How an id is described in error messages. */
export const ID_RULE = `1-${ID_MAX_LENGTH} letters, digits or ._:@-`;

/** Longest note of an `sos` or a `resolve`, in characters. */
export const NOTE_MAX_LENGTH = 1000;

/** Largest `ts` (ms since the epoch): the end of the JavaScript date range. */
export const TS_MAX = 8.64e15;
/** Largest `acc` of a fix, metres. */
export const ACCURACY_MAX_M = 1e7;
/** Largest `spd` of a fix, metres per second. */
export const SPEED_MAX_MPS = 1e5;
/** Largest `hdg` of a fix, degrees. */
export const HEADING_MAX_DEG = 360;
/** Largest `bat` of a ping, percent. */
export const BATTERY_MAX_PCT = 100;

/** Largest radius anywhere in the API, metres: an order's check-in circle and a nearby search. */
export const MAX_RADIUS_M = 100_000;
/** Longest an order may last, minutes (a week). */
export const ORDER_MAX_DURATION_MIN = 7 * 24 * 60;
/** Fewest and most `[lon, lat]` pairs of an order's check-in polygon. */
export const POLYGON_MIN_POINTS = 3;
export const POLYGON_MAX_POINTS = 1000;

/** Default radius of `GET /v1/nearby`, metres. */
export const NEARBY_DEFAULT_RADIUS_M = 5000;
/** Largest radius of `GET /v1/nearby`, metres. */
export const NEARBY_MAX_RADIUS_M = MAX_RADIUS_M;
/** Default and largest page of `GET /v1/technicians/:id/track`, points (PROTOCOL.md, "Track pages"). */
export const TRACK_PAGE_DEFAULT = 5000;
export const TRACK_PAGE_MAX = 10_000;

/** Default and largest page of `GET /v1/events`, events. */
export const EVENTS_PAGE_DEFAULT = 100;
export const EVENTS_PAGE_MAX = 1000;
/** Most webhooks a server keeps (each has its own queues, timers and counters). */
export const WEBHOOKS_MAX = 100;
/** Longest webhook URL, characters. */
export const WEBHOOK_URL_MAX_LENGTH = 2048;
/** Shortest and longest webhook secret a client may choose, characters. */
export const WEBHOOK_SECRET_MIN_LENGTH = 16;
export const WEBHOOK_SECRET_MAX_LENGTH = 256;

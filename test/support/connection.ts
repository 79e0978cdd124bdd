/** The per-connection state uWS would keep for a socket, for gateway tests on a fake socket. */

import { RateLimiter } from '../../src/gateway/rate-limit.js';
import type { Connection } from '../../src/gateway/socket-endpoint.js';
import type { Role } from '../../src/protocol.js';

/** An open connection of `sub` with `role` on `endpoint`, its token valid for a minute, `perSec` messages a second. */
export function testConnection(sub: string, role: Role, endpoint: Connection['endpoint'], perSec = 1): Connection {
  return {
    principal: { sub, role, expiresAt: Date.now() + 60_000 },
    endpoint,
    remote: '127.0.0.1',
    openedAt: Date.now(),
    limiter: new RateLimiter(perSec, perSec, Date.now()),
    garbageInARow: 0,
    messages: 0,
    closed: false,
  };
}

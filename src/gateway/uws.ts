/**
 * Loads the native uWebSockets.js build directly.
 *
 * The package's own loader silently falls back to a slow pure-JS copy when the native
 * binary does not load (wrong glibc, wrong Node ABI). A tracking server on that fallback
 * would pass every test and then collapse under load, so we load the binary ourselves and
 * refuse to start without it.
 */

import type * as UwsModule from 'uWebSockets.js';
import { createRequire } from 'node:module';

export type Uws = typeof UwsModule;
export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket_context_t,
  WebSocket,
  WebSocketBehavior,
} from 'uWebSockets.js';

/** Thrown when the native build is missing or does not load on this machine. */
export class NativeUwsError extends Error {
  override name = 'NativeUwsError';
}

const require = createRequire(import.meta.url);

/** The binary's path inside the package, by platform, CPU and Node ABI. */
export function nativeBinaryPath(): string {
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  return `uWebSockets.js/binaries/${file}`;
}

let loaded: Uws | undefined;

/**
 * The native uWS module; throws `NativeUwsError` naming the binary and the cause if it
 * cannot load. `path` is for tests that prove the refusal.
 */
export function loadUws(path = nativeBinaryPath()): Uws {
  if (loaded && path === nativeBinaryPath()) return loaded;
  try {
    loaded = require(path) as Uws;
  } catch (err) {
    throw new NativeUwsError(
      `the native uWebSockets.js build ${path} did not load (${(err as Error).message}); ` +
        'fieldtrack refuses to run on the slow pure-JS fallback. Install dependencies with npm on this ' +
        `machine (Node ${process.version}, ABI ${process.versions.modules}).`,
    );
  }
  return loaded;
}

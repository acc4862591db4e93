/**
 * Loads uWebSockets.js and refuses to run on its slow fallback. The republished
 * package silently falls back to a `ws`-based implementation when no native binary
 * matches this Node (docs/architecture.md, "Facts about this uWS build"): a gateway
 * on the fallback would "work" at a tenth
 * of the speed, so we fail loudly at boot instead.
 */
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';

/** The native binding's app has close(), which the shipped .d.ts leaves out. */
export type App = UWS.TemplatedApp & { close(): void };

const require = createRequire(import.meta.url);

/** Thrown when the native uWS binding cannot be used. */
export class NativeUwsError extends Error {
  readonly code = 'UWS_NATIVE_MISSING';
}

/** Returns the native uWS module or throws a NativeUwsError explaining why not. */
export function loadUws(): typeof UWS {
  if (process.env.UWS_USE_FALLBACK) {
    throw new NativeUwsError('UWS_USE_FALLBACK is set: unset it, Shardcast needs the native uWebSockets.js binding');
  }
  if (process.versions.modules !== '115') {
    throw new NativeUwsError(
      `uWebSockets.js ships binaries for Node 20 (ABI 115) here, this is Node ${process.version} (ABI ${process.versions.modules}): run Shardcast on Node 20`,
    );
  }
  const uws = require('uWebSockets.js') as typeof UWS;
  if (typeof uws.SSLApp !== 'function') {
    throw new NativeUwsError('uWebSockets.js loaded its JavaScript fallback, not the native binding: reinstall dependencies with `npm ci`');
  }
  return uws;
}

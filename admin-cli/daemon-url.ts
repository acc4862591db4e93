/** Where shardcast-admin finds the daemon: `SHARDCAST_URL`, and the WebSocket URL derived from it. */
import { CliError } from './cli-errors.js';

/** Used when SHARDCAST_URL is not set. */
export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:8080';

/** The daemon's base HTTP URL (no trailing slash; a path prefix, e.g. behind a proxy, is kept). */
export function daemonHttpUrl(env: Readonly<Record<string, string | undefined>>): string {
  const raw = env.SHARDCAST_URL?.trim() || DEFAULT_DAEMON_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`SHARDCAST_URL is not a URL: ${JSON.stringify(raw)} (expected e.g. ${DEFAULT_DAEMON_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`SHARDCAST_URL must start with http:// or https://, got ${JSON.stringify(raw)}`);
  }
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

/** The daemon's WebSocket endpoint for a base HTTP URL: http→ws, https→wss, path /v1/ws. */
export function websocketUrlOf(httpUrl: string): string {
  return `${httpUrl.replace(/^http/, 'ws')}/v1/ws`;
}

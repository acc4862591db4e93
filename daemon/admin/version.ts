/** The daemon's version, from the package.json it ships with (read once). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** `version` of the shardcast package.json next to the code (dist/ or the sources), or "unknown". */
export function daemonVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  // dist/daemon/admin/version.js and daemon/admin/version.ts sit at different depths.
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'shardcast' && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      // Not at this depth: try the next.
    }
  }
  return cached;
}

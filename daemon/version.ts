/**
 * The version of this Shardcast build: the `version` of the package.json found by
 * walking up from this file (dist/daemon/version.js in an install, daemon/version.ts
 * when run from source), so `--version` needs no build step to stay right.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'shardcast';

/** `shardcast`'s package version, e.g. "0.1.0"; "unknown" if its package.json cannot be found. */
export function shardcastVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // An unreadable package.json on the way up is not ours: keep looking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

/** The one line `--version` prints: product, version and the Node.js running it. */
export function versionLine(program: string): string {
  return `${program} ${shardcastVersion()} (node ${process.versions.node})`;
}

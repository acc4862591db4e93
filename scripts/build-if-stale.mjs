#!/usr/bin/env node
// `npm start` runs this before the daemon: it compiles the TypeScript (tsc) only
// when dist/ is missing or older than a source file, so a start after a build
// costs no compile. The record of a build is dist/.build-stamp, written after a
// successful compile only (here, and by `npm run build`): a failed build leaves
// dist/ stale, so the next start compiles again.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', '.build-stamp');
/** What tsconfig.json compiles, and how. */
const SOURCE_DIRS = ['daemon', 'protocol', 'admin-cli', 'bench'];
const SOURCE_FILES = ['tsconfig.json'];

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return path.endsWith('.ts') || SOURCE_FILES.some((f) => path.endsWith(f)) ? st.mtimeMs : 0;
  let max = 0;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules') continue;
    max = Math.max(max, newest(join(path, name)));
  }
  return max;
}

const sources = Math.max(...SOURCE_DIRS.map((d) => newest(join(root, d))), ...SOURCE_FILES.map((f) => newest(join(root, f))));
const built = existsSync(stamp) && existsSync(join(root, 'dist', 'daemon', 'main.js')) ? statSync(stamp).mtimeMs : 0;
if (built < sources) {
  process.stderr.write(built === 0 ? 'shardcast: no build yet, compiling (once)…\n' : 'shardcast: sources changed since the last build, compiling…\n');
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  } catch {
    process.stderr.write('shardcast: the TypeScript build failed (errors above); not starting\n');
    process.exit(1);
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

// Builds the package into dist/: the ESM modules and their types (tsc), for Node and
// for bundlers, and one minified ESM file with msgpackr inside for pages without a
// bundler (esbuild). Run from anywhere: `node protocol/client/build.mjs`.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
rmSync(join(here, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
await build({
  entryPoints: [join(here, 'index.ts')],
  outfile: join(here, 'dist', 'shardcast-client.browser.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});

/**
 * soketi lives in bench/soketi with its own package.json (its dependency tree is
 * large and pins a uWebSockets.js from GitHub, which an npm `overrides` entry maps
 * to the same native republish the project uses). It is installed the first time
 * the soketi target is asked for.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Path of soketi's CLI entry in the bench install. */
export function soketiServerScript(root: string): string {
  return join(root, 'bench/soketi/node_modules/@soketi/soketi/bin/server.js');
}

/** Installs bench/soketi's dependencies unless they are there; npm's output goes to stderr. */
export async function ensureSoketi(root: string): Promise<void> {
  if (existsSync(soketiServerScript(root))) return;
  const prefix = join(root, 'bench/soketi');
  process.stderr.write(`bench: installing soketi into ${prefix} (first use only)…\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(npm, ['install', '--prefix', prefix, '--no-audit', '--no-fund'], {
      stdio: ['ignore', process.stderr, process.stderr],
    });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0 || !existsSync(soketiServerScript(root))) {
    throw new Error(`bench: \`npm install --prefix ${prefix}\` failed (exit ${code}); run it by hand to see why`);
  }
}

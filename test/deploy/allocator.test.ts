// The malloc settings of daemon/allocator.ts reach the daemon however it is started
// as documented: `npm start` (its script, run by sh as npm runs it) and the image's
// Dockerfile set the same values, and a value already in the environment wins.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOCATOR_ENV, allocatorEnv, missingAllocatorSettings, withAllocatorEnv } from '../../daemon/allocator.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;

/** The environment `npm start` gives the daemon, from `env`: its script with the daemon swapped for a print of the environment. */
function startEnv(env: Record<string, string>): Record<string, string> {
  const daemon = 'node dist/daemon/main.js';
  const build = 'node scripts/build-if-stale.mjs && ';
  if (!start.startsWith(build) || !start.endsWith(daemon)) throw new Error(`unexpected start script: ${start}`);
  const script = start.slice(build.length, -daemon.length) + `"${process.execPath}" -e "process.stdout.write(JSON.stringify(process.env))"`;
  return JSON.parse(execFileSync('sh', ['-c', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' })) as Record<string, string>;
}

t.test('npm start sets every allocator setting, and one already set wins', async (t) => {
  const plain = startEnv({});
  for (const [name, value] of Object.entries(ALLOCATOR_ENV)) t.equal(plain[name], value, `${name}=${value}`);
  t.equal(startEnv({ MALLOC_ARENA_MAX: '4' }).MALLOC_ARENA_MAX, '4', 'MALLOC_ARENA_MAX=4 from the caller is kept');
});

t.test('the image sets the same values', async (t) => {
  const dockerfile = readFileSync(join(root, 'deploy/Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
  for (const [name, value] of Object.entries(ALLOCATOR_ENV)) t.match(runtime, new RegExp(`^ENV .*\\b${name}=${value}\\b`, 'm'), `runtime stage: ENV ${name}=${value}`);
});

t.test('helpers: defaults fill gaps, given values win, missing ones are named', async (t) => {
  t.same(withAllocatorEnv({ MALLOC_ARENA_MAX: '8', X: '1' }), { ...ALLOCATOR_ENV, MALLOC_ARENA_MAX: '8', X: '1' });
  t.same(allocatorEnv({ MALLOC_TRIM_THRESHOLD_: '0' }), { ...ALLOCATOR_ENV, MALLOC_TRIM_THRESHOLD_: '0' });
  t.same(missingAllocatorSettings({ MALLOC_ARENA_MAX: '2' }), ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']);
  t.same(missingAllocatorSettings(ALLOCATOR_ENV), []);
});

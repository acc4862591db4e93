// The malloc settings of daemon/allocator.ts reach the daemon however it is started
// as documented: `npm start` (its script, run by sh as npm runs it) and the image's
// Dockerfile set the same values, and a value already in the environment wins; a
// daemon started some other way says which are missing.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
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

t.test('a daemon started without them says which are missing; started with them, it says nothing', async (t) => {
  const main = join(root, 'dist/daemon/main.js');
  const firstLines = (env: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [main], {
        env: { PATH: process.env.PATH, SHARDCAST_DEV_MODE: 'true', SHARDCAST_HOST: '127.0.0.1', SHARDCAST_PORT: '0', SHARDCAST_ADMIN_PORT: '0', SHARDCAST_SHARDS: '1', ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('"msg":"listening"')) child.kill('SIGTERM');
      });
      child.once('exit', () => resolve(out));
      child.once('error', reject);
    });
  const without = await firstLines({});
  const line = without.split('\n').find((l) => l.includes('malloc settings'));
  t.ok(line, 'without them: an info line');
  t.same(line === undefined ? [] : (JSON.parse(line) as { missing: string[] }).missing, Object.keys(ALLOCATOR_ENV), 'naming each missing variable');
  t.notMatch(await firstLines({ ...ALLOCATOR_ENV }), /malloc settings/, 'with them: no such line');
});

t.test('helpers: defaults fill gaps, given values win, missing ones are named', async (t) => {
  t.same(withAllocatorEnv({ MALLOC_ARENA_MAX: '8', X: '1' }), { ...ALLOCATOR_ENV, MALLOC_ARENA_MAX: '8', X: '1' });
  t.same(allocatorEnv({ MALLOC_TRIM_THRESHOLD_: '0' }), { ...ALLOCATOR_ENV, MALLOC_TRIM_THRESHOLD_: '0' });
  t.same(missingAllocatorSettings({ MALLOC_ARENA_MAX: '2' }), ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']);
  t.same(missingAllocatorSettings(ALLOCATOR_ENV), []);
});

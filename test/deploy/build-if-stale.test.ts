// `npm start` compiles only when dist/ is missing or older than the sources
// (scripts/build-if-stale.mjs). Run here on a copy of the layout with a stand-in
// tsc that records each call, so the test takes milliseconds, not a real build.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/build-if-stale.mjs', import.meta.url));
const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { scripts: Record<string, string> };

function layout(): { root: string; calls: () => number; failNext: (fail: boolean) => void; run: () => { status: number | null; stderr: string } } {
  const root = mkdtempSync(join(tmpdir(), 'shardcast-start-'));
  mkdirSync(join(root, 'scripts'));
  copyFileSync(script, join(root, 'scripts/build-if-stale.mjs'));
  for (const dir of ['daemon', 'protocol', 'admin-cli', 'bench']) mkdirSync(join(root, dir));
  writeFileSync(join(root, 'daemon/main.ts'), 'export {};\n');
  writeFileSync(join(root, 'tsconfig.json'), '{}\n');
  writeFileSync(join(root, 'package.json'), '{}\n');
  mkdirSync(join(root, 'node_modules/typescript/bin'), { recursive: true });
  // Stand-in tsc: counts its calls, emits dist/daemon/main.js, or fails when asked.
  writeFileSync(
    join(root, 'node_modules/typescript/bin/tsc'),
    `const fs = require('fs'), path = require('path');
const root = path.join(__dirname, '../../..');
fs.appendFileSync(path.join(root, 'tsc-calls'), 'x');
if (fs.existsSync(path.join(root, 'fail'))) process.exit(2);
fs.mkdirSync(path.join(root, 'dist/daemon'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist/daemon/main.js'), '');
`,
  );
  writeFileSync(join(root, 'node_modules/typescript/package.json'), '{"type":"commonjs"}\n');
  return {
    root,
    calls: () => (existsSync(join(root, 'tsc-calls')) ? readFileSync(join(root, 'tsc-calls'), 'utf8').length : 0),
    failNext: (fail) => (fail ? writeFileSync(join(root, 'fail'), '') : spawnSync('rm', ['-f', join(root, 'fail')])),
    run: () => {
      const r = spawnSync(process.execPath, [join(root, 'scripts/build-if-stale.mjs')], { encoding: 'utf8' });
      return { status: r.status, stderr: r.stderr };
    },
  };
}

t.test('npm start builds only when needed, and `npm run build` counts as a build', async (t) => {
  // `exec`: npm's SIGTERM reaches the daemon itself (a shell would not pass it on);
  // `env` (the malloc settings, test/deploy/allocator) execs node in its turn.
  t.match(pkg.scripts.start, /^node scripts\/build-if-stale\.mjs && exec (env (\w+=\S+ )+)?node dist\/daemon\/main\.js$/);
  t.match(pkg.scripts.build, /writeFileSync\('dist\/\.build-stamp'/, 'npm run build records its build');

  const l = layout();
  const first = l.run();
  t.equal(first.status, 0, first.stderr);
  t.equal(l.calls(), 1, 'no dist yet: compiled');
  t.match(first.stderr, /no build yet/);
  t.equal(l.run().status, 0);
  t.equal(l.calls(), 1, 'nothing changed: not compiled again');

  // An older build: every source is now newer than it.
  const stamp = join(l.root, 'dist/.build-stamp');
  const past = () => new Date(Date.now() - 60_000);
  utimesSync(stamp, past(), past());
  t.equal(l.run().status, 0);
  t.equal(l.calls(), 2, 'a source newer than the build: compiled');
  t.equal(l.run().status, 0);
  t.equal(l.calls(), 2);

  utimesSync(stamp, past(), past());
  l.failNext(true);
  const failed = l.run();
  t.not(failed.status, 0, 'a failed build stops the start');
  t.match(failed.stderr, /build failed/);
  l.failNext(false);
  t.equal(l.run().status, 0);
  t.equal(l.calls(), 4, 'after a failed build the next start compiles again');
});

/**
 * The SDK as a package: `npm pack` gives a tarball holding the built modules, their
 * types and the browser build, nothing that reaches outside the package; installed
 * into a scratch project it works from there against the real daemon, its types
 * check under NodeNext, and the browser build stays under its size cap.
 *
 * Offline: msgpackr and ws are packed from this repository's node_modules and
 * installed beside the SDK (`npm install --offline`), as a registry would serve them.
 * Needs `npm run build` first (the daemon).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { startDaemon } from '../support/daemon-process.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const PACKAGE_DIR = fileURLToPath(new URL('../../protocol/client/', import.meta.url));
const REPO_MODULES = fileURLToPath(new URL('../../node_modules/', import.meta.url));
/** The cap the README promises: centrifuge-js is 23.7 KB gzipped. */
const BROWSER_GZIP_CAP = 20 * 1024;

interface PackResult {
  filename: string;
  files: { path: string }[];
}

async function npmPack(dir: string, dest: string): Promise<PackResult> {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest, dir], { cwd: dest });
  return (JSON.parse(stdout) as PackResult[])[0];
}

const tmp = mkdtempSync(join(tmpdir(), 'shardcast-sdk-pack-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.before(async () => {
  await run(process.execPath, [join(PACKAGE_DIR, 'build.mjs')], { cwd: PACKAGE_DIR });
});

t.test('the tarball holds the built package and nothing from outside it', async (t) => {
  const packed = await npmPack(PACKAGE_DIR, tmp);
  const paths = packed.files.map((f) => f.path).sort();
  for (const needed of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/shardcast-client.browser.js', 'dist/wire/codec.js']) {
    t.ok(paths.includes(needed), `has ${needed}`);
  }
  t.same(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts')), [], 'no TypeScript sources');
  // Every import of every module is relative inside dist/ or the msgpackr dependency.
  const dist = join(PACKAGE_DIR, 'dist');
  const modules = paths.filter((p) => p.startsWith('dist/') && p.endsWith('.js') && p !== 'dist/shardcast-client.browser.js');
  for (const path of modules) {
    const source = readFileSync(join(PACKAGE_DIR, path), 'utf8');
    for (const [, spec] of source.matchAll(/(?:\bfrom\s*|^import\s*)['"]([^'"]+)['"];?$/gm)) {
      const inside = spec.startsWith('.') ? join(dirname(join(PACKAGE_DIR, path)), spec).startsWith(dist) : /^msgpackr(\/|$)/.test(spec);
      if (!inside) t.fail(`${path} imports ${spec}, outside the package`);
    }
  }
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  t.same(Object.keys(manifest.dependencies), ['msgpackr'], 'msgpackr is its only dependency');
});

t.test('installed into a scratch project, it works from there against the daemon', async (t) => {
  const sdk = await npmPack(PACKAGE_DIR, tmp);
  const msgpackr = await npmPack(join(REPO_MODULES, 'msgpackr'), tmp);
  const ws = await npmPack(join(REPO_MODULES, 'ws'), tmp);
  const project = join(tmp, 'scratch');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=optional', ...[msgpackr, ws, sdk].map((p) => join(tmp, p.filename))], { cwd: project });
  t.ok(readdirSync(join(project, 'node_modules', '@shardcast', 'client', 'dist')).includes('index.js'), 'installed');

  const daemon = await startDaemon();
  t.teardown(() => daemon.stop());
  writeFileSync(
    join(project, 'app.mjs'),
    `import { WebSocket } from 'ws';
import { ShardcastClient } from '@shardcast/client';
import * as browserBuild from '@shardcast/client/browser';
const client = new ShardcastClient({ url: process.argv[2], user: 'scratch', WebSocket });
const hello = await client.connect();
const sub = client.join('pack:1');
await sub.ready;
process.stdout.write('joined\\n');
for await (const ev of sub.events()) {
  process.stdout.write(JSON.stringify({ user: hello.user, seq: ev.seq, data: ev.data, browserBuild: typeof browserBuild.ShardcastClient }) + '\\n');
  break;
}
await client.close();
`,
  );
  const child = execFile(process.execPath, ['app.mjs', daemon.ws], { cwd: project, timeout: 60_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('joined\n')) {
      void fetch(`${daemon.http}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: 'pack:1', type: 'q', data: { n: 7 } }) });
    }
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, `the app exits on its own after close() (stderr: ${err})`);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  t.same(line === undefined ? null : JSON.parse(line), { user: 'scratch', seq: 1, data: { n: 7 }, browserBuild: 'function' });

  // Types: the package's `types` resolve under NodeNext and describe the API.
  writeFileSync(
    join(project, 'typed.ts'),
    `import { ShardcastClient, type EventFrame } from '@shardcast/client';
const client = new ShardcastClient({ url: '/v1/ws', token: () => 'jwt' });
const offset: number | null = client.serverTimeOffset();
client.join('a').on('event', (ev: EventFrame) => void ev.seq.toFixed());
// @ts-expect-error: seq is a number
client.join('b').on('event', (ev) => ev.seq.toUpperCase());
export { offset };
`,
  );
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, types: [] }, files: ['typed.ts'] }));
  const tsc = require.resolve('typescript/bin/tsc');
  const typecheck = await run(process.execPath, [tsc, '-p', project], { cwd: project }).then(() => 'ok', (e: { stdout?: string }) => e.stdout ?? String(e));
  t.equal(typecheck, 'ok', 'the scratch project typechecks against the package types');
});

t.test(`the browser build is at most ${BROWSER_GZIP_CAP / 1024} KB minified + gzipped`, async (t) => {
  const bundle = readFileSync(join(PACKAGE_DIR, 'dist', 'shardcast-client.browser.js'));
  const gz = gzipSync(bundle, { level: 9 }).length;
  t.comment(`browser build: ${(bundle.length / 1024).toFixed(1)} KB minified, ${(gz / 1024).toFixed(1)} KB gzipped`);
  t.ok(gz <= BROWSER_GZIP_CAP, `${gz} bytes gzipped ≤ ${BROWSER_GZIP_CAP}`);
  t.notMatch(bundle.toString('utf8'), /require\(["']node:|from ["']node:/, 'no Node built-ins in the browser build');
});

// shardcast-admin checkconfig, genconfig and --version (and the daemon's --version).
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../admin-cli/cli.js';
import { loadConfig } from '../../daemon/config/load.js';
import { SCHEMA, SETTING_KEYS } from '../../daemon/config/schema.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env, signal: new AbortController().signal });
  return { code, out, err: err.join('\n') };
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const dir = mkdtempSync(join(tmpdir(), 'shardcast-config-verbs-'));

t.test('checkconfig reports every problem of a bad file at once, with the key names, and exits non-zero', async (t) => {
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ port: 70000, drainSpreadMs: -1, idleTimeoutS: 5, maxBufferBytes: 'big', devMode: false, portt: 1 }));
  const run = await cli(['checkconfig', '--config', file, '--ignore-env']);
  t.equal(run.code, 1, 'exit 1');
  t.same(run.out, [], 'nothing on stdout');
  for (const what of ['port (SHARDCAST_PORT', 'drainSpreadMs (SHARDCAST_DRAIN_SPREAD_MS', 'idleTimeoutS (SHARDCAST_IDLE_TIMEOUT_S', 'maxBufferBytes (SHARDCAST_MAX_BUFFER_BYTES', 'unknown key "portt"; did you mean "port"', 'apiKey (SHARDCAST_API_KEY) is required', 'adminToken (SHARDCAST_ADMIN_TOKEN) is required', 'jwtSecret (SHARDCAST_JWT_SECRET) or']) {
    t.ok(run.err.includes(what), `names ${what}`);
  }
  t.match(run.err, /invalid configuration \(8 problems\)/);

  const json = await cli(['checkconfig', '--config', file, '--ignore-env', '--json']);
  t.equal(json.code, 1);
  const parsed = JSON.parse(json.out.join('')) as { ok: boolean; problems: string[]; warnings: string[] };
  t.equal(parsed.ok, false);
  t.equal(parsed.problems.length, 8, 'the same eight problems as JSON');
});

t.test('checkconfig reads the environment (which wins over the file) unless told not to, and an env file on top', async (t) => {
  const file = join(dir, 'good.json');
  writeFileSync(file, JSON.stringify({ devMode: true, port: 9000 }));
  const ok = await cli(['checkconfig', '--config', file], { SHARDCAST_URL: 'http://127.0.0.1:1', SHARDCAST_SHARDS: '3' });
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out.join('\n'), /configuration OK: engine standalone \(in memory\), 3 shards, 127\.0\.0\.1:9000, DEV MODE/);
  t.notMatch(ok.err, /SHARDCAST_URL/, "shardcast-admin's own SHARDCAST_URL is not reported as an unknown daemon variable");

  const badEnv = await cli(['checkconfig', '--config', file], { SHARDCAST_SHARDS: 'many', SHARDCAST_PROT: '1' });
  t.equal(badEnv.code, 1);
  t.match(badEnv.err, /shards \(SHARDCAST_SHARDS, from the environment\)/);
  t.match(badEnv.err, /warning: unknown environment variable SHARDCAST_PROT ignored; did you mean SHARDCAST_PORT\?/);
  t.equal((await cli(['checkconfig', '--config', file, '--ignore-env'], { SHARDCAST_SHARDS: 'many' })).code, 0, '--ignore-env leaves the shell out');

  const envFile = join(dir, 'extra.env');
  writeFileSync(envFile, '# comment\n\nSHARDCAST_DEV_MODE=false\nSHARDCAST_API_KEY=0123456789abcdef\nSHARDCAST_JWT_SECRET=0123456789abcdef0123456789abcdef\nSHARDCAST_ADMIN_TOKEN=fedcba9876543210\n');
  const withFile = await cli(['checkconfig', '--config', file, '--env-file', envFile, '--ignore-env']);
  t.equal(withFile.code, 0, withFile.err);
  t.notMatch(withFile.out.join('\n'), /DEV MODE/, 'the env file won over the JSON file');

  writeFileSync(envFile, 'SHARDCAST_PORT=1\nnot a line\n');
  const garbled = await cli(['checkconfig', '--env-file', envFile]);
  t.equal(garbled.code, 1);
  t.match(garbled.err, /extra\.env:2: expected NAME=value/);
  const missing = await cli(['checkconfig', '--env-file', join(dir, 'nope.env')]);
  t.equal(missing.code, 1);
  t.match(missing.err, /cannot read .*nope\.env/);
});

t.test('genconfig writes a commented env file with every setting that checkconfig and the daemon accept', async (t) => {
  const run = await cli(['genconfig']);
  t.equal(run.code, 0, run.err);
  const text = run.out.join('\n') + '\n';
  for (const key of SETTING_KEYS) {
    t.match(text, new RegExp(`^# ${key}: `, 'm'), `${key} documented`, { diagnostic: false });
    t.match(text, new RegExp(`^#${SCHEMA[key].env}=`, 'm'), `${SCHEMA[key].env} present, commented out`, { diagnostic: false });
  }
  // Every setting uncommented at its default must load (in dev mode: no credentials in the file).
  const uncommented = text.replace(/^#(SHARDCAST_[A-Z0-9_]+=)/gm, '$1').replace(/^SHARDCAST_DEV_MODE=false$/m, 'SHARDCAST_DEV_MODE=true');
  const path = join(dir, 'all.env');
  writeFileSync(path, uncommented);
  const checked = await cli(['checkconfig', '--env-file', path, '--ignore-env']);
  t.equal(checked.code, 0, checked.err);
  t.equal(checked.err, '', 'no warnings either');
  const env = Object.fromEntries(uncommented.split('\n').filter((l) => l.startsWith('SHARDCAST_')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const { config } = loadConfig(env);
  for (const key of SETTING_KEYS) {
    if (key === 'devMode' || key === 'host') continue;
    t.same(config[key], SCHEMA[key].defaultValue(), `${key} reads back as its default`, { diagnostic: false });
  }
});

t.test('genconfig --format json writes the JSON file with every key; --out refuses to replace a file without --force', async (t) => {
  const out = join(dir, 'shardcast.json');
  const first = await cli(['genconfig', '--format', 'json', '--out', out]);
  t.equal(first.code, 0, first.err);
  const file = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
  t.same(Object.keys(file).sort(), [...SETTING_KEYS].sort());
  t.equal(file.apiKey, null, 'credentials left unset');
  const again = await cli(['genconfig', '--format', 'json', '--out', out]);
  t.equal(again.code, 1);
  t.match(again.err, /exists; pass --force/);
  t.equal((await cli(['genconfig', '--format', 'json', '--out', out, '--force'])).code, 0);
  t.equal((await cli(['genconfig', '--format', 'yaml'])).code, 2, 'unknown format: usage error');
  const checked = await cli(['checkconfig', '--config', out, '--ignore-env'], {});
  t.equal(checked.code, 1, 'as generated it lacks the credentials a non-dev daemon needs');
  t.match(checked.err, /apiKey \(SHARDCAST_API_KEY\) is required/);
});

t.test('--version on the CLI and on the daemon', async (t) => {
  const run = await cli(['--version']);
  t.equal(run.code, 0);
  t.same(run.out, [`shardcast-admin ${version} (node ${process.versions.node})`]);
  const daemon = spawnSync(process.execPath, [join(root, 'dist/daemon/main.js'), '--version'], { encoding: 'utf8', env: { PATH: process.env.PATH, SHARDCAST_PORT: 'not a port' } });
  t.equal(daemon.status, 0, 'exits 0 without reading the (invalid) configuration');
  t.equal(daemon.stdout, `shardcast ${version} (node ${process.versions.node})\n`);
});

// deploy/shardcast.example.json is what operators copy: it must load through the
// daemon's own loader, show every setting, and keep credentials out of the file.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../daemon/config/load.js';
import { SCHEMA, SETTING_KEYS } from '../../daemon/config/schema.js';

const examplePath = fileURLToPath(new URL('../../deploy/shardcast.example.json', import.meta.url));

/** Credentials come from the environment (a Kubernetes Secret), never the file. */
const SECRETS = {
  SHARDCAST_API_KEY: 'a'.repeat(32),
  SHARDCAST_ADMIN_TOKEN: 'b'.repeat(32),
  SHARDCAST_JWT_SECRET: 'b'.repeat(48),
};

t.test('loads and validates through the daemon config loader', async (t) => {
  const { config, warnings } = loadConfig({ SHARDCAST_CONFIG: examplePath, ...SECRETS });
  t.same(warnings, [], 'no warnings');
  const file = JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
  for (const [key, value] of Object.entries(file)) {
    if (value === null) continue;
    t.same(config[key as keyof typeof config], value, `${key} comes from the file`);
  }
  t.equal(config.devMode, false, 'the example is a production shape');
  t.equal(config.testHooks, false);
});

t.test('shows every setting the daemon takes', async (t) => {
  const file = JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
  t.same(Object.keys(file).sort(), [...SETTING_KEYS].sort(), 'keys match daemon/config/schema.ts');
});

t.test('keeps credentials out of the file', async (t) => {
  const file = JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
  t.equal(file.apiKey, null);
  t.equal(file.jwtSecret, null);
  t.throws(() => loadConfig({ SHARDCAST_CONFIG: examplePath }), ConfigError, 'without the secrets in the environment it refuses to start');
});

t.test('the grace-period inputs match the Kubernetes manifests', async (t) => {
  const file = JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
  const configEnv = readFileSync(fileURLToPath(new URL('../../k8s/base/config.env', import.meta.url)), 'utf8');
  for (const key of ['drainSpreadMs', 'drainTimeoutMs', 'goAwayMaxDelayMs'] as const) {
    const env = SCHEMA[key].env;
    const m = new RegExp(`^${env}=(\\d+)$`, 'm').exec(configEnv);
    t.ok(m, `${env} in k8s/base/config.env`);
    t.equal(Number(m?.[1]), file[key], `${key} agrees with the ConfigMap`);
  }
});

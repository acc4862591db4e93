import t, { type Test } from 'tap';
import { availableParallelism } from 'node:os';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError, loadConfig } from '../../daemon/config/load.js';
import { SCHEMA, SETTING_KEYS, envNameOf } from '../../daemon/config/schema.js';

/** Minimal valid production-like environment. */
const BASE = {
  SHARDCAST_API_KEY: 'k'.repeat(24),
  SHARDCAST_ADMIN_TOKEN: 'a'.repeat(24),
  SHARDCAST_JWT_SECRET: 's'.repeat(40),
};

function configError(t: Test, fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    t.type(err, ConfigError);
    t.equal((err as ConfigError).code, 'CONFIG_INVALID');
    return err as ConfigError;
  }
  t.fail('expected a ConfigError');
  throw new Error('expected a ConfigError');
}

t.test('defaults', async (t) => {
  const { config, warnings } = loadConfig({ ...BASE });
  t.same(warnings, []);
  t.equal(config.port, 8080);
  t.equal(config.host, '0.0.0.0');
  t.equal(config.shards, availableParallelism());
  t.equal(config.devMode, false);
  t.equal(config.idleTimeoutS, 60);
  t.equal(config.drainTimeoutMs, 30000);
  t.equal(config.drainSpreadMs, 5000);
  t.equal(config.goAwayMaxDelayMs, 1000);
  t.equal(config.historySize, 1000);
  t.equal(config.sessionTtlMs, 3_600_000);
  t.equal(config.maxBufferBytes, 1048576);
  t.equal(config.maxFrameBytes, 16384);
  t.equal(config.maxFrameValues, 10000);
  t.equal(config.maxPublishValues, 100000);
  t.equal(config.maxConnections, 100000);
  t.equal(config.maxConnectionsPerUser, 32);
  t.equal(config.rateLimitPerS, 50);
  t.equal(config.rateLimitBurst, 100);
  t.equal(config.userRateLimitPerS, 200);
  t.equal(config.maxSessionsPerConnection, 64);
  t.equal(config.commandJournalSize, 100000);
  t.equal(config.shardYoungGenerationMb, 4);
  t.equal(config.logLevel, 'info');
  t.equal(config.testHooks, false);
  t.same(config.allowedOrigins, []);
  t.same(config.namespaces, []);
  t.same(config.jwtPublicKeys, []);
  t.same(config.jwtKeySet, []);
  t.equal(config.jwtClockSkewS, 30);
  t.equal(config.jwtIssuer, undefined);
  t.ok(Object.isFrozen(config));
  t.same(Object.keys(config).sort(), [...SETTING_KEYS, 'jwtPublicKeys', 'jwtKeySet'].sort());
});

t.test('every env name is SHARDCAST_ + UPPER_SNAKE of its key', async (t) => {
  for (const key of SETTING_KEYS) t.equal(SCHEMA[key].env, envNameOf(key), key);
  t.equal(envNameOf('jwtPublicKeyFile'), 'SHARDCAST_JWT_PUBLIC_KEY_FILE');
  t.equal(envNameOf('idleTimeoutS'), 'SHARDCAST_IDLE_TIMEOUT_S');
});

t.test('outside dev mode an API key, an admin token and a JWT key are required', async (t) => {
  const err = configError(t, () => loadConfig({}));
  t.equal(err.problems.length, 3, 'every problem at once');
  t.match(err.message, /apiKey \(SHARDCAST_API_KEY\) is required/);
  t.match(err.message, /adminToken \(SHARDCAST_ADMIN_TOKEN\) is required unless devMode/);
  t.match(err.message, /jwtSecret \(SHARDCAST_JWT_SECRET\) or jwtPublicKeyFile \(SHARDCAST_JWT_PUBLIC_KEY_FILE\) or jwtJwksFile \(SHARDCAST_JWT_JWKS_FILE\)/);
  t.match(err.message, /SHARDCAST_DEV_MODE=true/);

  const short = configError(t, () => loadConfig({ ...BASE, SHARDCAST_API_KEY: 'short' }));
  t.match(short.message, /apiKey \(SHARDCAST_API_KEY\) is 5 characters long; at least 16/);
  t.notMatch(short.message, /short/, 'never echoes the key');
  const shortToken = configError(t, () => loadConfig({ ...BASE, SHARDCAST_ADMIN_TOKEN: 'tiny' }));
  t.match(shortToken.message, /adminToken \(SHARDCAST_ADMIN_TOKEN\) is 4 characters long; at least 16/);
  t.notMatch(shortToken.message, /tiny/, 'never echoes the token');

  const dev = loadConfig({ SHARDCAST_DEV_MODE: 'yes', SHARDCAST_API_KEY: 'short' });
  t.equal(dev.config.devMode, true);
  t.equal(dev.config.apiKey, 'short');
  t.equal(dev.config.adminToken, undefined, 'dev mode needs no admin token');
});

t.test('the admin listener: 127.0.0.1:9090 by default, a free port when the client port is 0', async (t) => {
  const fixed = loadConfig(BASE).config;
  t.equal(fixed.adminPort, 9090);
  t.equal(fixed.adminHost, '127.0.0.1');
  t.equal(loadConfig({ ...BASE, SHARDCAST_PORT: '0' }).config.adminPort, 0);
  t.equal(loadConfig({ ...BASE, SHARDCAST_PORT: '0', SHARDCAST_ADMIN_PORT: '9191' }).config.adminPort, 9191);
});

t.test('booleans accept true/false/1/0/yes/no', async (t) => {
  for (const [text, value] of [['true', true], ['1', true], ['yes', true], ['YES', true], ['false', false], ['0', false], ['no', false]] as const) {
    t.equal(loadConfig({ ...BASE, SHARDCAST_TEST_HOOKS: text }).config.testHooks, value, text);
  }
  const err = configError(t, () => loadConfig({ ...BASE, SHARDCAST_DEV_MODE: 'maybe' }));
  t.match(err.message, /devMode \(SHARDCAST_DEV_MODE, from the environment\): got "maybe"; must be a boolean/);
});

t.test('every validation error names its key and env var', async (t) => {
  const bad: Record<string, string> = {
    port: '65536',
    host: '\u0001',
    shards: '0',
    devMode: 'on',
    apiKey: 'x\u0001y',
    adminPort: '65536',
    adminHost: '\u0001',
    adminToken: 'x\u0002y',
    jwtSecret: 'a\nb',
    jwtPublicKeyFile: '\u0001',
    jwtJwksFile: '\u0001',
    jwtIssuer: '\u0000',
    jwtAudience: '\u0000',
    jwtClockSkewS: '601',
    allowedOrigins: 'not an origin',
    drainTimeoutMs: '999',
    drainSpreadMs: '600001',
    goAwayMaxDelayMs: '60001',
    historySize: '1000001',
    emptySessionTtlMs: '999',
    maxEmptySessions: '0',
    sessionTtlMs: '12.5',
    maxBufferBytes: '16383',
    maxFrameBytes: '255',
    maxFrameValues: '15',
    maxPublishValues: '0',
    idleTimeoutS: '7',
    maxConnections: '0',
    maxConnectionsPerUser: '-1',
    rateLimitPerS: 'fast',
    rateLimitBurst: '0',
    rateLimitTokenValues: '0',
    userRateLimitPerS: '1000001',
    maxSessionsPerConnection: '0',
    commandJournalSize: '0',
    commandJournalBytes: '1000',
    commandJournalBytesPerUser: '65535',
    commandJournalTakenRetentionMs: '999',
    maxSnapshotKeys: '65536',
    maxReplayBytes: '1023',
    replayBytesPerS: 'lots',
    maxPresenceList: '0',
    presenceLeaseMs: '2999',
    testNetwork: '{"bogus":1}',
    subscriptionLingerMs: '600001',
    streamCheckMs: '3600001',
    replicas: '0',
    redisUrl: 'http://127.0.0.1:6379',
    redisCluster: 'maybe',
    redisPrefix: 'a{b}:',
    amqpUrl: 'http://guest:guest@127.0.0.1:5672',
    amqpExchange: 'amq.events',
    amqpPartitions: '0',
    amqpPrefetch: '70000',
    amqpDeliveryLimit: 'never',
    amqpCommandsExchange: 'amq.commands',
    amqpCommandsFormat: 'xml',
    databaseUrl: 'mysql://root@127.0.0.1/test',
    databaseSchema: 'drop table x',
    commandRetentionHours: '-1',
    shardYoungGenerationMb: '1025',
    logLevel: 'verbose',
    testHooks: '2',
    namespaces: '{}',
  };
  t.same(Object.keys(bad).sort(), [...SETTING_KEYS].sort(), 'a bad value for every setting');
  for (const key of SETTING_KEYS) {
    const env = SCHEMA[key].env;
    const err = configError(t, () => loadConfig({ ...BASE, [env]: bad[key] }));
    t.equal(err.problems.length, 1, `${key}: one problem`);
    t.ok(err.problems[0]!.startsWith(`${key} (${env}`), `${key}: ${err.problems[0]}`);
  }
  const all = configError(t, () => loadConfig({ ...BASE, SHARDCAST_PORT: 'x', SHARDCAST_SHARDS: '999', SHARDCAST_LOG_LEVEL: 'loud' }));
  t.equal(all.problems.length, 3, 'all problems listed at once');
  t.match(all.message, /3 problems/);
});

t.test('range messages say what is allowed', async (t) => {
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_PORT: '70000' })).message, /port .*must be an integer from 0 to 65535/);
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_SHARDS: '257' })).message, /shards .*from 1 to 256/);
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_LOG_LEVEL: 'verbose' })).message, /must be one of fatal, error, warn, info, debug, trace, silent/);
  t.equal(loadConfig({ ...BASE, SHARDCAST_PORT: '0' }).config.port, 0);
  t.equal(loadConfig({ ...BASE, SHARDCAST_LOG_LEVEL: 'DEBUG' }).config.logLevel, 'debug');
});

t.test('idleTimeoutS must be 0 or 8–960', async (t) => {
  for (const bad of ['1', '7', '961', '-1']) {
    const err = configError(t, () => loadConfig({ ...BASE, SHARDCAST_IDLE_TIMEOUT_S: bad }));
    t.match(err.message, /idleTimeoutS \(SHARDCAST_IDLE_TIMEOUT_S.*must be 0 \(off\) or 8–960/, bad);
  }
  for (const good of [0, 8, 960]) {
    t.equal(loadConfig({ ...BASE, SHARDCAST_IDLE_TIMEOUT_S: String(good) }).config.idleTimeoutS, good);
  }
  const file = join(t.testdir({ 'c.json': JSON.stringify({ idleTimeoutS: 5 }) }), 'c.json');
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: file })).message, /idleTimeoutS \(SHARDCAST_IDLE_TIMEOUT_S, from .*c\.json\): got 5/);
});

t.test('config file: values, env wins, strict keys and types', async (t) => {
  const dir = t.testdir({
    'good.json': JSON.stringify({ port: 9000, host: '127.0.0.1', shards: 3, allowedOrigins: ['https://a.example'], devMode: true, apiKey: null }),
    'unknown.json': JSON.stringify({ prot: 9000, maxFrameByte: 1024, jwtPublicKeys: [] }),
    'types.json': JSON.stringify({ port: '9000', devMode: 'yes', allowedOrigins: 'https://a.example' }),
    'broken.json': '{ "port": ',
    'array.json': '[]',
  });
  const good = loadConfig({ SHARDCAST_CONFIG: join(dir, 'good.json') });
  t.equal(good.config.port, 9000);
  t.equal(good.config.host, '127.0.0.1');
  t.equal(good.config.shards, 3);
  t.equal(good.config.apiKey, undefined, 'null means unset');
  t.same(good.config.allowedOrigins, ['https://a.example']);

  const envWins = loadConfig({ SHARDCAST_CONFIG: join(dir, 'good.json'), SHARDCAST_PORT: '9100', SHARDCAST_ALLOWED_ORIGINS: 'https://b.example, https://c.example:8443' });
  t.equal(envWins.config.port, 9100, 'env wins over file');
  t.equal(envWins.config.shards, 3, 'file still applies where env is silent');
  t.same(envWins.config.allowedOrigins, ['https://b.example', 'https://c.example:8443']);

  const argvWins = loadConfig({ SHARDCAST_CONFIG: join(dir, 'missing.json') }, ['--config', join(dir, 'good.json')]);
  t.equal(argvWins.config.port, 9000, '--config wins over SHARDCAST_CONFIG');
  t.equal(loadConfig({}, [`--config=${join(dir, 'good.json')}`]).config.port, 9000);

  const unknown = configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: join(dir, 'unknown.json') }));
  t.equal(unknown.problems.length, 3);
  t.match(unknown.message, /unknown key "prot"; did you mean "port"\?/);
  t.match(unknown.message, /unknown key "maxFrameByte"; did you mean "maxFrameBytes"\?/);
  t.match(unknown.message, /unknown key "jwtPublicKeys"/);

  const types = configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: join(dir, 'types.json') }));
  t.match(types.message, /port \(SHARDCAST_PORT, from .*types\.json\): got "9000"; must be an integer from 0 to 65535 \(a JSON number\)/);
  t.match(types.message, /allowedOrigins \(SHARDCAST_ALLOWED_ORIGINS.*must be a JSON array/);
  t.equal(types.problems.length, 2, 'boolean words are accepted in the file too');

  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: join(dir, 'broken.json') })).message, /broken\.json" \(SHARDCAST_CONFIG\): not valid JSON/);
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: join(dir, 'array.json') })).message, /must hold a JSON object/);
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_CONFIG: join(dir, 'missing.json') })).message, /missing\.json" \(SHARDCAST_CONFIG\): cannot read it: ENOENT/);
});

t.test('unknown SHARDCAST_* variables are warnings; empty ones are unset', async (t) => {
  const { config, warnings } = loadConfig({ ...BASE, SHARDCAST_PROT: '1', SHARDCAST_SOMETHING_ELSE: 'x', SHARDCAST_PORT: '', OTHER: 'x' });
  t.equal(config.port, 8080);
  t.equal(warnings.length, 2);
  t.match(warnings[0], /unknown environment variable SHARDCAST_PROT ignored; did you mean SHARDCAST_PORT\?/);
  t.match(warnings[1], /SHARDCAST_SOMETHING_ELSE ignored$/);
});

t.test('allowedOrigins must be origins as browsers send them', async (t) => {
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_ALLOWED_ORIGINS: 'https://a.example/' })).message, /write "https:\/\/a\.example"/);
  t.match(configError(t, () => loadConfig({ ...BASE, SHARDCAST_ALLOWED_ORIGINS: 'https://a.example,quiz' })).message, /"quiz" is not an origin/);
  t.same(loadConfig({ ...BASE, SHARDCAST_ALLOWED_ORIGINS: ' , ' }).config.allowedOrigins, []);
});

t.test('jwtSecret shorter than 32 bytes is a warning', async (t) => {
  const { warnings } = loadConfig({ ...BASE, SHARDCAST_JWT_SECRET: 'sixteen-bytes-ok' });
  t.equal(warnings.length, 1);
  t.match(warnings[0], /jwtSecret \(SHARDCAST_JWT_SECRET\) is 16 bytes; use at least 32/);
  t.notMatch(warnings[0], /sixteen/, 'never echoes the secret');
});

t.test('testHooks is refused with NODE_ENV=production', async (t) => {
  const err = configError(t, () => loadConfig({ ...BASE, SHARDCAST_TEST_HOOKS: 'true', NODE_ENV: 'production' }));
  t.match(err.message, /testHooks \(SHARDCAST_TEST_HOOKS\) must not be enabled with NODE_ENV=production/);
  t.equal(loadConfig({ ...BASE, SHARDCAST_TEST_HOOKS: 'true', NODE_ENV: 'test' }).config.testHooks, true);
  t.match(loadConfig({ SHARDCAST_DEV_MODE: '1', NODE_ENV: 'production' }).warnings[0], /devMode .* NODE_ENV=production/);
});

t.test('the standalone engine is refused under several replicas, and warned about in Kubernetes', async (t) => {
  const err = configError(t, () => loadConfig({ ...BASE, SHARDCAST_REPLICAS: '3' }));
  t.match(err.message, /replicas \(SHARDCAST_REPLICAS\) is 3, but the standalone engine .* island/);
  t.match(err.message, /Set SHARDCAST_REDIS_URL/);
  t.equal(loadConfig({ ...BASE, SHARDCAST_REPLICAS: '3', SHARDCAST_REDIS_URL: 'redis://127.0.0.1:6379' }).config.replicas, 3, 'fine with Redis');
  t.equal(loadConfig({ ...BASE }).config.replicas, 1);
  const k8s = loadConfig({ ...BASE, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
  t.match(k8s.warnings.join('\n'), /running in Kubernetes with the standalone engine: fine for ONE replica only/);
  t.same(loadConfig({ ...BASE, KUBERNETES_SERVICE_HOST: '10.0.0.1', SHARDCAST_REPLICAS: '1' }).warnings, [], 'an explicit single replica is not warned about');
  t.same(loadConfig({ ...BASE, KUBERNETES_SERVICE_HOST: '10.0.0.1', SHARDCAST_REDIS_URL: 'redis://r:6379' }).warnings, [], 'nor the Redis engine');
});

t.test('jwtPublicKeyFile: parsed at boot, errors name the key', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;
  const dir = t.testdir({
    'keys.pem': `# issuer A\n${pem(rsa.publicKey)}\n# issuer B\n${pem(ec.publicKey)}`,
    'rsa1.pem': rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    'private.pem': pem(ec.publicKey) + (rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    'garbage.pem': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
    'empty.pem': 'nothing here\n',
    'ed.pem': pem(generateKeyPairSync('ed25519').publicKey),
    'p384.pem': pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey),
    'rsa1024.pem': pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey),
  });
  const withFile = (name: string) => ({ SHARDCAST_API_KEY: BASE.SHARDCAST_API_KEY, SHARDCAST_ADMIN_TOKEN: BASE.SHARDCAST_ADMIN_TOKEN, SHARDCAST_JWT_PUBLIC_KEY_FILE: join(dir, name) });

  const { config } = loadConfig(withFile('keys.pem'));
  t.equal(config.jwtPublicKeys.length, 2);
  t.equal(config.jwtPublicKeys[0]!.asymmetricKeyType, 'rsa');
  t.equal(config.jwtPublicKeys[1]!.asymmetricKeyType, 'ec');
  t.equal(loadConfig(withFile('rsa1.pem')).config.jwtPublicKeys.length, 1, 'RSA PUBLIC KEY (pkcs1) accepted');

  const cases: [string, RegExp][] = [
    ['missing.pem', /cannot read ".*missing\.pem": ENOENT/],
    ['private.pem', /PEM block 2 \(PRIVATE KEY\) is a private key/],
    ['garbage.pem', /PEM block 1 \(PUBLIC KEY\) could not be parsed/],
    ['empty.pem', /holds no PEM block/],
    ['ed.pem', /PEM block 1 \(PUBLIC KEY\) is a ed25519 key; only RSA \(RS256\) and EC P-256 \(ES256\)/],
    ['p384.pem', /is a ec secp384r1 key/],
    ['rsa1024.pem', /1024-bit RSA key; RS256 needs at least 2048 bits/],
  ];
  for (const [name, pattern] of cases) {
    const err = configError(t, () => loadConfig(withFile(name)));
    t.match(err.message, /jwtPublicKeyFile \(SHARDCAST_JWT_PUBLIC_KEY_FILE\)/, name);
    t.match(err.message, pattern, name);
  }
});

t.test('jwtJwksFile: a JSON Web Key Set parsed at boot, errors name the setting and the key', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = (k: KeyObject, extra: Record<string, unknown> = {}) => ({ ...k.export({ format: 'jwk' }), ...extra });
  const set = (...keys: unknown[]) => JSON.stringify({ keys });
  const dir = t.testdir({
    'good.json': set(jwk(rsa.publicKey, { kid: 'r1', use: 'sig', alg: 'RS256', x5t: 'ignored' }), jwk(ec.publicKey, { kid: 'e1' }), jwk(rsa.publicKey, { kid: 'enc1', use: 'enc', alg: 'RSA-OAEP' })),
    'not-json.json': '{"keys": [',
    'no-keys.json': '{"kty": "RSA"}',
    'private.json': set(jwk(rsa.publicKey, { kid: 'r1' }), jwk(ec.privateKey, { kid: 'oops' })),
    'p384.json': set(jwk(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, { kid: 'p384' })),
    'oct.json': set({ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }),
    'wrong-alg.json': set(jwk(rsa.publicKey, { kid: 'r1', alg: 'PS256' })),
    'dup.json': set(jwk(rsa.publicKey, { kid: 'same' }), jwk(ec.publicKey, { kid: 'same' })),
    'broken.json': set({ kty: 'RSA', n: 'AQAB', kid: 'broken' }),
    'small.json': set(jwk(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, { kid: 'small' })),
    'only-enc.json': set(jwk(rsa.publicKey, { use: 'enc' })),
  });
  const withFile = (name: string) => ({ SHARDCAST_API_KEY: BASE.SHARDCAST_API_KEY, SHARDCAST_ADMIN_TOKEN: BASE.SHARDCAST_ADMIN_TOKEN, SHARDCAST_JWT_JWKS_FILE: join(dir, name) });

  const { config } = loadConfig(withFile('good.json'));
  t.same(config.jwtKeySet.map((k) => [k.kid, k.key.asymmetricKeyType]), [['r1', 'rsa'], ['e1', 'ec']], 'signature keys kept with their kid; the enc key skipped');
  t.same(config.jwtPublicKeys, [], 'the PEM keys are separate');

  const cases: [string, RegExp][] = [
    ['missing.json', /cannot read ".*missing\.json": ENOENT/],
    ['not-json.json', /is not valid JSON/],
    ['no-keys.json', /is not a JSON Web Key Set: expected \{"keys": \[ … \]\}/],
    ['private.json', /keys\[1\] \(kid "oops"\) holds private key material/],
    ['p384.json', /keys\[0\] \(kid "p384"\) is an EC key on "P-384"; only RSA \(RS256\) and EC P-256 \(ES256\)/],
    ['oct.json', /keys\[0\] \(kid "hmac"\) holds private key material/],
    ['wrong-alg.json', /keys\[0\] \(kid "r1"\) has "alg": "PS256"; a RSA key here verifies RS256 only/],
    ['dup.json', /keys\[1\] \(kid "same"\) repeats the kid of keys\[0\]/],
    ['broken.json', /keys\[0\] \(kid "broken"\) could not be parsed/],
    ['small.json', /keys\[0\] \(kid "small"\) is a 1024-bit RSA key/],
    ['only-enc.json', /holds no signature key/],
  ];
  for (const [name, pattern] of cases) {
    const err = configError(t, () => loadConfig(withFile(name)));
    t.match(err.message, /jwtJwksFile \(SHARDCAST_JWT_JWKS_FILE\)/, `${name}: names the setting`);
    t.match(err.message, pattern, name);
  }
  t.equal(loadConfig({ SHARDCAST_API_KEY: BASE.SHARDCAST_API_KEY, SHARDCAST_ADMIN_TOKEN: BASE.SHARDCAST_ADMIN_TOKEN, SHARDCAST_JWT_JWKS_FILE: join(dir, 'good.json') }).config.jwtSecret, undefined, 'a JWKS alone is enough outside dev mode');
});

t.test('config crosses to a worker thread by structured clone, keys included', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = t.testdir({ 'k.pem': ec.publicKey.export({ type: 'spki', format: 'pem' }) as string });
  const { config } = loadConfig({
    ...BASE,
    SHARDCAST_JWT_PUBLIC_KEY_FILE: join(dir, 'k.pem'),
    SHARDCAST_NAMESPACES: '[{"prefix":"chat:","clientPublish":["host"]}]',
  });
  const copy = structuredClone(config);
  t.same({ ...copy, jwtPublicKeys: [] }, { ...config, jwtPublicKeys: [] });
  t.ok(copy.jwtPublicKeys[0]!.equals(config.jwtPublicKeys[0]!));

  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const { KeyObject } = require('node:crypto');
     const k = workerData.jwtPublicKeys[0];
     parentPort.postMessage({ isKey: k instanceof KeyObject, type: k.asymmetricKeyType, ns: workerData.namespaces });`,
    { eval: true, workerData: config },
  );
  const reply = await new Promise<{ isKey: boolean; type: string; ns: unknown }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.same(reply, { isKey: true, type: 'ec', ns: [{ prefix: 'chat:', clientPublish: ['host'] }] });
});

t.test('dev mode listens on loopback unless a host is set', async (t) => {
  const dev = { SHARDCAST_DEV_MODE: 'true' };
  t.equal(loadConfig(dev).config.host, '127.0.0.1', 'dev mode alone: 127.0.0.1 (anyone reaching the port could be anyone)');
  t.equal(loadConfig({ ...dev, SHARDCAST_HOST: '0.0.0.0' }).config.host, '0.0.0.0', 'an explicit host wins');
  const file = join(t.testdir({ 'c.json': JSON.stringify({ devMode: true, host: '::' }) }), 'c.json');
  t.equal(loadConfig({ SHARDCAST_CONFIG: file }).config.host, '::', 'so does one from the config file');
  t.equal(loadConfig({ ...BASE }).config.host, '0.0.0.0', 'outside dev mode: every interface');
});

t.test('a per-user frame limit below the per-connection one is a warning naming both', async (t) => {
  const { warnings } = loadConfig({ ...BASE, SHARDCAST_RATE_LIMIT_PER_S: '500' });
  t.equal(warnings.length, 1);
  t.match(warnings[0], /userRateLimitPerS \(SHARDCAST_USER_RATE_LIMIT_PER_S\) is 200, below rateLimitPerS \(SHARDCAST_RATE_LIMIT_PER_S\) 500/);
  t.same(loadConfig({ ...BASE, SHARDCAST_RATE_LIMIT_PER_S: '500', SHARDCAST_USER_RATE_LIMIT_PER_S: '1000' }).warnings, [], 'none once both are raised');
});

/**
 * Loading of the daemon configuration at boot: defaults, then the optional JSON file
 * named by SHARDCAST_CONFIG (or `--config <path>`), then SHARDCAST_* environment
 * variables (the environment wins). Everything is validated against schema.ts and
 * every problem is reported at once in one ConfigError, so an operator fixes a
 * broken deployment in one round trip instead of one error per restart.
 *
 * Rules:
 * - File values must have their JSON type (numbers, booleans, arrays); `null` means
 *   "unset" (the default applies). Unknown keys in the file are errors.
 * - Environment values are text: integers in decimal, booleans true/false/1/0/yes/no,
 *   allowedOrigins comma-separated, namespaces as JSON. An empty variable counts as
 *   unset. Unknown SHARDCAST_* variables are warnings, not errors (a newer manifest
 *   may set variables an older image does not know).
 * - jwtPublicKeyFile and jwtJwksFile are read and parsed here (relative paths from
 *   the working directory), so a bad key stops the boot instead of failing every
 *   connection.
 */
import { readFileSync } from 'node:fs';
import { parseJwks, parsePublicKeysPem } from '../auth/public-keys.js';
import {
  CONFIG_FILE_ENV,
  SCHEMA,
  SETTING_KEYS,
  settingByEnv,
  type Config,
  type Setting,
  type Settings,
  type ValueSource,
} from './schema.js';

/** A configuration that cannot be used; `problems` lists every one of them. */
export class ConfigError extends Error {
  /** Stable error code for callers and logs. */
  readonly code = 'CONFIG_INVALID';
  /** One line per problem, each naming the key and its environment variable. */
  readonly problems: readonly string[];
  /** The non-fatal findings gathered on the way (unknown variables, …), for tools that show both (checkconfig). */
  readonly warnings: readonly string[];

  constructor(problems: readonly string[], warnings: readonly string[] = []) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map((p) => `  - ${p}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
    this.warnings = warnings;
  }
}

/** The validated configuration and the warnings to log once a logger exists. */
export interface LoadedConfig {
  readonly config: Config;
  /** Non-fatal findings: unknown SHARDCAST_* variables, a short jwtSecret, … */
  readonly warnings: readonly string[];
}

/** Shortest jwtSecret (bytes) not warned about: HS256 wants a key as long as its hash. */
export const MIN_JWT_SECRET_BYTES = 32;
/** Shortest apiKey accepted outside devMode. */
export const MIN_API_KEY_LENGTH = 16;

/**
 * Loads and validates the configuration. `argv` (e.g. `process.argv.slice(2)`) may
 * carry `--config <path>` or `--config=<path>`, which wins over SHARDCAST_CONFIG;
 * other arguments are ignored. Throws ConfigError listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv?: readonly string[]): LoadedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];

  const filePath = configPathFrom(argv) ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const fileValues = filePath === undefined ? new Map<string, unknown>() : readConfigFile(filePath, problems);

  const envValues = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SHARDCAST_') || name === CONFIG_FILE_ENV) continue;
    const setting = settingByEnv(name);
    if (setting === undefined) {
      const hint = suggest(name, SETTING_KEYS.map((k) => SCHEMA[k].env));
      warnings.push(`unknown environment variable ${name} ignored${hint ? `; did you mean ${hint}?` : ''}`);
      continue;
    }
    const text = nonEmpty(value);
    if (text !== undefined) envValues.set(setting.key, text);
  }

  const settings: Record<string, unknown> = {};
  const invalid = new Set<keyof Settings>();
  const defaulted = new Set<keyof Settings>();
  for (const key of SETTING_KEYS) {
    const setting = SCHEMA[key] as Setting<unknown>;
    let raw: unknown;
    let source: ValueSource;
    if (envValues.has(key)) {
      raw = envValues.get(key);
      source = 'env';
    } else if (fileValues.has(key) && fileValues.get(key) !== null) {
      raw = fileValues.get(key);
      source = 'file';
    } else {
      settings[key] = setting.defaultValue();
      defaulted.add(key);
      continue;
    }
    const parsed = setting.secret && typeof raw !== 'string' ? { ok: false as const, problems: ['must be a string'] } : setting.parse(raw, source);
    if (parsed.ok) {
      settings[key] = parsed.value;
    } else {
      for (const problem of parsed.problems) problems.push(describeProblem(setting, source, filePath, problem));
      invalid.add(key);
    }
  }

  // Dev mode lets anyone connect as anyone: unless told where, it listens on loopback only.
  if (defaulted.has('host') && settings.devMode === true) settings.host = '127.0.0.1';
  // An instance on a kernel-chosen port (tests, several on one machine) gets a free admin port too.
  if (defaulted.has('adminPort') && settings.port === 0) settings.adminPort = 0;
  const s = settings as unknown as Settings;
  checkCrossField(s, invalid, defaulted, env, problems, warnings);
  const jwtPublicKeys = s.jwtPublicKeyFile === undefined ? [] : readKeyFile('jwtPublicKeyFile', s.jwtPublicKeyFile, parsePublicKeysPem, problems);
  const jwtKeySet = s.jwtJwksFile === undefined ? [] : readKeyFile('jwtJwksFile', s.jwtJwksFile, parseJwks, problems);

  if (problems.length > 0) throw new ConfigError(problems, warnings);
  const config: Config = Object.freeze({ ...s, jwtPublicKeys: Object.freeze(jwtPublicKeys), jwtKeySet: Object.freeze(jwtKeySet) });
  return { config, warnings: Object.freeze(warnings) };
}

/** Checks between settings; a setting that already failed on its own is not reported again as missing. */
function checkCrossField(
  s: Settings,
  invalid: ReadonlySet<keyof Settings>,
  defaulted: ReadonlySet<keyof Settings>,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warnings: string[],
): void {
  checkReplicas(s, invalid, defaulted, env, problems, warnings);
  const devHint = `or set ${SCHEMA.devMode.env}=true for local use`;
  if (!s.devMode && !invalid.has('devMode')) {
    if (invalid.has('apiKey')) {
      // Its own problem is already listed.
    } else if (s.apiKey === undefined) {
      problems.push(`apiKey (${SCHEMA.apiKey.env}) is required unless devMode: set it to a random string of ${MIN_API_KEY_LENGTH}+ characters (e.g. \`openssl rand -hex 32\`), ${devHint}`);
    } else if (s.apiKey.length < MIN_API_KEY_LENGTH) {
      problems.push(`apiKey (${SCHEMA.apiKey.env}) is ${s.apiKey.length} characters long; at least ${MIN_API_KEY_LENGTH} required unless devMode (e.g. \`openssl rand -hex 32\`)`);
    }
    if (invalid.has('adminToken')) {
      // Its own problem is already listed.
    } else if (s.adminToken === undefined) {
      problems.push(`adminToken (${SCHEMA.adminToken.env}) is required unless devMode: the admin API (kick, drain, inspection) answers only to it; set it to a random string of ${MIN_API_KEY_LENGTH}+ characters (e.g. \`openssl rand -hex 32\`), ${devHint}`);
    } else if (s.adminToken.length < MIN_API_KEY_LENGTH) {
      problems.push(`adminToken (${SCHEMA.adminToken.env}) is ${s.adminToken.length} characters long; at least ${MIN_API_KEY_LENGTH} required unless devMode (e.g. \`openssl rand -hex 32\`)`);
    }
    const keyless = s.jwtSecret === undefined && s.jwtPublicKeyFile === undefined && s.jwtJwksFile === undefined;
    if (keyless && !invalid.has('jwtSecret') && !invalid.has('jwtPublicKeyFile') && !invalid.has('jwtJwksFile')) {
      problems.push(
        `jwtSecret (${SCHEMA.jwtSecret.env}) or jwtPublicKeyFile (${SCHEMA.jwtPublicKeyFile.env}) or jwtJwksFile (${SCHEMA.jwtJwksFile.env}) is required unless devMode: ` +
          `set a shared HS256 secret of ${MIN_JWT_SECRET_BYTES}+ bytes, a PEM file or a JWKS file of RS256/ES256 public keys, ${devHint}`,
      );
    }
  }
  if (s.jwtSecret !== undefined && Buffer.byteLength(s.jwtSecret) < MIN_JWT_SECRET_BYTES) {
    warnings.push(`jwtSecret (${SCHEMA.jwtSecret.env}) is ${Buffer.byteLength(s.jwtSecret)} bytes; use at least ${MIN_JWT_SECRET_BYTES} random bytes for HS256 (e.g. \`openssl rand -base64 48\`)`);
  }
  const production = env.NODE_ENV === 'production';
  if (s.testHooks && production) {
    problems.push(`testHooks (${SCHEMA.testHooks.env}) must not be enabled with NODE_ENV=production: it lets anyone with the API key crash shards; unset it`);
  }
  if (s.testNetwork !== undefined && !s.testHooks) {
    problems.push(`testNetwork (${SCHEMA.testNetwork.env}) needs testHooks (${SCHEMA.testHooks.env}=true): it makes the engine drop and delay messages on purpose`);
  }
  if (s.devMode && production) {
    warnings.push(`devMode (${SCHEMA.devMode.env}) is on with NODE_ENV=production: clients may connect as any user without a token`);
  }
  // Raising only the per-connection limit is silently undone by the per-user one.
  if (!invalid.has('rateLimitPerS') && !invalid.has('userRateLimitPerS') && s.userRateLimitPerS < s.rateLimitPerS) {
    warnings.push(
      `userRateLimitPerS (${SCHEMA.userRateLimitPerS.env}) is ${s.userRateLimitPerS}, below rateLimitPerS (${SCHEMA.rateLimitPerS.env}) ${s.rateLimitPerS}: ` +
        `every user, even on one connection, is held to ${s.userRateLimitPerS} frames/s; raise ${SCHEMA.userRateLimitPerS.env} too`,
    );
  }
}

/**
 * Several instances of the standalone engine are islands: each sequences, keeps
 * history and fans out on its own, so a client moving to another instance (a
 * rollout, a scale-down) cannot resume and publishers reach a fraction of the
 * clients. Told it runs as several replicas, the daemon refuses that; in
 * Kubernetes (KUBERNETES_SERVICE_HOST is set in every pod) without being told, it
 * warns, since nothing in a pod says how many replicas its Deployment runs.
 */
function checkReplicas(
  s: Settings,
  invalid: ReadonlySet<keyof Settings>,
  defaulted: ReadonlySet<keyof Settings>,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warnings: string[],
): void {
  if (s.redisUrl !== undefined || invalid.has('redisUrl') || invalid.has('replicas')) return;
  const standalone = `the standalone engine (no redisUrl, ${SCHEMA.redisUrl.env}) keeps each instance an island: clients resuming on another instance get rec: false and the snapshot instead of what they missed, an event published to one instance reaches only its clients, presence and command limits count per instance`;
  if (s.replicas > 1) {
    problems.push(`replicas (${SCHEMA.replicas.env}) is ${s.replicas}, but ${standalone}. Set ${SCHEMA.redisUrl.env} to share one engine, or ${SCHEMA.replicas.env}=1 for a single instance`);
  } else if (defaulted.has('replicas') && nonEmpty(env.KUBERNETES_SERVICE_HOST) !== undefined) {
    warnings.push(
      `running in Kubernetes with the standalone engine: fine for ONE replica only; with more, ${standalone}. Set ${SCHEMA.redisUrl.env} (k8s/ overlays do), or ${SCHEMA.replicas.env}=1 to confirm a single replica`,
    );
  }
}

/**
 * Reads and parses a key file named by `setting`; problems name the setting, its
 * environment variable and the path.
 */
function readKeyFile<K>(
  setting: 'jwtPublicKeyFile' | 'jwtJwksFile',
  path: string,
  parse: (text: string) => { ok: true; keys: K[] } | { ok: false; message: string },
  problems: string[],
): K[] {
  const at = `${setting} (${SCHEMA[setting].env})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`${at}: cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
    return [];
  }
  const parsed = parse(text);
  if (!parsed.ok) {
    problems.push(`${at}: ${JSON.stringify(path)} ${parsed.message}`);
    return [];
  }
  return parsed.keys;
}

function readConfigFile(path: string, problems: string[]): Map<string, unknown> {
  const values = new Map<string, unknown>();
  const at = `config file ${JSON.stringify(path)} (${CONFIG_FILE_ENV})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`${at}: cannot read it: ${(err as Error).message}`);
    return values;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    problems.push(`${at}: not valid JSON: ${(err as Error).message}`);
    return values;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push(`${at}: must hold a JSON object of settings, e.g. {"port": 8080}`);
    return values;
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (Object.hasOwn(SCHEMA, key)) {
      values.set(key, value);
    } else {
      const hint = suggest(key, SETTING_KEYS);
      problems.push(`${at}: unknown key ${JSON.stringify(key)}${hint ? `; did you mean "${hint}"?` : ''} (the README lists every setting)`);
    }
  }
  return values;
}

/**
 * One problem line naming the key, its env var and where the value came from. A
 * problem about a nested field (`namespaces[1].historySize: …`) leads with its path.
 */
function describeProblem(setting: Setting<unknown>, source: ValueSource, filePath: string | undefined, problem: string): string {
  const where = `${setting.env}, ${source === 'env' ? 'from the environment' : `from ${filePath ?? 'the config file'}`}`;
  const split = problem.startsWith(`${setting.key}[`) ? problem.indexOf(': ') : -1;
  if (split > 0) return `${problem.slice(0, split)} (${where}): ${problem.slice(split + 2)}`;
  return `${setting.key} (${where}): ${problem}`;
}

function configPathFrom(argv: readonly string[] | undefined): string | undefined {
  if (argv === undefined) return undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') return nonEmpty(argv[i + 1]);
    if (arg.startsWith('--config=')) return nonEmpty(arg.slice('--config='.length));
  }
  return undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** The closest known name to a misspelt one, if any is close enough to be a likely typo. */
function suggest(name: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const target = squash(name);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(target, squash(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(target.length / 5)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

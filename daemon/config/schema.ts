/**
 * The configuration schema: the single source of truth for every setting of the
 * daemon. Each entry holds the setting's key (camelCase, also its key in the JSON
 * config file), its environment variable (SHARDCAST_ + UPPER_SNAKE of the key), its
 * type, default and one-line doc, and the parser that validates a raw value.
 * load.ts reads and validates against it; reference.ts renders the README table
 * from it; nothing else lists settings.
 *
 * Adding a setting: add it to `Settings`, then one entry to `SCHEMA` (the
 * `satisfies` clause refuses a schema that misses a key or mistypes one), then run
 * `node dist/daemon/config/reference.js --write README.md`.
 */
import { availableParallelism } from 'node:os';
import type { KeyObject } from 'node:crypto';
import type { KeyedPublicKey } from '../auth/public-keys.js';
import { DEFAULT_LIMITS } from '../../protocol/frames.js';

/** One namespace of sessions, matched by session id prefix (longest prefix wins). */
export interface NamespaceConfig {
  /** Session ids starting with this prefix belong to the namespace. */
  readonly prefix: string;
  /** Events kept for resume; the top-level `historySize` when absent. */
  readonly historySize?: number;
  /** Whether presence (who is in the session) is tracked; true when absent. */
  readonly presence?: boolean;
  /** Whether clients may publish into the session: all (true), none (false) or these roles. */
  readonly clientPublish?: boolean | readonly string[];
  /** Whether queued frames marked conflatable may be replaced by newer ones; true when absent. */
  readonly conflate?: boolean;
  /** Whether members get `pjoin`/`pleave` notices (needs presence); false when absent. */
  readonly joinLeave?: boolean;
  /** Per-user limits on `cmd` frames, by command type (`*`: any other type); none when absent. */
  readonly commandLimits?: Readonly<Record<string, CommandLimit>>;
}

/** A token bucket per user (across shards and instances): `burst` commands at once, refilled at `perMinute`. */
export interface CommandLimit {
  readonly perMinute: number;
  readonly burst: number;
}

/** How the standalone engine imitates a network between instances (test hooks only). */
export interface TestNetwork {
  /** Least delay of a message to subscribers (ms). */
  readonly delayMs: number;
  /** Random extra delay, 0..jitterMs (ms); per-session order is kept. */
  readonly jitterMs: number;
  /** Probability (0..1) that a message never reaches subscribers. */
  readonly dropRate: number;
  /** History replies come back after 0..historyDelayMs (ms). */
  readonly historyDelayMs: number;
  /** Seed of the fault sequence. */
  readonly seed: number;
}

/** Every setting as configured (file and environment); see SCHEMA for docs and bounds. */
export interface Settings {
  readonly port: number;
  readonly host: string;
  readonly shards: number;
  readonly devMode: boolean;
  readonly apiKey: string | undefined;
  readonly adminPort: number;
  readonly adminHost: string;
  readonly adminToken: string | undefined;
  readonly jwtSecret: string | undefined;
  readonly jwtPublicKeyFile: string | undefined;
  readonly jwtJwksFile: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  readonly jwtClockSkewS: number;
  readonly allowedOrigins: readonly string[];
  readonly drainTimeoutMs: number;
  readonly drainSpreadMs: number;
  readonly goAwayMaxDelayMs: number;
  readonly historySize: number;
  readonly sessionTtlMs: number;
  readonly emptySessionTtlMs: number;
  readonly maxEmptySessions: number;
  readonly maxBufferBytes: number;
  readonly maxFrameBytes: number;
  readonly maxFrameValues: number;
  readonly maxPublishValues: number;
  readonly idleTimeoutS: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly rateLimitPerS: number;
  readonly rateLimitBurst: number;
  readonly rateLimitTokenValues: number;
  readonly userRateLimitPerS: number;
  readonly maxSessionsPerConnection: number;
  readonly commandJournalSize: number;
  readonly commandJournalBytes: number;
  readonly commandJournalBytesPerUser: number;
  readonly commandJournalTakenRetentionMs: number;
  readonly maxSnapshotKeys: number;
  readonly maxReplayBytes: number;
  readonly replayBytesPerS: number;
  readonly maxPresenceList: number;
  readonly presenceLeaseMs: number;
  readonly shardYoungGenerationMb: number;
  readonly logLevel: LogLevel;
  readonly testHooks: boolean;
  readonly testNetwork: TestNetwork | undefined;
  readonly subscriptionLingerMs: number;
  readonly streamCheckMs: number;
  readonly replicas: number;
  readonly redisUrl: string | undefined;
  readonly redisCluster: boolean;
  readonly redisPrefix: string;
  readonly amqpUrl: string | undefined;
  readonly amqpExchange: string;
  readonly amqpPartitions: number;
  readonly amqpPrefetch: number;
  readonly amqpDeliveryLimit: number;
  readonly amqpCommandsExchange: string;
  readonly amqpCommandsFormat: 'json' | 'msgpack';
  readonly databaseUrl: string | undefined;
  readonly databaseSchema: string;
  readonly commandRetentionHours: number;
  readonly namespaces: readonly NamespaceConfig[];
}

/**
 * The validated, frozen daemon configuration. Structured-clone safe (it can be
 * passed as `workerData` to shard threads): plain data plus `jwtPublicKeys` and
 * `jwtKeySet`, whose KeyObjects Node 20 clones to worker threads.
 */
export interface Config extends Settings {
  /** The public keys parsed from `jwtPublicKeyFile` at boot (empty when unset). */
  readonly jwtPublicKeys: readonly KeyObject[];
  /** The keys parsed from `jwtJwksFile` at boot, with their `kid` (empty when unset). */
  readonly jwtKeySet: readonly KeyedPublicKey[];
}

/** The pino levels `logLevel` accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a raw value came from: the environment (a string) or the JSON file (any JSON). */
export type ValueSource = 'env' | 'file';

/** Outcome of parsing one raw value: the typed value, or why it is refused. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: readonly string[] };

function no(problem: string | readonly string[]): { ok: false; problems: readonly string[] } {
  return { ok: false, problems: typeof problem === 'string' ? [problem] : problem };
}

/** One setting: its names, type, default, doc and parser. */
export interface Setting<T> {
  /** Key in Config and in the JSON file. */
  readonly key: keyof Settings;
  /** Environment variable name. */
  readonly env: string;
  /** Short type text for the reference, with bounds (e.g. "integer 0–65535"). */
  readonly type: string;
  /** The default value (computed at load time, e.g. the CPU count). */
  readonly defaultValue: () => T;
  /** The default as shown in the reference. */
  readonly defaultDoc: string;
  /** One-line description. */
  readonly doc: string;
  /** Never echo the value in errors (credentials). */
  readonly secret: boolean;
  /** Validates a raw value: a string from the environment, any JSON value from the file. */
  readonly parse: (raw: unknown, source: ValueSource) => ParseResult<T>;
}

/** The environment variable name of a key: SHARDCAST_ + UPPER_SNAKE (jwtPublicKeyFile → SHARDCAST_JWT_PUBLIC_KEY_FILE). */
export function envNameOf(key: string): string {
  return 'SHARDCAST_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Environment variable naming the JSON config file. */
export const CONFIG_FILE_ENV = 'SHARDCAST_CONFIG';

// ------------------------------------------------------------------ value kinds

type Kind<T> = Pick<Setting<T>, 'type' | 'parse'>;

const INTEGER_TEXT = /^[+-]?\d+$/;

function describe(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'object') return 'an object';
  return String(raw);
}

function formatNumber(n: number): string {
  return String(n);
}

/** An integer within [min, max]; `extra` refuses values inside the range (idleTimeoutS). */
function integer(
  min: number,
  max: number,
  extra?: { refuse: (n: number) => boolean; allowed: string },
): Kind<number> {
  const allowed = extra?.allowed ?? `an integer from ${formatNumber(min)} to ${formatNumber(max)}`;
  return {
    type: extra ? `integer: ${extra.allowed}` : `integer ${formatNumber(min)}–${formatNumber(max)}`,
    parse(raw, source) {
      let n: number;
      if (source === 'env' && typeof raw === 'string') {
        const text = raw.trim();
        if (!INTEGER_TEXT.test(text)) return no(`got ${describe(raw)}; must be ${allowed}`);
        n = Number(text);
      } else if (typeof raw === 'number') {
        n = raw;
      } else {
        return no(`got ${describe(raw)}; must be ${allowed} (a JSON number)`);
      }
      if (!Number.isSafeInteger(n) || n < min || n > max || extra?.refuse(n)) {
        return no(`got ${describe(raw)}; must be ${allowed}`);
      }
      return { ok: true, value: n };
    },
  };
}

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

/** A boolean: JSON true/false, or (in either source) the words true/false/1/0/yes/no. */
function boolean(): Kind<boolean> {
  return {
    type: 'boolean',
    parse(raw) {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const word = typeof raw === 'string' ? raw.trim().toLowerCase() : typeof raw === 'number' ? String(raw) : '';
      if (TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (FALSE_WORDS.has(word)) return { ok: true, value: false };
      return no(`got ${describe(raw)}; must be a boolean: true/false, 1/0 or yes/no`);
    },
  };
}

/** A non-empty string of at most `maxLength` characters, without control characters. */
function text(maxLength: number, type = 'string'): Kind<string> {
  return {
    type,
    parse(raw) {
      if (typeof raw !== 'string') return no(`got ${describe(raw)}; must be a string`);
      if (raw.length === 0) return no('is empty; must be a non-empty string (or leave it unset)');
      if (raw.length > maxLength) return no(`is ${raw.length} characters long; at most ${maxLength} allowed`);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(raw)) return no('contains control characters (a stray newline?)');
      return { ok: true, value: raw };
    },
  };
}

/** Where Redis is: a redis:// (or rediss://) URL, or host:port items separated by commas (a cluster's nodes). */
function redisTarget(): Kind<string> {
  const base = text(4096, 'string (URL or node list)');
  return {
    type: base.type,
    parse(raw, source) {
      const r = base.parse(raw, source);
      if (!r.ok) return r;
      for (const item of r.value.split(',').map((x) => x.trim())) {
        let url: URL;
        try {
          url = new URL(item.includes('://') ? item : `redis://${item}`);
        } catch {
          return no(`"${item.replace(/\/\/[^@/]*@/, '//…@')}" is not a redis://host:port URL or host:port`);
        }
        if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return no(`"${url.protocol}" is not redis: or rediss:`);
        if (url.hostname === '') return no(`"${item.replace(/\/\/[^@/]*@/, '//…@')}" names no host`);
      }
      return r;
    },
  };
}

/**
 * A service URL of one of two schemes (plain and TLS), e.g. Postgres or RabbitMQ;
 * `example` is shown when the text is no URL at all. `needsHost`: refuse a URL
 * without a host (a Postgres URL may omit it for the local socket).
 */
function serviceUrl(schemes: readonly [string, string], example: string, needsHost: boolean): Kind<string> {
  const base = text(4096, 'string (URL)');
  return {
    type: base.type,
    parse(raw, source) {
      const r = base.parse(raw, source);
      if (!r.ok) return r;
      let url: URL;
      try {
        url = new URL(r.value);
      } catch {
        return no(`is not a URL: use ${example}`);
      }
      if (!schemes.includes(url.protocol)) return no(`"${url.protocol}" is not ${schemes[0]} or ${schemes[1]}`);
      if (needsHost && url.hostname === '') return no('names no host');
      return r;
    },
  };
}

/** Where PostgreSQL is: a postgres:// or postgresql:// URL. */
const databaseTarget = () => serviceUrl(['postgres:', 'postgresql:'], 'postgres://user:password@host:5432/database', false);

/** Where RabbitMQ is: an amqp:// or amqps:// URL. */
const amqpTarget = () => serviceUrl(['amqp:', 'amqps:'], 'amqp://user:password@host:5672/vhost', true);

/** A plain SQL identifier (a schema name). */
function schemaName(): Kind<string> {
  return {
    type: 'string',
    parse(raw) {
      if (typeof raw !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(raw)) return no(`got ${describe(raw)}; must be a plain identifier: a letter or _, then letters, digits or _ (at most 63)`);
      return { ok: true, value: raw };
    },
  };
}

/** An AMQP exchange name: 1–200 characters of letters, digits, `-`, `_`, `.`, `:` (queue names add a suffix). */
function exchangeName(): Kind<string> {
  return {
    type: 'string',
    parse(raw) {
      if (typeof raw !== 'string' || !/^[A-Za-z0-9_.:-]{1,200}$/.test(raw)) return no(`got ${describe(raw)}; must be 1–200 of letters, digits, -, _, . and :`);
      if (raw.startsWith('amq.')) return no('names starting with "amq." are reserved by RabbitMQ');
      return { ok: true, value: raw };
    },
  };
}

/** A key prefix for Redis: no braces (each session's id is its keys' hash tag). */
function keyPrefix(): Kind<string> {
  const base = text(256);
  return {
    type: base.type,
    parse(raw, source) {
      const r = base.parse(raw, source);
      if (r.ok && /[{}]/.test(r.value)) return no(`${JSON.stringify(r.value)} contains { or }; they are reserved for the session hash tag`);
      return r;
    },
  };
}

/** An optional value: undefined by default, otherwise `kind`. */
function optional<T>(kind: Kind<T>): Kind<T | undefined> {
  return { type: kind.type, parse: (raw, source) => kind.parse(raw, source) };
}

function oneOf<const T extends string>(values: readonly T[]): Kind<T> {
  return {
    type: values.join(' | '),
    parse(raw) {
      const word = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      const found = values.find((v) => v === word);
      if (found === undefined) return no(`got ${describe(raw)}; must be one of ${values.join(', ')}`);
      return { ok: true, value: found };
    },
  };
}

/** Browser origins: a comma-separated list in the environment, a JSON array of strings in the file. */
function originList(): Kind<readonly string[]> {
  return {
    type: 'list of origins',
    parse(raw, source) {
      let items: unknown[];
      if (source === 'env' && typeof raw === 'string') {
        items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      } else if (Array.isArray(raw)) {
        items = raw;
      } else {
        return no(`got ${describe(raw)}; must be a JSON array of origins like ["https://quiz.example.com"]`);
      }
      const origins: string[] = [];
      for (const [i, item] of items.entries()) {
        if (typeof item !== 'string') return no(`item ${i} is ${describe(item)}; origins are strings`);
        const origin = item.trim();
        let normalised: string | undefined;
        try {
          normalised = new URL(origin).origin;
        } catch {
          normalised = undefined;
        }
        if (normalised === undefined || normalised === 'null') {
          return no(`${JSON.stringify(origin)} is not an origin; write scheme://host[:port], e.g. https://quiz.example.com`);
        }
        if (normalised !== origin) {
          return no(`${JSON.stringify(origin)} is not an origin as browsers send it; write ${JSON.stringify(normalised)} (no path, no trailing slash, lower case)`);
        }
        origins.push(origin);
      }
      return { ok: true, value: Object.freeze(origins) };
    },
  };
}

const NAMESPACE_FIELDS = new Set(['prefix', 'historySize', 'presence', 'joinLeave', 'clientPublish', 'conflate', 'commandLimits']);
/** Characters of session ids (protocol/frames.ts SESSION_ID_PATTERN); a prefix uses the same. */
const PREFIX_PATTERN = /^[A-Za-z0-9_.:@-]+$/;
const MAX_HISTORY = 1_000_000;

/**
 * Session namespaces: a JSON array (JSON text in the environment). Problems name
 * the path of the bad field, e.g. `namespaces[1].historySize`; all are reported.
 */
/** `{ "<type>" | "*": { perMinute, burst } }`; problems are pushed with their path. */
function commandLimits(raw: unknown, at: string, problems: string[]): Readonly<Record<string, CommandLimit>> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${at}: got ${describe(raw)}; must be an object of command type (or "*") → {perMinute, burst}`);
    return undefined;
  }
  const out: Record<string, CommandLimit> = {};
  let ok = true;
  for (const [type, limit] of Object.entries(raw as Record<string, unknown>)) {
    const l = limit as Record<string, unknown> | null;
    const good =
      type.length > 0 &&
      type.length <= 64 &&
      l !== null &&
      typeof l === 'object' &&
      Object.keys(l).every((k) => k === 'perMinute' || k === 'burst') &&
      typeof l.perMinute === 'number' &&
      Number.isSafeInteger(l.perMinute) &&
      l.perMinute >= 1 &&
      l.perMinute <= 6_000_000 &&
      typeof l.burst === 'number' &&
      Number.isSafeInteger(l.burst) &&
      l.burst >= 1 &&
      l.burst <= 1_000_000;
    if (!good) {
      problems.push(`${at}.${type}: got ${describe(limit)}; must be {perMinute: 1–6000000, burst: 1–1000000} (integers)`);
      ok = false;
      continue;
    }
    out[type] = Object.freeze({ perMinute: l.perMinute as number, burst: l.burst as number });
  }
  return ok ? Object.freeze(out) : undefined;
}

function namespaceList(): Kind<readonly NamespaceConfig[]> {
  return {
    type: 'JSON array of namespaces',
    parse(raw, source) {
      let value = raw;
      if (source === 'env' && typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch (err) {
          return no(`is not valid JSON (${(err as Error).message}); expected e.g. [{"prefix":"chat:","clientPublish":true}]`);
        }
      }
      if (!Array.isArray(value)) {
        return no(`got ${describe(value)}; must be an array of {prefix, historySize?, presence?, joinLeave?, clientPublish?, conflate?, commandLimits?}`);
      }
      const problems: string[] = [];
      const seen = new Map<string, number>();
      const result: NamespaceConfig[] = [];
      for (const [i, item] of value.entries()) {
        const at = `namespaces[${i}]`;
        if (item === null || typeof item !== 'object' || Array.isArray(item)) {
          problems.push(`${at}: got ${describe(item)}; must be an object with a "prefix"`);
          continue;
        }
        const entry = item as Record<string, unknown>;
        for (const field of Object.keys(entry)) {
          if (!NAMESPACE_FIELDS.has(field)) {
            problems.push(`${at}.${field}: unknown field; allowed: ${[...NAMESPACE_FIELDS].join(', ')}`);
          }
        }
        const ns: { -readonly [K in keyof NamespaceConfig]: NamespaceConfig[K] } = { prefix: '' };
        const prefix = entry.prefix;
        if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 128 || !PREFIX_PATTERN.test(prefix)) {
          problems.push(`${at}.prefix: got ${describe(prefix)}; must be 1–128 session-id characters [A-Za-z0-9_.:@-], e.g. "quiz:"`);
        } else if (seen.has(prefix)) {
          problems.push(`${at}.prefix: ${JSON.stringify(prefix)} is already used by namespaces[${seen.get(prefix)}]; prefixes must be unique`);
        } else {
          seen.set(prefix, i);
          ns.prefix = prefix;
        }
        if (entry.historySize !== undefined) {
          const h = entry.historySize;
          if (typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0 || h > MAX_HISTORY) {
            problems.push(`${at}.historySize: got ${describe(h)}; must be an integer from 0 to ${formatNumber(MAX_HISTORY)}`);
          } else ns.historySize = h;
        }
        for (const flag of ['presence', 'joinLeave', 'conflate'] as const) {
          const v = entry[flag];
          if (v === undefined) continue;
          if (typeof v !== 'boolean') problems.push(`${at}.${flag}: got ${describe(v)}; must be true or false`);
          else ns[flag] = v;
        }
        const publish = entry.clientPublish;
        if (publish !== undefined) {
          if (typeof publish === 'boolean') {
            ns.clientPublish = publish;
          } else if (Array.isArray(publish) && publish.every((r) => typeof r === 'string' && r.length > 0 && r.length <= 64)) {
            ns.clientPublish = Object.freeze([...(publish as string[])]);
          } else {
            problems.push(`${at}.clientPublish: got ${describe(publish)}; must be true, false or an array of role names (non-empty strings ≤ 64 chars)`);
          }
        }
        const limits = entry.commandLimits;
        if (limits !== undefined) {
          const parsed = commandLimits(limits, `${at}.commandLimits`, problems);
          if (parsed !== undefined) ns.commandLimits = parsed;
        }
        result.push(Object.freeze(ns));
      }
      if (problems.length > 0) return no(problems);
      return { ok: true, value: Object.freeze(result) };
    },
  };
}

// ------------------------------------------------------------------ the schema

const NETWORK_FIELDS = { delayMs: 10_000, jitterMs: 10_000, dropRate: 1, historyDelayMs: 10_000, seed: 2 ** 31 } as const;

/** `{delayMs, jitterMs, dropRate, historyDelayMs, seed}` (JSON text in the environment); unknown or out-of-range fields are named. */
function testNetwork(): Kind<TestNetwork | undefined> {
  return {
    type: 'JSON object {delayMs, jitterMs, dropRate, historyDelayMs, seed}',
    parse(raw, source) {
      let value = raw;
      if (value === undefined || value === null || value === '') return { ok: true, value: undefined };
      if (source === 'env' && typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch (err) {
          return no(`is not valid JSON (${(err as Error).message}); expected e.g. {"delayMs":3,"jitterMs":5,"dropRate":0.01,"historyDelayMs":10,"seed":1}`);
        }
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return no(`got ${describe(value)}; must be an object`);
      const entry = value as Record<string, unknown>;
      const problems: string[] = [];
      const out: Record<string, number> = { delayMs: 0, jitterMs: 0, dropRate: 0, historyDelayMs: 0, seed: 1 };
      for (const [field, v] of Object.entries(entry)) {
        if (!(field in NETWORK_FIELDS)) {
          problems.push(`testNetwork.${field}: unknown field; allowed: ${Object.keys(NETWORK_FIELDS).join(', ')}`);
          continue;
        }
        const max = NETWORK_FIELDS[field as keyof typeof NETWORK_FIELDS];
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max || (field !== 'dropRate' && !Number.isInteger(v))) {
          problems.push(`testNetwork.${field}: got ${describe(v)}; must be ${field === 'dropRate' ? 'a number' : 'an integer'} from 0 to ${max}`);
        } else out[field] = v;
      }
      return problems.length > 0 ? no(problems) : { ok: true, value: out as unknown as TestNetwork };
    },
  };
}

function define<K extends keyof Settings>(
  key: K,
  kind: Kind<Settings[K]>,
  defaultValue: Settings[K] | (() => Settings[K]),
  doc: string,
  more: { defaultDoc?: string; secret?: boolean } = {},
): Setting<Settings[K]> {
  const compute = typeof defaultValue === 'function' ? (defaultValue as () => Settings[K]) : () => defaultValue;
  return {
    key,
    env: envNameOf(key),
    type: kind.type,
    defaultValue: compute,
    defaultDoc: more.defaultDoc ?? (defaultValue === undefined ? '(unset)' : formatDefault(defaultValue)),
    doc,
    secret: more.secret ?? false,
    parse: kind.parse,
  };
}

function formatDefault(value: unknown): string {
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return JSON.stringify(value);
}

/** The schema: one entry per setting, in the order the reference lists them. */
export const SCHEMA = {
  port: define('port', integer(0, 65535), 8080, 'TCP port of the WebSocket listener (0 = pick a free port).'),
  host: define('host', text(255, 'string (address)'), '0.0.0.0', 'Address the WebSocket listener binds. In devMode, unless set, `127.0.0.1`: a dev-mode daemon accepts anyone as any user.', {
    defaultDoc: '`"0.0.0.0"` (devMode: `"127.0.0.1"`)',
  }),
  shards: define('shards', integer(1, 256), () => availableParallelism(), 'Shard worker threads, each running its own uWS App on the shared port.', {
    defaultDoc: 'CPU count (`os.availableParallelism()`)',
  }),
  devMode: define('devMode', boolean(), false, 'Local development: no JWT key or API key needed, clients may connect as any user. Never in production.'),
  apiKey: define('apiKey', optional(text(4096)), undefined, 'Token for the HTTP publish API and `GET /v1/commands`; at least 16 characters, required unless devMode.', {
    secret: true,
  }),
  adminPort: define('adminPort', integer(0, 65535), 9090, 'TCP port of the admin listener (admin API, `/metrics`, `/healthz`, `/readyz`; docs/admin.md); 0 = pick a free port. When `port` is 0 and this is unset, 0 as well.', {
    defaultDoc: '`9090` (`port` 0: `0`)',
  }),
  adminHost: define('adminHost', text(255, 'string (address)'), '127.0.0.1', 'Address the admin listener binds: loopback unless the admin API must be reached from elsewhere (then keep it off the clients\' network).'),
  adminToken: define('adminToken', optional(text(4096)), undefined, 'Bearer token of the admin API (not the publish API\'s `apiKey`); at least 16 characters, required unless devMode (in devMode, when unset, the admin API is open on its loopback listener).', {
    secret: true,
  }),
  jwtSecret: define('jwtSecret', optional(text(4096)), undefined, 'HS256/HS384/HS512 shared secret for client tokens (32 bytes or more recommended).', {
    secret: true,
  }),
  jwtPublicKeyFile: define('jwtPublicKeyFile', optional(text(4096, 'string (path)')), undefined, 'PEM file with one or more RS256 (RSA) or ES256 (P-256) public keys or certificates for client tokens; read at boot.'),
  jwtJwksFile: define('jwtJwksFile', optional(text(4096, 'string (path)')), undefined, 'JSON Web Key Set file (`{"keys": [...]}`) with RS256 (RSA) or ES256 (EC P-256) keys for client tokens, chosen by the token\'s `kid`; read at boot (no fetching: refresh the file and restart).'),
  jwtIssuer: define('jwtIssuer', optional(text(1024)), undefined, 'Required `iss` claim of client tokens (unchecked when unset).'),
  jwtAudience: define('jwtAudience', optional(text(1024)), undefined, 'Required `aud` claim of client tokens (unchecked when unset).'),
  jwtClockSkewS: define('jwtClockSkewS', integer(0, 600), 30, 'Clock skew allowed on client tokens\' `exp` and `nbf`, in seconds; a connection is closed with 4004 when `exp` plus this has passed.'),
  allowedOrigins: define('allowedOrigins', originList(), Object.freeze([]) as readonly string[], 'Browser origins allowed to connect, comma-separated in the environment; empty = any origin.', {
    defaultDoc: '`[]` (any)',
  }),
  drainTimeoutMs: define('drainTimeoutMs', integer(1000, 600_000), 30_000, 'On shutdown or drain, how long after the go-aways went out (drainSpreadMs) clients\' buffers may take to empty before the rest are closed; the process exits within drainSpreadMs + this.'),
  drainSpreadMs: define('drainSpreadMs', integer(0, 600_000), 5000, 'On shutdown or drain, window over which go-away frames are sent, evenly spaced in random order, so the reconnect wave reaching the other instances is smooth (0 = all at once); clients keep being served until their turn.'),
  goAwayMaxDelayMs: define('goAwayMaxDelayMs', integer(0, 60_000), 1000, 'Each go-away\'s reconnect delay is random in [0, this] ms, on top of the spread (drainSpreadMs): clients sent their go-away in the same instant do not reconnect in the same instant.'),
  historySize: define('historySize', integer(0, MAX_HISTORY), 1000, 'Events kept per session for resume (namespaces may override).'),
  sessionTtlMs: define('sessionTtlMs', integer(1000, 2_147_483_647), 3_600_000, 'Sessions idle this long (nothing published, no instance streaming them) are forgotten, with their history and snapshot; in Redis, between 0.9× and 1× this after their last activity.'),
  emptySessionTtlMs: define('emptySessionTtlMs', integer(1000, 2_147_483_647), 60_000, 'Standalone engine: sessions no event was ever published to (created by joins) are forgotten this long after their last activity instead of sessionTtlMs (the shorter of the two counts); a client resuming into one later gets rec: false and the snapshot. Bounds what join floods leave in the daemon\'s memory; in Redis such sessions live in Redis under sessionTtlMs.'),
  maxEmptySessions: define('maxEmptySessions', integer(1, 100_000_000), 100_000, "Standalone engine: most sessions no event was ever published to (created by joins, a few hundred bytes each) the instance keeps; past it the oldest one no client on this instance has joined is forgotten at once, as emptySessionTtlMs would later (a client resuming into it gets rec: false and the snapshot; it had nothing to miss). Bounds what join floods from many users leave in memory. In Redis such sessions live in Redis under sessionTtlMs."),
  maxBufferBytes: define('maxBufferBytes', integer(16 * 1024, 64 * 1024 * 1024), 1024 * 1024, 'Bound of each socket\'s outgoing buffer; a client past it is disconnected as a slow consumer.'),
  maxFrameBytes: define('maxFrameBytes', integer(256, 1024 * 1024), 16 * 1024, 'Largest frame a client may send.'),
  maxFrameValues: define('maxFrameValues', integer(16, 1024 * 1024), DEFAULT_LIMITS.maxFrameValues, "Most msgpack values one client frame may hold, its own map and fields included (every map, array, map key, str, bin, number, bool and nil counts one): bounds the memory decoding a frame costs, which wire bytes do not (a 16 KiB frame of empty maps decodes to about 1 MB). Counted before decoding; a frame over it gets error 109 and the connection stays."),
  maxPublishValues: define('maxPublishValues', integer(1, 10_000_000), DEFAULT_LIMITS.maxPublishValues, "Most values in the `data` of one published event (HTTP API, RabbitMQ; counted as for maxFrameValues): every client decodes it. Over it: HTTP 400 `invalid_request`, RabbitMQ dead-letter. Higher than maxFrameValues because upstreams are trusted and publish leaderboards and tallies."),
  idleTimeoutS: define(
    'idleTimeoutS',
    integer(0, 960, { refuse: (n) => n > 0 && n < 8, allowed: '0 (off) or 8–960' }),
    60,
    'Seconds a client may send nothing (no frame, no ping or pong) before it is closed with 1000; the server pings it after half of it. Sent to clients as `hello.ping`.',
  ),
  maxConnections: define('maxConnections', integer(1, 10_000_000), 100_000, 'Connections this instance accepts in total.'),
  maxConnectionsPerUser: define('maxConnectionsPerUser', integer(1, 100_000), 32, 'Connections one user may hold on this instance.'),
  rateLimitPerS: define('rateLimitPerS', integer(1, 1_000_000), 50, 'Frames per second a connection may send on average (token bucket refill rate).'),
  rateLimitBurst: define('rateLimitBurst', integer(1, 1_000_000), 100, 'Frames a connection may send in a burst (token bucket size).'),
  rateLimitTokenValues: define('rateLimitTokenValues', integer(1, 10_000_000), 1000, "Msgpack values one token of a connection's rate limit pays for: a frame takes one token per started rateLimitTokenValues values (counted as for maxFrameValues), so the limit bounds decoding work as well as frames. Defaults: an ordinary frame takes one token; one of 10,000 values takes 10 of a burst of 100. A frame refused for it gets error 106 and is never decoded."),
  userRateLimitPerS: define('userRateLimitPerS', integer(1, 1_000_000), 200, "Frames one user may send per second (fixed one-second windows) over all of its connections on this instance, whichever shard holds them; counted after the connection's own limit. Per instance: instances do not share it. Default: two connections' full bursts, or four at rateLimitPerS; raise it with rateLimitPerS."),
  maxSessionsPerConnection: define('maxSessionsPerConnection', integer(1, 10_000), 64, 'Sessions one connection may have joined at once.'),
  commandJournalSize: define('commandJournalSize', integer(1, 10_000_000), 100_000, 'Commands the standalone (in-memory) journal keeps readable, oldest out first; it also remembers the outcomes of this many commands upstream took that are no longer readable, to answer their retries `dup: true` (a command pushed out before upstream took it is journaled again when retried).'),
  commandJournalBytes: define('commandJournalBytes', integer(1024 * 1024, 2 ** 40), 64 * 1024 * 1024, 'Bytes of commands the standalone (in-memory) journal keeps (data as msgpack plus 256 per command); the oldest go first.'),
  commandJournalBytesPerUser: define('commandJournalBytesPerUser', integer(64 * 1024, 2 ** 40), 1024 * 1024, "Bytes of one user's commands the standalone (in-memory) journal keeps, counted as for commandJournalBytes; past it that user's own oldest go first, so one participant cannot push everyone else's commands out before upstream read them."),
  commandJournalTakenRetentionMs: define('commandJournalTakenRetentionMs', integer(1000, 2_147_483_647), 300_000, 'How long the standalone (in-memory) journal keeps a command readable once upstream has taken it (without the RabbitMQ relay: a `GET /v1/commands?after=N` took every command up to N; with it: RabbitMQ confirmed it), so a reader that lost a page in a crash can read it again; then its data goes and only its outcome stays (commandJournalSize). Commands nobody took stay until commandJournalBytes or commandJournalSize pushes them out. With several readers, the fastest one counts.'),
  maxReplayBytes: define('maxReplayBytes', integer(1024, 2 ** 31), 4 * 1024 * 1024, 'Most history bytes one join replays; a join whose missed events come to more gets the snapshot instead (rec: false).'),
  replayBytesPerS: define('replayBytesPerS', integer(1024, 2 ** 31), 8 * 1024 * 1024, 'History replay bytes one user may take per second over all of its connections on this instance (a bucket of max(this, maxReplayBytes)); past it, joins get the snapshot instead of a replay. Per instance: instances do not share it.'),
  maxSnapshotKeys: define('maxSnapshotKeys', integer(1, 65_535), 1000, 'Snapshot keys a session may hold, and each user of it for their own keys; an event that would add one more is refused (400), updating a key is not. Bounds what every join sends.'),
  maxPresenceList: define('maxPresenceList', integer(1, 100_000), 1000, 'Most users in a `presence` answer or a `joined.pres` list; a `presence` answer cut to it carries the total.'),
  presenceLeaseMs: define('presenceLeaseMs', integer(3000, 600_000), 30_000, "Lease of each shard's presence entries, refreshed every third of it: when an instance dies without cleaning up, its users stop counting as present after this long."),
  shardYoungGenerationMb: define('shardYoungGenerationMb', integer(0, 1024), 4, "Cap of each shard thread's V8 young generation in MB (0 = V8's default, which grows to tens of MB under connection storms and shows up as memory per connection; see bench/RESULTS.md)."),
  logLevel: define('logLevel', oneOf(LOG_LEVELS), 'info', 'Lowest pino level written to stdout.'),
  testHooks: define('testHooks', boolean(), false, 'Enables test-only triggers (e.g. crashing a shard); refused when NODE_ENV=production.'),
  testNetwork: define('testNetwork', testNetwork(), undefined, 'Test hooks only: the standalone engine delivers like a network (late, some messages dropped, history replies reordered against live frames), to test stream continuity. `{delayMs, jitterMs, dropRate, historyDelayMs, seed}`.'),
  streamCheckMs: define('streamCheckMs', integer(0, 3_600_000), 5000, 'How often each streamed session\'s position is compared with what the instance received, so events lost at the end of a burst are noticed and filled from history (0 = never).'),
  subscriptionLingerMs: define('subscriptionLingerMs', integer(0, 600_000), 2000, 'How long an instance stays subscribed to a session after its last local subscriber left, so a client that rejoins at once does not make it resubscribe.'),
  replicas: define('replicas', integer(1, 10_000), 1, "How many instances may serve the same clients at once, as the deployment runs them (with an autoscaler, its maximum). Above 1 the standalone engine is refused at start: its instances share nothing (a client resuming on another instance gets rec: false, an event published to one instance reaches only that instance's clients), so set redisUrl. In Kubernetes with the standalone engine and this unset, the daemon warns at start."),
  redisUrl: define('redisUrl', optional(redisTarget()), undefined, 'Redis for many instances as one (sequencing, history, fan-out, presence): a `redis://[user:password@]host:port` URL, or with `redisCluster` a comma-separated list of cluster nodes (`host:port`). Unset: the standalone engine, in memory.', { secret: true }),
  redisCluster: define('redisCluster', boolean(), false, 'Treat `redisUrl` as a Redis Cluster (sharded Pub/Sub, Redis ≥ 7): one session\'s keys share a hash slot, sessions spread over the masters.'),
  redisPrefix: define('redisPrefix', keyPrefix(), 'shardcast:', 'Prefix of every Redis key and channel, so several deployments can share one Redis (no `{` or `}`).'),
  amqpUrl: define('amqpUrl', optional(amqpTarget()), undefined, 'RabbitMQ to take events in from (`amqp://user:password@host:port/vhost` or `amqps://`): the instance consumes the events exchange\'s partitions (docs/rabbitmq.md). Unset: events come through the HTTP API only.', { secret: true }),
  amqpExchange: define('amqpExchange', exchangeName(), 'shardcast.events', 'Events exchange upstreams publish to (routing key: the session id); its partition queues are `<exchange>.p0…`, poison messages go to `<exchange>.dead`.'),
  amqpPartitions: define('amqpPartitions', integer(1, 1024), 8, 'Partition queues of the events exchange (sessions spread over them by hash; each consumed by one instance at a time). Changing it on a running deployment reorders sessions that move: drain the queues first.'),
  amqpPrefetch: define('amqpPrefetch', integer(1, 65_535), 200, 'Unacknowledged deliveries per partition an instance holds at once (RabbitMQ prefetch).'),
  amqpDeliveryLimit: define('amqpDeliveryLimit', integer(1, 1000), 20, 'Deliveries of one message before RabbitMQ dead-letters it (a message that keeps crashing or being returned); messages that fail validation are dead-lettered at once.'),
  amqpCommandsExchange: define('amqpCommandsExchange', exchangeName(), 'shardcast.commands', "Topic exchange participants' commands are relayed to (routing key `<namespace>.<type>`, docs/rabbitmq.md), when amqpUrl is set."),
  amqpCommandsFormat: define('amqpCommandsFormat', oneOf(['json', 'msgpack'] as const), 'json', 'Body encoding of relayed commands: json or msgpack.'),
  databaseUrl: define('databaseUrl', optional(databaseTarget()), undefined, "PostgreSQL for the durable command journal (`postgres://user:password@host:5432/db`): commands are acked once stored there (group commit), unique on (session, user, cid) across instances, and one instance at a time relays them to RabbitMQ (docs/postgres.md). Unset: the journal is in memory.", { secret: true }),
  databaseSchema: define('databaseSchema', schemaName(), 'public', 'Schema of the journal tables (created, and migrated at start under an advisory lock).'),
  commandRetentionHours: define('commandRetentionHours', integer(0, 87_600), 168, 'Hours the Postgres journal keeps a command after recording it (with the RabbitMQ relay: and only once relayed); older ones are deleted every minute, in batches. 0 = keep forever. A client retry arriving after its command was deleted is journaled again, so keep it far above any retry window.'),
  namespaces: define('namespaces', namespaceList(), Object.freeze([]) as readonly NamespaceConfig[], 'Per-prefix session settings: `[{ prefix, historySize?, presence? (default true), joinLeave? (pjoin/pleave notices, default false), clientPublish?: boolean | roles[] (default false), conflate? (default true), commandLimits?: { "<cmd type>" | "*": { perMinute, burst } } (per-user token buckets on `cmd` frames, across shards and instances; none by default) }]`; a session belongs to the namespace with the longest `prefix` its id starts with (plain text, no wildcards; none: the defaults); JSON text in the environment.', {
    defaultDoc: '`[]`',
  }),
} as const satisfies { readonly [K in keyof Settings]: Setting<Settings[K]> };

/** The settings' keys in schema order. */
export const SETTING_KEYS = Object.keys(SCHEMA) as (keyof Settings)[];

/** Finds a setting by its environment variable name. */
export function settingByEnv(env: string): Setting<unknown> | undefined {
  for (const key of SETTING_KEYS) {
    if (SCHEMA[key].env === env) return SCHEMA[key] as Setting<unknown>;
  }
  return undefined;
}
